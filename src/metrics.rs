//! Prometheus metrics: the registry in managed state, its recording fairing and `/metrics`.
//!
//! Everything here reports results the engine already has: a scrape never runs a check. Check
//! runs are recorded by the run's own task, beside its log line, so the run counter and the
//! log agree. HTTP requests are labelled by route name, never by raw path.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::{get, routes, Request, Response, State};

use crate::checks::{Health, Reason, RunOutcome, RunStatus};
use crate::fairings::Scope;
use crate::reply::{Body, Reply};
use crate::shutdown::Lifecycle;

/// Lag buckets in seconds: 1 ms (a timer's own slack) to 30 s (long past any stall).
const LAG_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
];

/// Histogram buckets in seconds: 50 µs (a pooled round trip on loopback) to 5 s (past any
/// sensible deadline), in 1-2.5-5 steps.
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// The metric families, registered once, in managed state. Clones share the same series.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    check_up: IntGaugeVec,
    check_duration: HistogramVec,
    check_runs: IntCounterVec,
    check_failures: IntCounterVec,
    busy_pool: IntCounterVec,
    check_overdue: IntGaugeVec,
    tls_not_after: IntGaugeVec,
    transitions: IntCounterVec,
    http_requests: IntCounterVec,
    runtime_lag: Histogram,
    stall_threshold: Gauge,
    ready: IntGauge,
    /// The checks' names, for the gauges set at each scrape.
    checks: std::sync::Arc<[std::sync::Arc<str>]>,
    draining: IntGauge,
}

