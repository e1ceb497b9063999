//! Dependency checks: what a check is, what it found, and how findings add up to a verdict.
//!
//! - [`Check`] (here, with its vocabulary: [`Reason`], [`Failure`], [`Run`]): the trait every
//!   check implements, built in, declared or a host app's own.
//! - `verdict`: a run's status and outcome, a report's entries, the verdict, the JSON shape.
//! - `pooled`: the retry and busy-pool machinery of the pooled kinds.
//! - `registry`: the named checks of one service, assembled at ignite.
//! - `engine`: `Health`, which runs checks, shares in-flight runs and caches; `slot`, one
//!   check's results, history and counted state; `timer`, the timer mode; `events`, changes
//!   told to the log and to subscribers.
//! - one file per built-in kind: `postgres`, `redis`, `tcp`, `http`; `rocket_db`, any
//!   rocket_db_pools database.
//!
//! Routes turn a `Report` into HTTP; this module knows nothing of requests.

mod engine;
mod events;
pub(crate) mod http;
mod net;
mod pooled;
pub(crate) mod postgres;
pub(crate) mod redis;
mod registry;
pub(crate) mod rocket_db;
mod slot;
mod tcp;
mod timer;
mod verdict;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::CheckSettings;

pub use engine::check_once;
pub(crate) use engine::{checks_runtime, Health, Recorder};
pub use events::Change;
pub(crate) use events::Subscriber;
pub(crate) use pooled::{Attempt, Pooled, PooledCheck};
pub(crate) use registry::{Registry, Source};
pub(crate) use slot::{History, Thresholds};
pub(crate) use timer::Timer;
pub(crate) use verdict::{CheckMap, Entry, Report, RunOutcome, RunStatus, Verdict};

/// One dependency check. vitals runs it when a probe asks, at most once at a time, bounded by
/// its deadline; a run that outlives the deadline is cancelled and reported as `timeout`.
///
/// ```
/// use vitals::{Check, Failure, Run};
///
/// struct Queue;
///
/// #[rocket::async_trait]
/// impl Check for Queue {
///     async fn run(&self, run: &Run) -> Result<(), Failure> {
///         let depth = 3; // ask the dependency something cheap, by `run.deadline()`
///         if depth < 1000 { Ok(()) } else { Err(Failure::error(format!("{depth} jobs waiting"))) }
///     }
/// }
/// ```
#[rocket::async_trait]
pub trait Check: Send + Sync + 'static {
    /// Runs the check once. Ok when the dependency answered correctly; otherwise why not. It
    /// should give up by `run.deadline()`: the engine cancels it a few milliseconds later.
    async fn run(&self, run: &Run) -> Result<(), Failure>;

    /// Texts this check must never show (passwords, tokens), hidden from every error text,
    /// page and log line. None by default; URL passwords are masked anyway.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Its `componentType` in `application/health+json`: `component` (the default),
    /// `datastore` or `system`.
    fn component_type(&self) -> &'static str {
        "component"
    }
}

/// Why a check failed, in one word of a closed set: a field machines can act on, shown to
/// every caller in every form (the free text may be withheld; see "Who sees details").
///
/// ```
/// use vitals::Reason;
///
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert_eq!(Reason::of_io(&reset), Reason::ConnectionLost);
/// assert_eq!(Reason::ConnectionLost.as_str(), "connection_lost");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The connection was refused.
    Refused,
    /// No answer within the deadline.
    Timeout,
    /// The host name does not resolve.
    Dns,
    /// Credentials, role or database rejected.
    Auth,
    /// The server answered that it cannot serve now: too many clients, starting up, shutting
    /// down, loading.
    Unavailable,
    /// The connection broke mid-command.
    ConnectionLost,
    /// An HTTP check's upstream answered a status it does not accept.
    HttpStatus,
    /// An answer that makes no sense for the command.
    Protocol,
    /// The TLS handshake failed: the certificate is untrusted, expired or for another name,
    /// the server refused the handshake, or the port does not speak TLS.
    Tls,
    /// Timer mode: no result within `health.max_age_ms` (a stuck timer or a run that hangs).
    Stale,
    /// Anything else.
    Other,
}

