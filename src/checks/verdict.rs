//! How runs add up: a run's [`RunStatus`] and [`RunOutcome`], a check's [`Entry`] in a
//! [`Report`], the [`Verdict`] the counted states make, and the JSON shape of the checks map.

use std::sync::Arc;
use std::time::SystemTime;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::Reason;

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
mod tests {
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
