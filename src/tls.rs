//! TLS for every kind of check, on one stack: rustls with the ring provider, trusting the
//! system's roots or the PEM roots of a `ca_file`. SNI and host name verification are always
//! on: a private CA is what `ca_file` is for. A handshake yields the peer's leaf certificate
//! `notAfter`, which the checks report (`vitals_check_tls_not_after_seconds`).
//!
//! Postgres is the exception to "one configuration": sqlx makes its own rustls configuration
//! from libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`, on the same rustls.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::checks::{Failure, Reason};

/// A client configuration: whose roots to trust.
pub(crate) type Roots = Arc<ClientConfig>;

/// The configuration trusting the system's roots (`/etc/ssl/certs` on Debian), read once.
pub(crate) fn system_roots() -> Roots {
    static SYSTEM: OnceLock<Roots> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                log::warn!(target: "vitals::tls", "system roots: {e}");
            }
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                log::warn!(
                    target: "vitals::tls",
                    "no system root certificates found: TLS checks without a ca_file will fail \
                     as untrusted (install ca-certificates)"
                );
            }
            config(roots)
        })
        .clone()
}

/// The configuration trusting only the PEM certificates in the file at `path`; the error says
/// why the file cannot serve.
pub(crate) fn ca_file(path: &str) -> Result<Roots, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{path} is not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{path}: not a usable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{path} holds no certificate"));
    }
    Ok(config(roots))
}

/// `roots` or, without them, the system's.
pub(crate) fn roots_or_system(ca_file: Option<&str>) -> Result<Roots, String> {
    match ca_file {
        Some(path) => self::ca_file(path),
        None => Ok(system_roots()),
    }
}

fn config(roots: RootCertStore) -> Roots {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions");
    Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
}

/// A TLS connection that completed its handshake, and its peer's leaf certificate `notAfter`
/// (Unix seconds) when it could be read.
pub(crate) struct Handshake<S> {
    pub stream: TlsStream<S>,
    pub not_after: Option<i64>,
}

/// The TLS handshake over `stream` with `host` (its name is sent as SNI and verified against
/// the certificate; an IP address is verified as one). A TLS failure is an `io::Error` of kind
/// `InvalidData` carrying the `rustls::Error` (see [`rustls_error`]).
pub(crate) async fn handshake<S>(stream: S, host: &str, roots: &Roots) -> io::Result<Handshake<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{host}' is no TLS name: {e}"),
        )
    })?;
    let stream = TlsConnector::from(roots.clone())
        .connect(name, stream)
        .await?;
    let not_after = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| not_after(leaf));
    Ok(Handshake { stream, not_after })
}

/// The rustls error in `error` or its source chain (inside an `io::Error` too), if any.
pub(crate) fn rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(tls) = rustls_error(inner) {
                return Some(tls);
            }
        }
        next = e.source();
    }
    None
}

/// Whether the server at `host:port` speaks TLS: a handshake (trusting the system's roots)
/// gets as far as the server's certificate. For diagnosing a plain-text client's failure on
/// that port, once it has failed: the port is then named as a TLS port.
pub(crate) async fn speaks_tls(host: &str, port: u16) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect((host, port)).await else {
        return false;
    };
    match handshake(stream, host, &system_roots()).await {
        Ok(_) => true,
        Err(e) => matches!(
            rustls_error(&e),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::AlertReceived(_))
        ),
    }
}

/// The failure a handshake with `at` ended in: reason `tls` when rustls said why, else the
/// I/O error's (a server that hangs up mid-handshake: `connection_lost`).
pub(crate) fn failure(at: &str, e: &io::Error) -> Failure {
    match rustls_error(e) {
        Some(tls) => Failure::new(Reason::Tls, format!("{at}: TLS: {}", describe(tls))),
        None if e.kind() == io::ErrorKind::InvalidInput => Failure::new(Reason::Tls, e),
        None => Failure::new(Reason::of_io(e), format!("{at}: TLS handshake: {e}")),
    }
}

/// What a TLS failure means, in words for token holders.
pub(crate) fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate is not valid yet".into()
            }
            CertificateError::UnknownIssuer => {
                "certificate is not trusted (unknown issuer; set ca_file for a private CA)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate is for another name".into()
            }
            other => format!("certificate rejected: {other:?}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the answer is not TLS (a plain-text port?)".into()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the server refused the handshake: {alert:?}")
        }
        other => other.to_string(),
    }
}

/// The `notAfter` of a DER X.509 certificate, in Unix seconds.
pub(crate) fn not_after(der: &[u8]) -> Option<i64> {
    let (cert, _) = element(der, SEQUENCE)?;
    let (tbs, _) = element(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&EXPLICIT_VERSION) {
        rest = element(rest, EXPLICIT_VERSION)?.1;
    }
    let rest = element(rest, INTEGER)?.1; // serialNumber
    let rest = element(rest, SEQUENCE)?.1; // signature algorithm
    let rest = element(rest, SEQUENCE)?.1; // issuer
    let (validity, _) = element(rest, SEQUENCE)?;
    let (_, after) = any_element(validity)?; // notBefore
    let (tag, time, _) = any_element(after).map(|(t, rest)| (t.0, t.1, rest))?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        UTC_TIME => {
            // RFC 5280: YY < 50 is 20YY.
            let yy: i32 = text.get(0..2)?.parse().ok()?;
            format!("{}{text}", if yy < 50 { "20" } else { "19" })
        }
        GENERALIZED_TIME => text.to_owned(),
        _ => return None,
    };
    let number = |range: std::ops::Range<usize>| full.get(range)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(number(0..4)? as i32, month, number(6..8)? as u8).ok()?;
    let at = date
        .with_hms(
            number(8..10)? as u8,
            number(10..12)? as u8,
            number(12..14)? as u8,
        )
        .ok()?;
    (full.get(14..) == Some("Z")).then(|| at.assume_utc().unix_timestamp())
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const EXPLICIT_VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The content of the DER element at the start of `input` if its tag is `tag`, and the rest.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let ((found, content), rest) = any_element(input)?;
    (found == tag).then_some((content, rest))
}

/// A DER element's tag and content.
type Element<'a> = (u8, &'a [u8]);

/// The tag and content of the DER element at the start of `input`, and the rest.
fn any_element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, input) = input.split_first()?;
    let (length, input) = match first {
        short @ 0..=0x7f => (usize::from(short), input),
        long => {
            let bytes = usize::from(long & 0x7f);
            if bytes == 0 || bytes > 4 || input.len() < bytes {
                return None;
            }
            let (len, input) = input.split_at(bytes);
            (
                len.iter().fold(0usize, |n, b| n << 8 | usize::from(*b)),
                input,
            )
        }
    };
    (input.len() >= length).then(|| {
        let (content, rest) = input.split_at(length);
        ((tag, content), rest)
    })
}
