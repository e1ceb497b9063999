//! The `http` kind, declared as `kind = "http"`, `url = "http://host:port/path"` or
//! `https://...`: one GET, ok on a 2xx or, with `expect = [codes]`, on exactly those.
//! Redirects are not followed and at most 64 KiB of body is read. Also the one HTTP client of
//! the crate: `vitals healthcheck` sends its GET through [`get`].
//!
//! The client is hyper's HTTP/1 connection (hyper is in the build through Rocket) over a tokio
//! socket, with vitals' TLS (`crate::tls`: the system's roots or the check's `ca_file`) for
//! `https://`. There is no pooling or proxy support: one connection per run.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::timeout_at;
use url::{Host, Url};

use std::sync::Arc;

use super::net::connect;
use super::{Check, Declarable, Declared, Failure, Reason, Run};
use crate::config::CheckSettings;
use crate::redact::{self, percent_decode, Secret};
use crate::tls;

/// `kind = "http"`, `url = "http://..."`, optionally `expect = [codes]`.
pub(crate) const DECLARABLE: Declarable = Declarable {
    kind: "http",
    required: &["url"],
    optional: &["expect", "ca_file"],
    build: declare,
};

fn declare(settings: &CheckSettings) -> Declared {
    let url = settings.url.as_deref().unwrap_or_default();
    let mut target = Target::parse(url).map_err(|why| ("url", why))?;
    if let Some(path) = &settings.ca_file {
        if !target.tls {
            return Err(("ca_file", "only an https:// url uses it".into()));
        }
        target.roots = Some(tls::ca_file(path).map_err(|why| ("ca_file", why))?);
    }
    let check = HttpCheck::new(target, settings.expect.clone()).map_err(|why| ("expect", why))?;
    Ok(Arc::new(check))
}

/// Most of an upstream's body a check reads.
const MAX_BODY: usize = 64 * 1024;

/// Query values of at least this many characters are secrets whatever their key: a long
/// opaque value under `sig` or `auth` is most likely a credential, and a word this long cannot
/// be mistaken for ordinary text (see `redact`).
const LONG_QUERY_VALUE: usize = 8;

/// Where a GET goes, parsed once.
#[derive(Clone)]
pub(crate) struct Target {
    /// `https://`: the GET goes over TLS.
    tls: bool,
    /// The roots an `https://` target is checked against; the system's when `None`.
    roots: Option<tls::Roots>,
    /// Host name or address, IPv6 without brackets.
    host: String,
    port: u16,
    /// `host:port` as sent in `Host` and named in errors (never with credentials).
    authority: String,
    /// Path and query, `/` when empty, as sent.
    path: String,
    /// The path with every query value shown as `***`, for texts.
    shown_path: String,
    /// `Basic ...` from the URL's user and password, if it had any.
    basic: Option<Secret>,
    /// For the sanitiser: the URL's password, its secret query values (and long ones of any
    /// key), raw and percent-decoded, and the `Authorization` value with its base64 alone.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Target {
    // Hand-written: the path's query, the header and the secrets are credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.display())
            .field("basic", &self.basic)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses `http[s]://[user:password@]host[:port][/path][?query]`; the error says what is
    /// wrong.
    pub fn parse(url: &str) -> Result<Target, String> {
        let parsed = Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err("only http:// and https:// URLs are supported".into()),
        };
        let host = match parsed.host() {
            Some(Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("no host in URL".into()),
        };
        let port = match parsed.port_or_known_default() {
            Some(0) | None => return Err("bad port '0'".into()),
            Some(port) => port,
        };
        let mut secrets = redact::url_secrets(url);
        let basic = match parsed.password() {
            None if parsed.username().is_empty() => None,
            password => {
                let (user, password) = (parsed.username(), password.unwrap_or(""));
                let credentials = format!("{}:{}", percent_decode(user), percent_decode(password));
                let encoded = base64(credentials.as_bytes());
                // An upstream's 401 page may echo the header it was sent.
                let header = format!("Basic {encoded}");
                secrets.extend([header.clone(), encoded]);
                Some(Secret::new(header))
            }
        };
        let query = parsed.query().unwrap_or("");
        let long_values = query
            .split('&')
            .filter_map(|pair| pair.split_once('=').map(|(_, value)| value))
            .filter(|value| value.chars().count() >= LONG_QUERY_VALUE)
            .flat_map(|value| [value.to_owned(), percent_decode(value)]);
        secrets.extend(long_values);
        secrets.sort();
        secrets.dedup();
        redact::register(secrets.iter().cloned());
        // The Host header: the port only when the URL names one other than the scheme's.
        let host_str = parsed.host_str().unwrap_or(&host);
        let authority = match parsed.port() {
            Some(port) => format!("{host_str}:{port}"),
            None => host_str.to_owned(),
        };
        let (path, shown_path) = match parsed.query() {
            Some(query) => (
                format!("{}?{query}", parsed.path()),
                format!("{}?{}", parsed.path(), masked_query(query)),
            ),
            None => (parsed.path().to_owned(), parsed.path().to_owned()),
        };
        Ok(Target {
            tls,
            roots: None,
            host,
            port,
            authority,
            path,
            shown_path,
            basic,
            secrets,
        })
    }

