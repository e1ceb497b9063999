//! Dependency checks: what a check is, what it found, and how findings add up to a verdict.
//!
//! - [`Check`]: the trait every check implements, built in, declared or a host app's own.
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
pub(crate) mod postgres;
pub(crate) mod redis;
mod registry;
pub(crate) mod rocket_db;
mod slot;
mod tcp;
mod timer;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::CheckSettings;

pub use engine::check_once;
pub(crate) use engine::{checks_runtime, Health, Recorder};
pub use events::Change;
pub(crate) use events::Subscriber;
pub(crate) use registry::{Registry, Source};
pub(crate) use slot::{History, Thresholds};
pub(crate) use timer::Timer;

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

/// Runs `attempt` once more when the first try found a dead pooled connection, so a dependency
/// restart is not reported as an outage.
async fn with_one_retry<F, Fut>(mut attempt: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Attempt>>,
{
    match attempt().await {
        Ok(()) => Ok(()),
        Err(Attempt::Stale(_)) => attempt().await.map_err(Attempt::into_failure),
        Err(other) => Err(other.into_failure()),
    }
}

/// What the pooled kinds (`postgres`, `redis`) do; [`PooledCheck`] turns one into a check.
#[rocket::async_trait]
pub(crate) trait Pooled: Send + Sync + 'static {
    /// Every connection is checked out and the pool may open no more.
    fn is_busy(&self) -> bool;
    /// One try on a pooled connection, acquire included, by `deadline`.
    async fn on_pooled(&self, deadline: Instant) -> Result<(), Attempt>;
    /// The same on a connection of the check's own, outside the pool.
    async fn on_own_connection(&self, deadline: Instant) -> Result<(), Failure>;
    /// The `notAfter` of the certificate the pool's latest TLS handshake saw.
    fn certificate_expires(&self) -> Option<i64> {
        None
    }
}

/// A check on a pool: one retry when a pooled connection turns out dead, and, on a pool
/// shared with a host app's work, a connection of its own while the pool is all busy.
pub(crate) struct PooledCheck<P> {
    pool: P,
    secrets: Vec<String>,
    shared: bool,
}

impl<P: Pooled> PooledCheck<P> {
    /// A check on `pool`; `secrets` are texts (the URL's password) it must hide.
    pub fn new(pool: P, secrets: Vec<String>) -> PooledCheck<P> {
        PooledCheck {
            pool,
            secrets,
            shared: false,
        }
    }

    /// The pool is shared with a host app's own work: when all of it is busy, test the server
    /// on a connection of the check's own instead of waiting in the queue. (vitals' own pools
    /// need not: their only user is the check, one run at a time.)
    pub fn shared(mut self) -> PooledCheck<P> {
        self.shared = true;
        self
    }
}

#[rocket::async_trait]
impl<P: Pooled> Check for PooledCheck<P> {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        let result = if self.shared && self.pool.is_busy() {
            run.checked_beside_busy_pool();
            self.pool.on_own_connection(run.deadline()).await
        } else {
            with_one_retry(|| self.pool.on_pooled(run.deadline())).await
        };
        if let Some(not_after) = self.pool.certificate_expires() {
            run.certificate_expires(not_after);
        }
        result
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }

    fn component_type(&self) -> &'static str {
        "datastore"
    }
}

/// How one try on one connection failed, for the built-in kinds.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// A final failure.
    Failed(Failure),
    /// A pooled connection turned out dead (its server went away since it was last used):
    /// worth one more try on a new connection; the failure to report if that is not possible.
    Stale(Failure),
}

impl Attempt {
    fn into_failure(self) -> Failure {
        match self {
            Attempt::Failed(f) | Attempt::Stale(f) => f,
        }
    }
}

impl From<Failure> for Attempt {
    fn from(f: Failure) -> Self {
        Attempt::Failed(f)
    }
}

/// How one check run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunStatus {
    /// The dependency answered correctly within the deadline.
    Ok,
    /// The dependency answered with a failure, or refused the connection.
    Error,
    /// No answer within the deadline (a hung socket, a paused server, an exhausted pool).
    Timeout,
}

impl RunStatus {
    /// Every status, for metric series that start at zero.
    pub const ALL: [RunStatus; 3] = [RunStatus::Ok, RunStatus::Error, RunStatus::Timeout];

    /// Whether the run passed.
    pub fn is_ok(self) -> bool {
        self == RunStatus::Ok
    }

    /// The lowercase word used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Timeout => "timeout",
        }
    }
}

/// The result of one completed check run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunOutcome {
    /// How it ended.
    pub status: RunStatus,
    /// Time from start to end, in milliseconds (µs resolution).
    pub duration_ms: f64,
    /// Why it failed, when not `ok`.
    pub reason: Option<Reason>,
    /// Short, sanitised text when not `ok`.
    pub error: Option<String>,
    /// The check used a connection of its own because its pool was fully busy.
    pub busy_pool: bool,
    /// The `notAfter` (Unix seconds) of the certificate a TLS handshake of the run saw.
    pub certificate_expires: Option<i64>,
    /// Whether the check counts as passing after this run (see `fail_after`, `pass_after`):
    /// what the verdict, `vitals_check_up` and the page follow.
    pub passing: bool,
    /// While this run's own result disagrees with the counted state: how many more runs like
    /// it would change that state.
    pub held: Option<u32>,
    /// Wall-clock time the run ended.
    pub finished_at: SystemTime,
}

/// The overall answer of a readiness evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    /// Every check passed.
    Ready,
    /// Only non-critical checks failed: still serving (200).
    Degraded,
    /// A critical check failed (503).
    Unavailable,
    /// Shutting down: readiness is withdrawn whatever the checks say (503).
    Draining,
}

