//! The one path text from a dependency (or about one) takes before anyone sees it: no URL
//! password, no secret query value, no registered secret, one line, bounded length. HTML
//! escaping is the status page's job, on top of this. [`Secret`] holds a credential from the
//! moment it is parsed, and [`register`] makes the process hide it in every text it sanitises
//! and every log line it writes.

use std::fmt;
use std::sync::RwLock;

use url::Url;

/// Longest text kept, in characters; longer text is cut and ends with `…`.
const MAX_CHARS: usize = 200;

/// Secrets of at least this many characters are hidden wherever they appear, inside longer
/// words too: eight characters chosen as a credential are not plausibly part of ordinary text.
/// A shorter one (`admin`, `5432`) is hidden where it stands as a word of its own, so that it
/// cannot mangle "administrator" or port 15432.
const ANYWHERE_CHARS: usize = 8;

/// A credential: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The text itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Whether a query parameter called `key` holds a credential: its name contains `pass`,
/// `token`, `secret` or `key`, in any case (`password`, libpq's `sslpassword`, redis-rs's
/// `pass`, `api_key`, `X-Auth-Token`).
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = percent_decode(key).to_ascii_lowercase();
    ["pass", "token", "secret", "key"]
        .iter()
        .any(|word| key.contains(word))
}

/// The secrets of `url`, raw and percent-decoded, to hide wherever they appear: the password
/// of its authority (`scheme://user:password@host`) and the value of every query parameter
/// whose key [`is_secret_key`]. Empty when it has none.
pub(crate) fn url_secrets(url: &str) -> Vec<String> {
    let Ok(parsed) = Url::parse(url) else {
        return Vec::new();
    };
    let query = parsed.query().unwrap_or("");
    let values = query.split(['&', ';']).filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        is_secret_key(key).then_some(value)
    });
    let mut secrets = Vec::new();
    for raw in parsed.password().into_iter().chain(values) {
        // A `+` in a query means a space to the URL's readers.
        let decoded = percent_decode(&raw.replace('+', " "));
        secrets.extend([raw.to_owned(), percent_decode(raw), decoded]);
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    secrets
}

/// Secrets the whole process hides, longest first: every text through [`sanitise`] and every
/// log line `crate::logging` formats.
static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Makes the process hide each of `secrets` from now on (see [`REGISTERED`]): called where a
/// URL or a token is parsed, so a credential is hidden before any text can carry it.
pub(crate) fn register(secrets: impl IntoIterator<Item = String>) {
    let mut registered = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    let before = registered.len();
    registered.extend(secrets.into_iter().filter(|s| !s.is_empty()));
    if registered.len() != before {
        registered.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        registered.dedup();
    }
}

/// `text` with every registered secret replaced by `***` (by the rule of [`Sanitiser`]), and
/// nothing else changed: for log lines, which keep their own shape.
pub(crate) fn hide_registered(text: &str) -> String {
    let registered = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
    hide(text.to_owned(), &registered)
}

/// `text` with each of `secrets` replaced: a secret of [`ANYWHERE_CHARS`] or more anywhere, a
/// shorter one where no letter or digit continues it.
fn hide(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        if !text.contains(secret.as_str()) {
            continue;
        }
        text = match secret.chars().count() >= ANYWHERE_CHARS {
            true => text.replace(secret.as_str(), "***"),
            false => replace_words(&text, secret),
        };
    }
    text
}

/// A panic's message, sanitised (and so one line of at most 200 characters): for a failure's
/// text and for the panic hook, which must not print it raw.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(text), _) => text,
        (_, Some(text)) => text.as_str(),
        _ => "a panic with a non-text payload",
    };
    sanitise(message)
}

/// Whether the password of `url` equals its user name or its database (path). It is still
/// hidden everywhere, so every error naming that user or database reads `user "***"`: the
/// registry warns at launch that the password should be a word of its own.
pub(crate) fn password_is_public(url: &str) -> bool {
    let Ok(parsed) = Url::parse(url) else {
        return false;
    };
    match parsed.password().filter(|p| !p.is_empty()) {
        Some(password) => {
            password == parsed.username() || password == parsed.path().trim_start_matches('/')
        }
        None => false,
    }
}