impl Reason {
    /// Every reason, for metric series that start at zero.
    pub const ALL: [Reason; 11] = [
        Reason::Refused,
        Reason::Timeout,
        Reason::Dns,
        Reason::Auth,
        Reason::Unavailable,
        Reason::ConnectionLost,
        Reason::HttpStatus,
        Reason::Protocol,
        Reason::Tls,
        Reason::Stale,
        Reason::Other,
    ];

    /// The word used in JSON, text and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Refused => "refused",
            Reason::Timeout => "timeout",
            Reason::Dns => "dns",
            Reason::Auth => "auth",
            Reason::Unavailable => "unavailable",
            Reason::ConnectionLost => "connection_lost",
            Reason::HttpStatus => "http_status",
            Reason::Protocol => "protocol",
            Reason::Tls => "tls",
            Reason::Stale => "stale",
            Reason::Other => "other",
        }
    }

    /// The reason an I/O error means, by its kind.
    pub fn of_io(e: &std::io::Error) -> Reason {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => Reason::Refused,
            K::TimedOut | K::WouldBlock => Reason::Timeout,
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected => Reason::ConnectionLost,
            K::InvalidData => Reason::Protocol,
            _ => Reason::Other,
        }
    }

    /// The reason an error means, from the first error in its source chain whose type vitals
    /// knows (a TLS error, an I/O error, a deadline that passed, an sqlx error); `other` when
    /// none is.
    pub fn of_error(error: &(dyn std::error::Error + 'static)) -> Reason {
        if crate::tls::rustls_error(error).is_some() {
            return Reason::Tls;
        }
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return Reason::of_io(io);
            }
            if e.is::<tokio::time::error::Elapsed>() {
                return Reason::Timeout;
            }
            if let Some(sqlx) = e.downcast_ref::<sqlx::Error>() {
                return postgres::reason_of(sqlx);
            }
            next = e.source();
        }
        Reason::Other
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check run failed: a [`Reason`] and a text for people (sanitised before anyone
/// sees it). Reason `timeout` makes the run's status `timeout`; any other, `error`.
///
/// `?` turns any error into a `Failure` (see [`Failure::of`]):
///
/// ```
/// use vitals::{Check, Failure, Reason, Run};
///
/// struct Spool;
///
/// #[rocket::async_trait]
/// impl Check for Spool {
///     async fn run(&self, _: &Run) -> Result<(), Failure> {
///         std::fs::metadata("/no/such/spool")?; // an io::Error: reason `other` (not found)
///         Ok(())
///     }
/// }
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// assert_eq!(Failure::from(refused).reason(), Reason::Refused);
/// ```
///
/// NOTE: `Failure` does not implement `std::error::Error` itself: Rust's coherence rules allow
/// a type either that or `From<E>` for every error `E` (which `?` needs), not both. Where an
/// error type is wanted, `Box<dyn Error + Send + Sync>` takes a `Failure` through `From`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    reason: Reason,
    text: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Failure {
    /// A failure for `reason`, described by `text`.
    pub fn new(reason: Reason, text: impl std::fmt::Display) -> Failure {
        Failure {
            reason,
            text: text.to_string(),
        }
    }

    /// An `error` with reason `other` and `text`.
    pub fn error(text: impl std::fmt::Display) -> Failure {
        Failure::new(Reason::Other, text)
    }

    /// No answer before the deadline (status `timeout`; the engine words the text). A
    /// `Failure::new(Reason::Timeout, text)` keeps its own text instead.
    pub fn timeout() -> Failure {
        Failure::new(Reason::Timeout, "")
    }

    /// A failure described by `error` and its sources (`"query failed: connection refused"`),
    /// with the reason the first error of a type vitals knows means ([`Reason::of_error`]).
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Failure {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(e) = source {
            let more = e.to_string();
            if !more.is_empty() && !text.contains(&more) {
                text = format!("{text}: {more}");
            }
            source = e.source();
        }
        Failure::new(Reason::of_error(error), text)
    }

    /// Its reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// Its text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::of(&error)
    }
}