impl Verdict {
    /// The word in JSON: `ready`, `degraded`, `unavailable` or `draining`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::Degraded => "degraded",
            Verdict::Unavailable => "unavailable",
            Verdict::Draining => "draining",
        }
    }

    /// Whether this verdict lets traffic in (readiness 200).
    pub fn is_serving(self) -> bool {
        matches!(self, Verdict::Ready | Verdict::Degraded)
    }

    /// The verdict for a set of entries: any critical failure makes it unavailable, any other
    /// failure degraded. No entries at all is ready.
    pub fn of(entries: &[Entry]) -> Verdict {
        let failing = entries.iter().filter(|e| !e.outcome.passing);
        let mut verdict = Verdict::Ready;
        for entry in failing {
            if entry.critical {
                return Verdict::Unavailable;
            }
            verdict = Verdict::Degraded;
        }
        verdict
    }
}

/// One check's part of a [`Report`].
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The check's position in the registry.
    pub index: usize,
    /// The check's name.
    pub name: Arc<str>,
    /// Its `componentType` for health+json.
    pub component: &'static str,
    /// Whether its failure makes the service unavailable.
    pub critical: bool,
    /// The result: a fresh run, a shared in-flight run, or a cached one.
    pub outcome: Arc<RunOutcome>,
}

/// A readiness answer: the verdict and the checks behind it.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The overall answer.
    pub verdict: Verdict,
    /// The checks asked for, in registry order; empty while draining.
    pub entries: Vec<Entry>,
}

impl Report {
    /// The answer while draining: no checks run.
    pub fn draining() -> Report {
        Report {
            verdict: Verdict::Draining,
            entries: Vec::new(),
        }
    }
}

/// Serialises entries as the JSON map `{"<name>": {"status", "duration_ms", ...}}`; the
/// `error` texts only when the flag (details shown) is set.
#[derive(Debug)]
pub(crate) struct CheckMap<'a>(pub &'a [Entry], pub bool);

impl Serialize for CheckMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            status: RunStatus,
            duration_ms: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<Reason>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a str>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            busy_pool: bool,
            critical: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            held: Option<Held>,
        }
        /// The counted state a disagreeing run leaves in place, and for how many more runs.
        #[derive(Serialize)]
        struct Held {
            status: &'static str,
            runs_left: u32,
        }
        let details = self.1;
        serializer.collect_map(self.0.iter().map(|e| {
            let o = &e.outcome;
            let json = Json {
                status: o.status,
                duration_ms: o.duration_ms,
                reason: o.reason,
                error: o.error.as_deref().filter(|_| details),
                busy_pool: o.busy_pool,
                critical: e.critical,
                held: o.held.map(|runs_left| Held {
                    status: if o.passing { "passing" } else { "failing" },
                    runs_left,
                }),
            };
            (&*e.name, json)
        }))
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let draining = self.verdict == Verdict::Draining;
        let mut map = serializer.serialize_map(Some(if draining { 1 } else { 2 }))?;
        map.serialize_entry("status", &self.verdict)?;
        if !draining {
            map.serialize_entry("checks", &CheckMap(&self.entries, true))?;
        }
        map.end()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn entry(name: &str, status: RunStatus, critical: bool) -> Entry {
        Entry {
            index: 0,
            name: name.into(),
            component: "component",
            critical,
            outcome: Arc::new(RunOutcome {
                status,
                duration_ms: 1.5,
                reason: (status != RunStatus::Ok).then_some(Reason::Other),
                error: (status != RunStatus::Ok).then(|| "boom".to_owned()),
                busy_pool: false,
                certificate_expires: None,
                passing: status == RunStatus::Ok,
                held: None,
                finished_at: SystemTime::now(),
            }),
        }
    }

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
    fn no_checks_is_ready() {
        assert_eq!(Verdict::of(&[]), Verdict::Ready);
    }

    #[test]
    fn a_failing_critical_check_is_unavailable() {
        let entries = [
            entry("database", RunStatus::Ok, true),
            entry("redis", RunStatus::Timeout, true),
        ];
        assert_eq!(Verdict::of(&entries), Verdict::Unavailable);
    }

    #[test]
    fn a_failing_non_critical_check_is_degraded() {
        let entries = [
            entry("database", RunStatus::Ok, true),
            entry("redis", RunStatus::Error, false),
        ];
        assert_eq!(Verdict::of(&entries), Verdict::Degraded);
    }

    #[test]
    fn a_critical_failure_outranks_a_non_critical_one() {
        let entries = [
            entry("database", RunStatus::Error, false),
            entry("redis", RunStatus::Error, true),
        ];
        assert_eq!(Verdict::of(&entries), Verdict::Unavailable);
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

    #[test]
    fn report_serialises_checks_as_a_map_in_order() {
        let report = Report {
            verdict: Verdict::Degraded,
            entries: vec![
                entry("database", RunStatus::Ok, true),
                entry("redis", RunStatus::Error, false),
            ],
        };
        let json = rocket::serde::json::to_string(&report).unwrap();
        assert_eq!(
            json,
            r#"{"status":"degraded","checks":{"database":{"status":"ok","duration_ms":1.5,"critical":true},"redis":{"status":"error","duration_ms":1.5,"reason":"other","error":"boom","critical":false}}}"#
        );
    }

    #[test]
    fn a_draining_report_has_no_checks() {
        let json = rocket::serde::json::to_string(&Report::draining()).unwrap();
        assert_eq!(json, r#"{"status":"draining"}"#);
    }
}