impl Metrics {
    /// A registry holding every vitals metric; run counters start at 0 for each of `checks`
    /// and each outcome so that `rate()` works from the first scrape. Each check is given with
    /// its deadline and criticality, which alerting rules compare against.
    pub fn new(checks: &[(&str, Duration, bool)]) -> Metrics {
        let check_up = IntGaugeVec::new(
            Opts::new(
                "vitals_check_up",
                "1 when the check's latest run was ok, else 0",
            ),
            &["check"],
        );
        let check_critical = IntGaugeVec::new(
            Opts::new(
                "vitals_check_critical",
                "1 when the check's failure makes the service unavailable, else 0",
            ),
            &["check"],
        );
        let check_deadline = GaugeVec::new(
            Opts::new("vitals_check_deadline_seconds", "The check's deadline"),
            &["check"],
        );
        let check_duration = HistogramVec::new(
            HistogramOpts::new(
                "vitals_check_duration_seconds",
                "Duration of check runs, acquire and command together",
            )
            .buckets(BUCKETS.to_vec()),
            &["check"],
        );
        let check_runs = IntCounterVec::new(
            Opts::new("vitals_check_runs_total", "Check runs by check and outcome"),
            &["check", "outcome"],
        );
        let check_failures = IntCounterVec::new(
            Opts::new(
                "vitals_check_failures_total",
                "Failed check runs by check and reason",
            ),
            &["check", "reason"],
        );
        let busy_pool = IntCounterVec::new(
            Opts::new(
                "vitals_check_busy_pool_total",
                "Check runs made on a connection of their own because the pool was fully busy",
            ),
            &["check"],
        );
        let check_overdue = IntGaugeVec::new(
            Opts::new(
                "vitals_check_overdue",
                "1 while a run of the check is still going past its deadline (a check that \
                 ignores it, e.g. by blocking its thread), else 0",
            ),
            &["check"],
        );
        let tls_not_after = IntGaugeVec::new(
            Opts::new(
                "vitals_check_tls_not_after_seconds",
                "notAfter of the certificate the check's latest TLS handshake saw, in Unix time",
            ),
            &["check"],
        );
        let transitions = IntCounterVec::new(
            Opts::new(
                "vitals_check_transitions_total",
                "Changes of a check's counted state (passing to failing and back)",
            ),
            &["check"],
        )
        .expect("valid metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "vitals_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        );
        let runtime_lag = Histogram::with_opts(
            HistogramOpts::new(
                "vitals_runtime_lag_seconds",
                "How late the app runtime's heartbeat task ran (every 100 ms): its lag",
            )
            .buckets(LAG_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let stall_threshold = Gauge::new(
            "vitals_runtime_stall_threshold_seconds",
            "health.stall_ms: no heartbeat for this long is a stalled runtime",
        )
        .expect("valid metric");
        let ready = IntGauge::new("vitals_ready", "1 when the latest results make it ready");
        let draining = IntGauge::new("vitals_draining", "1 while draining before shutdown");
        // The names and options above are constants: failing here is a programming error.
        let (check_critical, check_deadline, check_overdue, tls_not_after) = (
            check_critical.expect("valid metric"),
            check_deadline.expect("valid metric"),
            check_overdue.expect("valid metric"),
            tls_not_after.expect("valid metric"),
        );
        let (check_up, check_duration, check_runs, check_failures) = (
            check_up.expect("valid metric"),
            check_duration.expect("valid metric"),
            check_runs.expect("valid metric"),
            check_failures.expect("valid metric"),
        );
        let (busy_pool, http_requests, ready, draining) = (
            busy_pool.expect("valid metric"),
            http_requests.expect("valid metric"),
            ready.expect("valid metric"),
            draining.expect("valid metric"),
        );
        let registry = Registry::new();
        for collector in [
            Box::new(check_up.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(check_critical.clone()),
            Box::new(check_deadline.clone()),
            Box::new(check_duration.clone()),
            Box::new(check_runs.clone()),
            Box::new(check_failures.clone()),
            Box::new(busy_pool.clone()),
            Box::new(check_overdue.clone()),
            Box::new(tls_not_after.clone()),
            Box::new(transitions.clone()),
            Box::new(http_requests.clone()),
            Box::new(runtime_lag.clone()),
            Box::new(stall_threshold.clone()),
            Box::new(ready.clone()),
            Box::new(draining.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        for &(check, deadline, critical) in checks {
            for outcome in RunStatus::ALL {
                check_runs.with_label_values(&[check, outcome.as_str()]);
            }
            for reason in Reason::ALL {
                check_failures.with_label_values(&[check, reason.as_str()]);
            }
            busy_pool.with_label_values(&[check]);
            check_overdue.with_label_values(&[check]);
            transitions.with_label_values(&[check]);
            check_critical
                .with_label_values(&[check])
                .set(i64::from(critical));
            check_deadline
                .with_label_values(&[check])
                .set(deadline.as_secs_f64());
        }
        Metrics {
            registry,
            check_up,
            check_duration,
            check_runs,
            check_failures,
            busy_pool,
            check_overdue,
            tls_not_after,
            transitions,
            http_requests,
            runtime_lag,
            stall_threshold,
            ready,
            draining,
            checks: checks.iter().map(|&(name, _, _)| name.into()).collect(),
        }
    }

    /// Records one completed run of the check `name`; `changed`: it changed the check's
    /// counted state.
    pub fn record_run(&self, name: &str, outcome: &RunOutcome, changed: bool) {
        if changed {
            self.transitions.with_label_values(&[name]).inc();
        }
        if let Some(reason) = outcome.reason {
            self.check_failures
                .with_label_values(&[name, reason.as_str()])
                .inc();
        }
        if outcome.busy_pool {
            self.busy_pool.with_label_values(&[name]).inc();
        }
        // Only checks that completed a handshake have the series.
        if let Some(not_after) = outcome.certificate_expires {
            self.tls_not_after.with_label_values(&[name]).set(not_after);
        }
        // The counted state (fail_after, pass_after), not this run's own.
        self.check_up
            .with_label_values(&[name])
            .set(i64::from(outcome.passing));
        self.check_duration
            .with_label_values(&[name])
            .observe(outcome.duration_ms / 1e3);
        self.check_runs
            .with_label_values(&[name, outcome.status.as_str()])
            .inc();
    }

    /// Sets `vitals_check_up` of the check `name` to its counted state as a probe sees it.
    pub fn set_up(&self, name: &str, passing: bool) {
        self.check_up
            .with_label_values(&[name])
            .set(i64::from(passing));
    }

    /// Records how late the app runtime's heartbeat ran.
    pub fn record_lag(&self, lag: Duration) {
        self.runtime_lag.observe(lag.as_secs_f64());
    }

    /// Exposes `health.stall_ms`, for alerting rules to compare the lag against.
    pub fn set_stall_threshold(&self, stall: Duration) {
        self.stall_threshold.set(stall.as_secs_f64());
    }

    /// Records one answered request under its route name (`unmatched` when none matched).
    pub fn record_request(&self, route: &str, status: u16) {
        let mut code = [0u8; 3];
        let code = status_label(status, &mut code);
        self.http_requests.with_label_values(&[route, code]).inc();
    }

    /// The exposition text (format 0.0.4), with the state gauges set from `ready`,
    /// `draining` and the checks that are `overdue`.
    pub fn render(&self, ready: bool, draining: bool, overdue: &[std::sync::Arc<str>]) -> String {
        self.ready.set(i64::from(ready && !draining));
        self.draining.set(i64::from(draining));
        for check in self.checks.iter() {
            let late = overdue.iter().any(|o| o == check);
            self.check_overdue
                .with_label_values(&[check])
                .set(i64::from(late));
        }
        let mut out = Vec::with_capacity(4096);
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The three digits of an HTTP status, without allocating (this runs on every request).
fn status_label(status: u16, buf: &mut [u8; 3]) -> &str {
    let status = status.clamp(100, 999);
    *buf = [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    std::str::from_utf8(buf).unwrap_or("000")
}

/// `/metrics`: Prometheus text from the latest results, as a probe would see them now (a
/// run past its deadline and a `stale` result count as the failures they are). Never runs a
/// check.
pub(crate) fn exposition(metrics: &Metrics, health: &Health, lifecycle: &Lifecycle) -> Reply {
    let entries = health.latest_entries();
    for entry in &entries {
        metrics.set_up(&entry.name, entry.outcome.passing);
    }
    let ready = entries.len() == health.registry().checks.len()
        && crate::checks::Verdict::of(&entries).is_serving();
    let text = metrics.render(ready, lifecycle.is_draining(), &health.overdue());
    Reply::new(
        rocket::http::Status::Ok,
        "text/plain; version=0.0.4; charset=utf-8",
        Body::Owned(text),
    )
}

/// `/metrics` on Rocket's port.
#[get("/metrics")]
fn metrics(
    metrics: &State<Metrics>,
    health: &State<Health>,
    lifecycle: &State<Lifecycle>,
) -> Reply {
    exposition(metrics, health, lifecycle)
}

/// Counts each answered request in its scope (vitals' own, unless the host asked for all) by
/// route name and status.
pub(crate) struct RequestCounter(pub Scope);

#[rocket::async_trait]
impl Fairing for RequestCounter {
    fn info(&self) -> Info {
        Info {
            name: "Request Counter",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(metrics) = req.rocket().state::<Metrics>() else {
            return;
        };
        if let Some(route) = self.0.label(req) {
            metrics.record_request(route, res.status().code);
        }
    }
}

/// `/metrics`.
pub(crate) fn metrics_routes() -> Vec<rocket::Route> {
    crate::fairings::own(routes![metrics])
}

/// Attaches the [`RequestCounter`] and mounts `/metrics` at `base`; [`Metrics`] itself is managed
/// with the engine, whose runs feed it.
pub(crate) fn stage(base: &str, scope: Scope) -> AdHoc {
    let base = base.to_owned();
    AdHoc::on_ignite("Metrics", move |rocket| async move {
        rocket
            .attach(RequestCounter(scope))
            .mount(base.as_str(), metrics_routes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn checks<'a>(names: &[&'a str]) -> Vec<(&'a str, Duration, bool)> {
        names
            .iter()
            .map(|n| (*n, Duration::from_millis(800), *n != "redis"))
            .collect()
    }

    #[test]
    fn deadlines_and_criticality_are_exposed_for_alerting() {
        let text = Metrics::new(&checks(&["database", "redis"])).render(true, false, &[]);
        assert!(
            text.contains("vitals_check_deadline_seconds{check=\"redis\"} 0.8\n"),
            "{text}"
        );
        assert!(text.contains("vitals_check_critical{check=\"database\"} 1\n"));
        assert!(text.contains("vitals_check_critical{check=\"redis\"} 0\n"));
    }

    fn run(status: RunStatus, duration_ms: f64, busy_pool: bool) -> RunOutcome {
        RunOutcome {
            status,
            duration_ms,
            reason: (status != RunStatus::Ok).then_some(Reason::Timeout),
            error: None,
            busy_pool,
            certificate_expires: None,
            passing: status == RunStatus::Ok,
            held: None,
            finished_at: SystemTime::now(),
        }
    }

    #[test]
    fn a_run_sets_up_counts_and_observes_seconds() {
        let m = Metrics::new(&checks(&["database", "redis"]));
        m.record_run("redis", &run(RunStatus::Timeout, 800.0, false), false);
        let text = m.render(false, false, &[]);
        assert!(
            text.contains("vitals_check_up{check=\"redis\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("vitals_check_runs_total{check=\"redis\",outcome=\"timeout\"} 1\n"));
        assert!(
            text.contains("vitals_check_failures_total{check=\"redis\",reason=\"timeout\"} 1\n")
        );
        assert!(
            text.contains("vitals_check_failures_total{check=\"redis\",reason=\"refused\"} 0\n")
        );
        assert!(text.contains("vitals_check_duration_seconds_sum{check=\"redis\"} 0.8\n"));
        assert!(text.contains("vitals_check_duration_seconds_bucket{check=\"redis\",le=\"1\"} 1\n"));
        assert!(
            text.contains("vitals_check_duration_seconds_bucket{check=\"redis\",le=\"0.5\"} 0\n")
        );
    }

    #[test]
    fn run_counters_start_at_zero_for_every_check_and_outcome() {
        let text = Metrics::new(&checks(&["database", "redis"])).render(false, false, &[]);
        for check in ["database", "redis"] {
            for outcome in ["ok", "error", "timeout"] {
                let line = format!(
                    "vitals_check_runs_total{{check=\"{check}\",outcome=\"{outcome}\"}} 0\n"
                );
                assert!(text.contains(&line), "{line}");
            }
        }
    }

    #[test]
    fn status_labels_are_three_digits() {
        let mut buf = [0u8; 3];
        assert_eq!(status_label(503, &mut buf), "503");
        assert_eq!(status_label(200, &mut buf), "200");
        assert_eq!(status_label(7, &mut buf), "100");
    }

    #[test]
    fn a_run_beside_a_busy_pool_is_counted() {
        let m = Metrics::new(&checks(&["orders"]));
        let text = m.render(true, false, &[]);
        assert!(text.contains("vitals_check_busy_pool_total{check=\"orders\"} 0\n"));
        m.record_run("orders", &run(RunStatus::Ok, 1.0, true), false);
        let text = m.render(true, false, &[]);
        assert!(text.contains("vitals_check_busy_pool_total{check=\"orders\"} 1\n"));
    }

    #[test]
    fn a_certificate_seen_sets_its_expiry_and_only_then() {
        let m = Metrics::new(&checks(&["api", "database"]));
        let mut seen = run(RunStatus::Ok, 1.0, false);
        seen.certificate_expires = Some(1_900_000_000);
        m.record_run("api", &seen, false);
        m.record_run("database", &run(RunStatus::Ok, 1.0, false), false);
        let text = m.render(true, false, &[]);
        assert!(
            text.contains("vitals_check_tls_not_after_seconds{check=\"api\"} 1900000000\n"),
            "{text}"
        );
        assert!(!text.contains("vitals_check_tls_not_after_seconds{check=\"database\"}"));
    }

    #[test]
    fn draining_is_never_ready() {
        let text = Metrics::new(&[]).render(true, true, &[]);
        assert!(text.contains("vitals_ready 0\n"));
        assert!(text.contains("vitals_draining 1\n"));
    }
}