impl From<Failure> for Box<dyn std::error::Error + Send + Sync> {
    fn from(failure: Failure) -> Self {
        format!("{}: {}", failure.reason, failure.text).into()
    }
}

/// One run of a check: its deadline, and what the check noticed on the way.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let run = vitals::Run::new(Instant::now() + Duration::from_millis(500));
/// assert!(run.deadline() > Instant::now());
/// ```
#[derive(Debug)]
pub struct Run {
    deadline: Instant,
    beside_busy_pool: AtomicBool,
    /// The peer certificate's `notAfter` (Unix seconds), `i64::MIN` when none was seen.
    certificate_expires: AtomicI64,
}

impl Run {
    /// A run that must be over by `deadline`, for testing a check by hand; see also
    /// [`check_once`](crate::check_once).
    pub fn new(deadline: Instant) -> Run {
        Run {
            deadline,
            beside_busy_pool: AtomicBool::new(false),
            certificate_expires: AtomicI64::new(i64::MIN),
        }
    }

    /// When the run must be over: the asking request's time plus the check's `timeout_ms`.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Records that every pooled connection was busy, so this run tested the dependency on a
    /// connection of its own. Shown as `"busy_pool": true` and counted in `/metrics`.
    pub fn checked_beside_busy_pool(&self) {
        self.beside_busy_pool.store(true, Ordering::Relaxed);
    }

    pub(crate) fn was_beside_busy_pool(&self) -> bool {
        self.beside_busy_pool.load(Ordering::Relaxed)
    }

    /// Records the `notAfter` (Unix seconds) of the leaf certificate the dependency presented
    /// in a TLS handshake: shown as `vitals_check_tls_not_after_seconds{check}` and, within
    /// 30 days, on `/status`.
    pub fn certificate_expires(&self, not_after: i64) {
        self.certificate_expires.store(not_after, Ordering::Relaxed);
    }

    pub(crate) fn certificate_expiry(&self) -> Option<i64> {
        Some(self.certificate_expires.load(Ordering::Relaxed)).filter(|&t| t != i64::MIN)
    }
}

/// A kind of check that can be declared in `[<profile>.health.checks.<name>]` with
/// `kind = "<kind>"`. Each kind's file defines one; the registry lists them.
pub(crate) struct Declarable {
    /// The word after `kind =`.
    pub kind: &'static str,
    /// Keys the declaration must set.
    pub required: &'static [&'static str],
    /// Keys it may set besides those.
    pub optional: &'static [&'static str],
    /// Builds the check from the table; the error names the key at fault and why.
    pub build: fn(&CheckSettings) -> Declared,
}

/// A declared check, or the key at fault and why.
pub(crate) type Declared = Result<Arc<dyn Check>, (&'static str, String)>;

/// A check made of an async closure, for [`Vitals::check_fn`](crate::Vitals::check_fn).
pub(crate) struct FnCheck<F>(pub F);

#[rocket::async_trait]
impl<F, Fut, E> Check for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        match tokio::time::timeout_at(run.deadline(), (self.0)()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::error(e)),
            Err(_) => Err(Failure::timeout()),
        }
    }
}

/// Whether `name` is a valid check name: `[a-z][a-z0-9_-]{0,31}`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn a_failure_from_an_error_takes_its_reason_and_words_from_the_source_chain() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by peer");
        let failure = Failure::from(Wrapped(refused));
        assert_eq!(failure.reason(), Reason::Refused);
        assert_eq!(failure.text(), "query failed: refused by peer");
        let opaque = Failure::from(std::fmt::Error);
        assert_eq!(opaque.reason(), Reason::Other);
    }

    #[test]
    fn a_failure_goes_into_a_boxed_error_with_its_reason() {
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Failure::new(Reason::Auth, "wrong password").into();
        assert_eq!(boxed.to_string(), "auth: wrong password");
    }

    #[test]
    fn names_follow_the_pattern() {
        for good in ["a", "database", "redis-2", "x_y", &"a".repeat(32)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "Redis", "2db", "-x", "a b", "é", "a.b", &"a".repeat(33)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