    /// `http[s]://host:port/path?key=***`: no credentials, and no query value, since that is
    /// where API keys and tokens live.
    pub fn display(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.shown_path)
    }
}

/// `query` with every value replaced by `***` (a key without a value is kept as it is).
fn masked_query(query: &str) -> String {
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=***"),
            None => pair.to_owned(),
        })
        .collect();
    pairs.join("&")
}

/// What one GET brought back.
pub(crate) struct Got {
    /// The answer's status.
    pub status: StatusCode,
    /// Up to the asked number of bytes of its body.
    pub body: Vec<u8>,
    /// Over TLS, the `notAfter` of the server's certificate (Unix seconds).
    pub certificate_expires: Option<i64>,
}

/// One GET of `target` with no deadline of its own: the status and up to `max_body` bytes of
/// the body, or why there is none.
pub(crate) async fn get(target: &Target, max_body: usize) -> Result<Got, Failure> {
    let stream = connect(&target.host, target.port).await?;
    if !target.tls {
        let got = exchange(target, stream, max_body, None).await;
        return match got {
            // A port that hung up on a plain request before any answer may speak TLS.
            Err(f)
                if f.reason() != Reason::HttpStatus
                    && tls::speaks_tls(&target.host, target.port).await =>
            {
                Err(Failure::new(
                    Reason::Tls,
                    format!("{}: the port speaks TLS: use https://", target.authority),
                ))
            }
            got => got,
        };
    }
    let roots = target.roots.clone().unwrap_or_else(tls::system_roots);
    let at = &target.authority;
    let handshake = tls::handshake(stream, &target.host, &roots)
        .await
        .map_err(|e| tls::failure(at, &e))?;
    exchange(target, handshake.stream, max_body, handshake.not_after).await
}

/// The GET itself, over an open (plain or TLS) connection.
async fn exchange<S>(
    target: &Target,
    stream: S,
    max_body: usize,
    certificate_expires: Option<i64>,
) -> Result<Got, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let at = &target.authority;
    let broken = |e: hyper::Error| Failure::new(reason_of(&e), format!("{at}: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(broken)?;
    // The connection is driven by its own task; dropping the guard (at the end, or when the
    // deadline cancels this future) aborts it and closes the socket.
    let _driver = AbortOnDrop(tokio::spawn(connection));
    let mut request = Request::get(target.path.as_str())
        .header(HOST, at.as_str())
        .header(USER_AGENT, concat!("vitals/", env!("CARGO_PKG_VERSION")))
        .header(ACCEPT, "application/json");
    if let Some(basic) = &target.basic {
        request = request.header(AUTHORIZATION, basic.expose());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failure::error(format!("{at}: {e}")))?;
    let response = sender.send_request(request).await.map_err(broken)?;
    let status = response.status();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < max_body {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = max_body - bytes.len();
                    bytes.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => return Err(broken(e)),
        }
    }
    Ok(Got {
        status,
        body: bytes,
        certificate_expires,
    })
}