/// Replaces every configured secret where it appears as itself, then sanitises: a secret of
/// [`ANYWHERE_CHARS`] or more anywhere, a shorter one where no letter or digit continues it.
#[derive(Clone, Default)]
pub(crate) struct Sanitiser {
    secrets: Vec<String>,
}

impl Sanitiser {
    /// A sanitiser that also hides each of `secrets` (the checks' passwords and tokens).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Sanitiser {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a password containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Sanitiser { secrets }
    }

    /// `raw` without configured passwords, then through [`sanitise`].
    pub fn clean(&self, raw: &str) -> String {
        sanitise(&hide(raw.to_owned(), &self.secrets))
    }
}

/// `text` with `secret` replaced by `***` wherever it stands as a word of its own. An
/// occurrence is part of a longer word, and kept, when a letter or digit continues it: its
/// first character and the one before it are both alphanumeric, or its last and the one
/// after it. (So `5432` is hidden in "127.0.0.1:5432" and in "port 5432", where it can be
/// the secret itself, but not in "15432".)
fn replace_words(text: &str, secret: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let (first, last) = (secret.chars().next(), secret.chars().next_back());
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut from) = (0, 0);
    while let Some(found) = text[from..].find(secret) {
        let at = from + found;
        let end = at + secret.len();
        let glued = (word(first) && word(text[..at].chars().next_back()))
            || (word(last) && word(text[end..].chars().next()));
        if glued {
            // Look again from the next character: a later, overlapping occurrence may stand alone.
            from = at + text[at..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        out.push_str(&text[copied..at]);
        out.push_str("***");
        (copied, from) = (end, end);
    }
    out.push_str(&text[copied..]);
    out
}

impl fmt::Debug for Sanitiser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sanitiser({} secrets)", self.secrets.len())
    }
}

