//! Dependency checks: what a check is, what it found, and how findings add up to a verdict.
//!
//! - [`Check`]: the known checks and their one name (config, JSON, query strings).
//! - `probe`: one probe per dependency, each bounded by a deadline.
//! - `engine`: [`Health`], which runs probes, shares in-flight runs, caches and keeps history.
//! - `sanitise`: the one place dependency text passes through before anyone sees it.
//!
//! Routes turn a [`Report`] into HTTP; this module knows nothing of requests.

mod engine;
mod probe;
mod sanitise;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

pub use engine::{stage, Health, History};
pub use sanitise::{sanitise, Sanitiser};

/// A dependency check. Its [`name`](Check::name) is used alike in config, JSON, metric labels
/// and query strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// `SELECT 1` on a pooled Postgres connection.
    Database,
    /// `PING` on a pooled Redis connection.
    Redis,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 2] = [Check::Database, Check::Redis];

    /// The check's name: `database` or `redis`.
    pub fn name(self) -> &'static str {
        match self {
            Check::Database => "database",
            Check::Redis => "redis",
        }
    }

    /// The known names, comma separated, for error messages.
    pub fn names() -> String {
        Check::ALL.map(Check::name).join(", ")
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not one of [`Check::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCheck(pub String);

impl FromStr for Check {
    type Err = UnknownCheck;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Check::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownCheck(s.to_owned()))
    }
}

/// How one check run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The dependency answered correctly within the deadline.
    Ok,
    /// The dependency answered with a failure, or refused the connection.
    Error,
    /// No answer within the deadline (a hung socket, a paused server, an exhausted pool).
    Timeout,
}

impl Status {
    /// The lowercase word used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }
}

/// The result of one completed check run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// Time from start to end, in milliseconds (µs resolution).
    pub duration_ms: f64,
    /// Short, sanitised text when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall-clock time the run ended.
    #[serde(skip)]
    pub finished_at: SystemTime,
}

/// The overall answer of a readiness evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
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
    /// Whether this verdict lets traffic in (readiness 200).
    pub fn is_serving(self) -> bool {
        matches!(self, Verdict::Ready | Verdict::Degraded)
    }

    /// The verdict for a set of entries: any critical failure makes it unavailable, any other
    /// failure degraded. No entries at all is ready.
    pub fn of(entries: &[Entry]) -> Verdict {
        let failing = entries.iter().filter(|e| e.outcome.status != Status::Ok);
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
pub struct Entry {
    /// Which check.
    pub check: Check,
    /// Whether its failure makes the service unavailable.
    pub critical: bool,
    /// The result: a fresh run, a shared in-flight run, or a cached one.
    pub outcome: Arc<Outcome>,
    /// True only for the caller that started this run: it alone logs it.
    pub fresh: bool,
}

/// A readiness answer: the verdict and the checks behind it.
#[derive(Debug, Clone)]
pub struct Report {
    /// The overall answer.
    pub verdict: Verdict,
    /// The checks asked for, in [`Check::ALL`] order; empty while draining.
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

/// Serialises entries as the JSON map `{"<name>": {"status", "duration_ms", ...}}`.
#[derive(Debug)]
pub struct CheckMap<'a>(pub &'a [Entry]);

impl Serialize for CheckMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            outcome: &'a Outcome,
            critical: bool,
        }
        serializer.collect_map(self.0.iter().map(|e| {
            let json = Json {
                outcome: &e.outcome,
                critical: e.critical,
            };
            (e.check.name(), json)
        }))
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let draining = self.verdict == Verdict::Draining;
        let mut map = serializer.serialize_map(Some(if draining { 1 } else { 2 }))?;
        map.serialize_entry("status", &self.verdict)?;
        if !draining {
            map.serialize_entry("checks", &CheckMap(&self.entries))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(check: Check, status: Status, critical: bool) -> Entry {
        Entry {
            check,
            critical,
            outcome: Arc::new(Outcome {
                status,
                duration_ms: 1.5,
                error: (status != Status::Ok).then(|| "boom".to_owned()),
                finished_at: SystemTime::now(),
            }),
            fresh: true,
        }
    }

    #[test]
    fn no_checks_is_ready() {
        assert_eq!(Verdict::of(&[]), Verdict::Ready);
    }

    #[test]
    fn a_failing_critical_check_is_unavailable() {
        let entries = [
            entry(Check::Database, Status::Ok, true),
            entry(Check::Redis, Status::Timeout, true),
        ];
        assert_eq!(Verdict::of(&entries), Verdict::Unavailable);
    }

    #[test]
    fn a_failing_non_critical_check_is_degraded() {
        let entries = [
            entry(Check::Database, Status::Ok, true),
            entry(Check::Redis, Status::Error, false),
        ];
        assert_eq!(Verdict::of(&entries), Verdict::Degraded);
    }

    #[test]
    fn a_critical_failure_outranks_a_non_critical_one() {
        let entries = [
            entry(Check::Database, Status::Error, false),
            entry(Check::Redis, Status::Error, true),
        ];
        assert_eq!(Verdict::of(&entries), Verdict::Unavailable);
    }

    #[test]
    fn names_parse_back_to_checks() {
        for check in Check::ALL {
            assert_eq!(check.name().parse::<Check>(), Ok(check));
        }
        assert_eq!("Redis".parse::<Check>(), Err(UnknownCheck("Redis".into())));
    }

    #[test]
    fn report_serialises_checks_as_a_map_in_order() {
        let report = Report {
            verdict: Verdict::Degraded,
            entries: vec![
                entry(Check::Database, Status::Ok, true),
                entry(Check::Redis, Status::Error, false),
            ],
        };
        let json = rocket::serde::json::to_string(&report).unwrap();
        assert_eq!(
            json,
            r#"{"status":"degraded","checks":{"database":{"status":"ok","duration_ms":1.5,"critical":true},"redis":{"status":"error","duration_ms":1.5,"error":"boom","critical":false}}}"#
        );
    }

    #[test]
    fn a_draining_report_has_no_checks() {
        let json = rocket::serde::json::to_string(&Report::draining()).unwrap();
        assert_eq!(json, r#"{"status":"draining"}"#);
    }
}