/// The reason a hyper error means, by its kind.
fn reason_of(e: &hyper::Error) -> Reason {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        Reason::Protocol
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        Reason::ConnectionLost
    } else if e.is_timeout() {
        Reason::Timeout
    } else {
        Reason::Other
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A GET of a URL that must answer an accepted status.
pub(crate) struct HttpCheck {
    target: Target,
    expect: Option<Vec<u16>>,
}

impl HttpCheck {
    /// A check of `target`; `expect` lists the accepted statuses (any 2xx when `None`).
    pub fn new(target: Target, expect: Option<Vec<u16>>) -> Result<HttpCheck, String> {
        if let Some(code) = expect.iter().flatten().find(|c| !(100..=599).contains(*c)) {
            return Err(format!("{code} is not an HTTP status (100 to 599)"));
        }
        Ok(HttpCheck { target, expect })
    }

    fn accepts(&self, status: StatusCode) -> bool {
        match &self.expect {
            Some(codes) => codes.contains(&status.as_u16()),
            None => status.is_success(),
        }
    }
}

#[rocket::async_trait]
impl Check for HttpCheck {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        let got = match timeout_at(run.deadline(), get(&self.target, MAX_BODY)).await {
            Ok(Ok(got)) => got,
            Ok(Err(failure)) => return Err(failure),
            Err(_) => return Err(Failure::timeout()),
        };
        if let Some(not_after) = got.certificate_expires {
            run.certificate_expires(not_after);
        }
        match got {
            Got { status, .. } if self.accepts(status) => Ok(()),
            Got { status, body, .. } => {
                let body = String::from_utf8_lossy(&body);
                let first = body.lines().next().unwrap_or("");
                Err(Failure::new(
                    Reason::HttpStatus,
                    format!(
                        "{} answered {status}{}{first:.100}",
                        self.target.display(),
                        if first.is_empty() { "" } else { ": " },
                    ),
                ))
            }
        }
    }

    fn secrets(&self) -> Vec<String> {
        self.target.secrets.clone()
    }
}

/// Standard base64 with padding, for a Basic `Authorization` header.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_host_port_and_path() {
        let t = Target::parse("http://localhost:8080/health/live?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 8080));
        assert_eq!(t.path, "/health/live?x=1");
        assert_eq!(t.authority, "localhost:8080");
        assert_eq!(Target::parse("http://h").unwrap().port, 80);
        assert_eq!(Target::parse("http://h").unwrap().path, "/");
        assert_eq!(Target::parse("http://[::1]:81/x").unwrap().host, "::1");
        let https = Target::parse("https://api.example").unwrap();
        assert!(https.tls);
        assert_eq!(
            (https.port, https.display().as_str()),
            (443, "https://api.example/")
        );
    }

    #[test]
    fn a_query_right_after_the_port_is_not_part_of_it() {
        let t = Target::parse("http://h:8000?x").unwrap();
        assert_eq!((t.port, t.path.as_str()), (8000, "/?x"));
    }

    #[test]
    fn unsupported_urls_are_refused() {
        for bad in [
            "ftp://h/",
            "http://:80/",
            "http://h:99999/",
            "h:80",
            "",
            "http://",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_become_a_basic_header_and_secrets() {
        let t = Target::parse("http://user:p%40ss@h:81/x").unwrap();
        assert_eq!(t.basic.as_ref().unwrap().expose(), "Basic dXNlcjpwQHNz");
        assert_eq!(
            t.secrets,
            ["Basic dXNlcjpwQHNz", "dXNlcjpwQHNz", "p%40ss", "p@ss"]
        );
        assert!(!t.display().contains("ss"), "{}", t.display());
    }

    #[test]
    fn query_values_show_as_stars_but_are_sent() {
        let t = Target::parse("https://h/health?api_key=SECRETKEY123&v=2&flag").unwrap();
        assert_eq!(t.display(), "https://h/health?api_key=***&v=***&flag");
        assert_eq!(t.path, "/health?api_key=SECRETKEY123&v=2&flag");
        assert_eq!(t.secrets, ["SECRETKEY123"]);
    }

    #[test]
    fn debug_of_a_target_shows_no_secret() {
        let t = Target::parse("http://user:p%40ss@h:81/x?token=tok3n&sig=abcdefgh12").unwrap();
        let debug = format!("{t:?}");
        for secret in ["p%40ss", "p@ss", "dXNlcjpwQHNz", "tok3n", "abcdefgh12"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("http://h:81/x?token=***&sig=***"), "{debug}");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn expect_codes_must_be_statuses() {
        let target = || Target::parse("http://h/").unwrap();
        assert!(HttpCheck::new(target(), Some(vec![200, 204])).is_ok());
        assert!(HttpCheck::new(target(), Some(vec![0])).is_err());
    }
}