/// Hides every registered secret, masks the password of every `scheme://user:password@host`
/// in `raw` and the value of every query parameter whose key [`is_secret_key`], folds control
/// characters and runs of white space into one space, and cuts the text to 200 characters.
pub(crate) fn sanitise(raw: &str) -> String {
    let masked = mask_url_passwords(&hide_registered(raw));
    let mut out = String::with_capacity(masked.len().min(MAX_CHARS + 3));
    let mut chars = 0;
    let mut pending_space = false;
    for c in masked.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if chars == MAX_CHARS {
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
            if chars == MAX_CHARS {
                out.push('…');
                return out;
            }
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// Rewrites every `://user:password@` in free text to `://user:***@`, and the value of every
/// secret query parameter to `***`. Each `://` is looked at
/// on its own, so text glued to the front of a URL cannot hide its password.
pub(crate) fn mask_url_passwords(raw: &str) -> String {
    let mut hidden: Vec<(usize, usize)> = Vec::new();
    for (at, _) in raw.match_indices("://") {
        let start = at + 3;
        let tail = &raw[start..];
        // The authority ends at the first character that cannot be part of it in free text.
        let end = tail
            .find(|c: char| c.is_whitespace() || "/?#\"'<>`".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        let mut ranges = Vec::new();
        if let Some(at_sign) = authority.rfind('@') {
            if let Some(colon) = authority[..at_sign].find(':') {
                ranges.push((start + colon + 1, start + at_sign));
            }
        }
        ranges.extend(secret_query_values(raw, start + end));
        hidden.extend(ranges);
    }
    // A URL inside another's query adds ranges out of order, or inside one already found.
    hidden.sort();
    let mut out = String::with_capacity(raw.len());
    let mut pos = 0;
    for (from, to) in hidden {
        if to <= pos {
            continue;
        }
        out.push_str(&raw[pos..from.max(pos)]);
        if from >= pos {
            out.push_str("***");
        }
        pos = to;
    }
    out.push_str(&raw[pos..]);
    out
}

/// The byte ranges, in `raw`, of the values of secret query parameters of the URL whose
/// authority ends at `from`: its query runs from the first `?` after it to the first white
/// space, quote or `#`.
fn secret_query_values(raw: &str, from: usize) -> Vec<(usize, usize)> {
    let rest = &raw[from..];
    let url_end = rest
        .find(|c: char| c.is_whitespace() || "\"'<>`#".contains(c))
        .unwrap_or(rest.len());
    let Some(question) = rest[..url_end].find('?') else {
        return Vec::new();
    };
    let mut ranges = Vec::new();
    let mut at = from + question + 1;
    for pair in raw[at..from + url_end].split(['&', ';']) {
        if let Some((key, value)) = pair.split_once('=') {
            if is_secret_key(key) && !value.is_empty() {
                let value_at = at + key.len() + 1;
                ranges.push((value_at, value_at + value.len()));
            }
        }
        at += pair.len() + 1;
    }
    ranges
}

/// Decodes `%XX` escapes; anything malformed is kept as it is.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_password_is_masked() {
        let text = sanitise("cannot reach postgres://app:s3cret@db:5432/x now");
        assert_eq!(text, "cannot reach postgres://app:***@db:5432/x now");
    }

    #[test]
    fn text_glued_to_a_url_does_not_hide_its_password() {
        assert_eq!(
            sanitise("x://abcpostgres://u:pw@h/d"),
            "x://abcpostgres://u:***@h/d"
        );
    }

    #[test]
    fn a_url_without_password_is_kept() {
        assert_eq!(
            sanitise("redis://127.0.0.1:6379 refused"),
            "redis://127.0.0.1:6379 refused"
        );
        assert_eq!(sanitise("redis://user@h/0"), "redis://user@h/0");
    }

    #[test]
    fn a_password_with_at_signs_is_masked_whole() {
        assert_eq!(
            sanitise("x postgres://u:p@ss@h/d"),
            "x postgres://u:***@h/d"
        );
    }

    #[test]
    fn configured_passwords_are_hidden_anywhere() {
        let s = Sanitiser::new(
            ["postgres://u:hunter%202@h/db", "redis://:abc@h"]
                .into_iter()
                .flat_map(url_secrets),
        );
        assert_eq!(s.clean("auth hunter 2 failed, abc"), "auth *** failed, ***");
        assert_eq!(s.clean("raw hunter%202"), "raw ***");
    }

    #[test]
    fn a_short_secret_standing_alone_is_hidden() {
        let s = Sanitiser::new(["5432".to_owned(), "admin".to_owned()]);
        assert_eq!(s.clean("127.0.0.1:5432 refused"), "127.0.0.1:*** refused");
        assert_eq!(s.clean("port 5432"), "port ***");
        assert_eq!(s.clean("user \"admin\" rejected"), "user \"***\" rejected");
        assert_eq!(s.clean("admin"), "***");
    }

    #[test]
    fn a_short_secret_inside_a_longer_word_is_kept() {
        let s = Sanitiser::new(["5432".to_owned(), "admin".to_owned()]);
        assert_eq!(
            s.clean("127.0.0.1:15432 refused"),
            "127.0.0.1:15432 refused"
        );
        assert_eq!(s.clean("54321"), "54321");
        assert_eq!(s.clean("role administrator"), "role administrator");
        assert_eq!(s.clean("sysadmin"), "sysadmin");
    }

    #[test]
    fn a_short_secret_is_found_beside_a_glued_copy_of_itself() {
        let s = Sanitiser::new(["a a".to_owned()]);
        // The first "a a" is glued to "b"; the overlapping second one stands alone.
        assert_eq!(s.clean("ba a a"), "ba ***");
    }

    #[test]
    fn a_short_secret_edged_with_punctuation_needs_no_space_there() {
        let s = Sanitiser::new(["-pw!".to_owned()]);
        assert_eq!(s.clean("x-pw!y"), "x***y");
    }

    #[test]
    fn a_long_secret_is_hidden_even_inside_a_word() {
        let s = Sanitiser::new(["hunter22".to_owned()]);
        assert_eq!(s.clean("xhunter22y"), "x***y");
    }

    #[test]
    fn control_characters_and_newlines_fold_into_one_space() {
        assert_eq!(sanitise("a\r\n\tb\u{1b}[31m  c\n"), "a b [31m c");
    }

    #[test]
    fn long_text_is_cut_at_200_characters() {
        let text = sanitise(&"é".repeat(500));
        assert_eq!(text.chars().count(), 201);
        assert!(text.ends_with('…'));
        assert_eq!(sanitise(&"x".repeat(200)), "x".repeat(200));
    }

    proptest::proptest! {
        /// Whatever surrounds a URL with a password, the password never survives, and the
        /// result is one line of at most 200 characters (plus the ellipsis).
        #[test]
        fn no_url_password_survives_any_text(
            before in "[ -~\\n\\t]{0,120}",
            scheme in "(postgres|redis|rediss|postgresql|http)",
            user in "[a-z]{0,8}",
            password in "[A-Za-z0-9!$%&()*+,;=._~-]{6,20}",
            host in "[a-z0-9.]{1,20}(:[0-9]{1,5})?",
            after in "[ -~\\n]{0,120}",
        ) {
            let raw = format!("{before}{scheme}://{user}:{password}@{host}/db {after}");
            let sanitiser = Sanitiser::new(url_secrets(&format!("{scheme}://{user}:{password}@{host}/db")));
            for text in [sanitise(&raw), sanitiser.clean(&raw)] {
                let hidden = !text.contains(&format!(":{password}@"));
                proptest::prop_assert!(hidden, "{}", text);
                proptest::prop_assert!(text.chars().count() <= MAX_CHARS + 1);
                proptest::prop_assert!(!text.chars().any(|c| c.is_control()));
            }
            proptest::prop_assert!(!sanitiser.clean(&raw).contains(&password));
        }
    }

    #[test]
    fn a_password_equal_to_the_user_or_database_is_noticed() {
        assert!(password_is_public("postgres://vitals:vitals@db/vitals"));
        assert!(password_is_public("postgres://app:shop@db/shop"));
        assert!(!password_is_public("postgres://vitals:other@db/vitals"));
        assert!(!password_is_public("postgres://vitals@db/vitals"));
    }

    #[test]
    fn a_secret_never_shows_in_debug_or_display() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn password_is_read_from_the_authority_only() {
        assert_eq!(url_secrets("postgres://u:pw@h/db?x=a:b@c"), ["pw"]);
        assert!(url_secrets("postgres://u@h/db").is_empty());
        assert_eq!(url_secrets("redis://:pw@h"), ["pw"]);
        assert!(url_secrets("not a url").is_empty());
    }

    #[test]
    fn secret_query_values_are_secrets_raw_and_decoded() {
        let secrets =
            url_secrets("postgres://u@h/d?sslmode=require&sslpassword=Key%2BPass&password=a+b&x=1");
        assert_eq!(secrets, ["Key%2BPass", "Key+Pass", "a b", "a+b"]);
        assert_eq!(
            url_secrets("redis+unix:///run/redis.sock?pass=s3cret"),
            ["s3cret"]
        );
        assert_eq!(url_secrets("https://h/?API_KEY=k1&Token=t2"), ["k1", "t2"]);
    }

    #[test]
    fn secret_keys_are_named_by_what_they_contain() {
        for key in [
            "password",
            "sslpassword",
            "pass",
            "api_key",
            "X-Auth-Token",
            "SECRET",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["sslmode", "user", "dbname", "timeout"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn secret_query_values_are_masked_in_free_text() {
        assert_eq!(
            sanitise("GET https://h/x?a=1&api_key=SECRET&sslpassword=p%40ss#f failed"),
            "GET https://h/x?a=1&api_key=***&sslpassword=***#f failed"
        );
        assert_eq!(
            sanitise("at postgres://u:pw@h/d?password=zz and redis://h?pass=qq"),
            "at postgres://u:***@h/d?password=*** and redis://h?pass=***"
        );
    }

    #[test]
    fn a_url_inside_another_urls_query_keeps_both_masked() {
        assert_eq!(
            sanitise("http://h/?token=t1&next=http://u:pw@g/&key=k2"),
            "http://h/?token=***&next=http://u:***@g/&key=***"
        );
    }

    #[test]
    fn a_registered_secret_is_hidden_by_sanitise_and_in_log_text() {
        register(["Registered-7c1e".to_owned()]);
        assert_eq!(sanitise("x Registered-7c1e y"), "x *** y");
        assert_eq!(hide_registered("a\nRegistered-7c1e"), "a\n***");
    }

    #[test]
    fn a_panic_message_is_sanitised_and_bounded() {
        let payload: Box<dyn std::any::Any + Send> =
            Box::new(format!("redis://:pw1234@h down\n{}", "x".repeat(300)));
        let text = panic_message(&*payload);
        assert!(text.starts_with("redis://:***@h down x"), "{text}");
        assert_eq!(text.chars().count(), 201);
        let payload: Box<dyn std::any::Any + Send> = Box::new(7_u8);
        assert_eq!(panic_message(&*payload), "a panic with a non-text payload");
    }
}
