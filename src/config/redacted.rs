//! Configuration as it may be shown: the `Debug` of the settings and the text of a
//! configuration error, neither with a token, a URL's password or a URL's query values.

use std::fmt;

use figment::error::{Actual, Kind};
use url::Url;

use super::{CheckSettings, HealthSettings};
use crate::redact::{is_secret_key, mask_url_passwords};

impl fmt::Debug for HealthSettings {
    // Hand-written: `token` is a secret and the checks' URLs may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthSettings")
            .field("timeout_ms", &self.timeout_ms)
            .field("cache_ms", &self.cache_ms)
            .field("drain_ms", &self.drain_ms)
            .field("port", &self.port)
            .field("stall_ms", &self.stall_ms)
            .field("details", &self.details)
            .field("token", &self.token)
            .field("interval_ms", &self.interval_ms)
            .field("max_age_ms", &self.max_age_ms)
            .field("fail_after", &self.fail_after)
            .field("pass_after", &self.pass_after)
            .field("checks", &self.checks)
            .finish()
    }
}

impl fmt::Debug for CheckSettings {
    // Hand-written: `url` may hold a password and query values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckSettings")
            .field("timeout_ms", &self.timeout_ms)
            .field("critical", &self.critical)
            .field("enabled", &self.enabled)
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("url", &self.url.as_deref().map(shown_url))
            .field("expect", &self.expect)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("fail_after", &self.fail_after)
            .field("pass_after", &self.pass_after)
            .finish()
    }
}

/// `url` with its password and every query value shown as `***`.
fn shown_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return "<not a URL>".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if let Some(query) = parsed.query().map(str::to_owned) {
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                None => pair.to_owned(),
            })
            .collect();
        parsed.set_query(Some(&masked.join("&")));
    }
    parsed.into()
}

/// The text of a configuration error, naming the key, without the value where it may be a
/// secret. figment's "invalid type" quotes the value it found; for `ROCKET_HEALTH` that may
/// be the whole variable (an unquoted token it could not read as TOML is read as one string).
/// So a string found where something else was expected is never quoted, nor a number at a
/// key that names a secret (`token = 12345678`); a TOML file's own parse error, which quotes
/// the line, has the values of such keys masked.
pub(super) fn describe(error: figment::Error) -> String {
    let texts: Vec<String> = error
        .into_iter()
        .map(|mut e| {
            let secret_path = e.path.iter().any(|key| is_secret_key(key) || key == "url");
            // `ROCKET_HEALTH` that figment could not read as inline TOML.
            let unread_table =
                e.path == ["health"] && matches!(e.kind, Kind::InvalidType(Actual::Str(_), _));
            e.kind = match e.kind {
                Kind::InvalidType(found, expected) => {
                    Kind::InvalidType(hidden(found, secret_path), expected)
                }
                Kind::InvalidValue(found, expected) => {
                    Kind::InvalidValue(hidden(found, secret_path), expected)
                }
                Kind::Message(text) => Kind::Message(mask_assignments(&text)),
                kind => kind,
            };
            let hint = match unread_table {
                true => " (quote every string inside it, the token too: token=\"...\")",
                false => "",
            };
            mask_url_passwords(&crate::redact::hide_registered(&format!("{e}{hint}")))
        })
        .collect();
    texts.join("; ")
}

/// `found` as figment names it, without its value when that may be a secret.
fn hidden(found: Actual, secret_path: bool) -> Actual {
    let what = match found {
        Actual::Str(_) | Actual::Char(_) | Actual::Other(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_) if secret_path => "a number",
        Actual::Bool(_) if secret_path => "a boolean",
        found => return found,
    };
    Actual::Other(format!("{what} (its value is not shown)"))
}

/// `text` with the value of every `key = value` or `key: value` whose key names a secret
/// replaced by `***`, up to the end of the value (a quote, a comma, a brace or the line's end).
fn mask_assignments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['=', ':']) {
        let (before, after) = rest.split_at(at);
        let named = before.trim_end();
        let key_start = named
            .rfind(|c: char| !(c.is_alphanumeric() || "_-.\"".contains(c)))
            .map_or(0, |i| i + 1);
        let key = named[key_start..].trim_matches('"');
        out.push_str(before);
        out.push_str(&after[..1]);
        let value = &after[1..];
        if !key.is_empty() && is_secret_key(key.rsplit('.').next().unwrap_or(key)) {
            let lead = value.len() - value.trim_start_matches([' ', '\t']).len();
            let end = value[lead..]
                .find(['\n', ',', '}', ']'])
                .map_or(value.len(), |i| lead + i);
            out.push_str(&value[..lead]);
            out.push_str("***");
            rest = &value[end..];
        } else {
            rest = value;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secret;

    #[test]
    fn debug_of_the_settings_shows_no_token_or_url_secret() {
        let check = CheckSettings {
            url: Some("https://ops:Pw-debug-1@h/x?api_key=K-debug-2&v=1".into()),
            ..CheckSettings::default()
        };
        let health = HealthSettings {
            token: Some(Secret::new("T-debug-3".into())),
            checks: [("pay".to_owned(), check)].into(),
            ..HealthSettings::default()
        };
        let debug = format!("{health:?}");
        for secret in ["Pw-debug-1", "K-debug-2", "T-debug-3"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            debug.contains("https://ops:***@h/x?api_key=***&v=***"),
            "{debug}"
        );
    }

    fn error_of(figment: figment::Figment) -> String {
        match super::super::Settings::from_figment(&figment) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_config_error_names_the_key_but_never_shows_the_token() {
        use figment::providers::{Format, Toml};
        let unquoted = Toml::string("[health]\ntoken = trueblue7\n");
        let e = error_of(figment::Figment::from(unquoted));
        assert!(!e.contains("trueblue7"), "{e}");
        assert!(e.contains("token"), "{e}");
        let numeric = figment::Figment::from(("health.token", 12345678));
        let e = error_of(numeric);
        assert!(!e.contains("12345678"), "{e}");
        assert!(e.contains("health.token"), "{e}");
        let table = figment::Figment::from(("health", "{details=\"x\",token=tb-77}"));
        let e = error_of(table);
        assert!(!e.contains("tb-77"), "{e}");
    }

    #[test]
    fn an_assignment_to_a_secret_key_is_masked() {
        assert_eq!(
            mask_assignments("line 3\n  | token = trueblue7\nx = 1"),
            "line 3\n  | token = ***\nx = 1"
        );
        assert_eq!(
            mask_assignments(r#"{details="authorized",token=tb7} and "api_key": "k""#),
            r#"{details="authorized",token=***} and "api_key": ***"#
        );
    }
}
