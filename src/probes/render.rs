//! What `vitals probes` prints: probe settings that fit the budget, each number commented
//! with where it comes from.

use std::fmt::Write as _;

use super::{Budget, CLIENT_BOUND_MS, MARGIN_MS};

/// The recommended settings, in three pieces to paste: a container's probes, the pod spec's
/// grace period, and a compose service's healthcheck.
#[derive(Debug, Clone)]
pub struct Recommended {
    /// `startupProbe`, `livenessProbe`, `readinessProbe`, unindented.
    pub container: String,
    /// `terminationGracePeriodSeconds`, for the pod spec.
    pub pod: String,
    /// `healthcheck` and `stop_grace_period`, for the compose service.
    pub compose: String,
}

/// Probe settings that fit `budget`, each number commented with what it comes from.
pub fn recommend(b: &Budget) -> Recommended {
    let (port, timeout) = (b.probe_port(), b.timeout_s());
    let (ready_timeout, ready_wait) = (b.ready_timeout_s(), b.ready_wait());
    let (period, failures) = b.readiness_period();
    let deadline = format!(
        "longest check deadline {} ms ({})",
        b.deadline_ms, b.slowest
    );
    let mut container = String::new();
    let _ = writeln!(
        container,
        "startupProbe:\n  httpGet: {{path: /health/startup, port: {port}}}\n  \
         timeoutSeconds: {timeout}  # startup runs the checks: > {deadline} + {MARGIN_MS} ms\n  \
         periodSeconds: 2\n  \
         failureThreshold: 30  # 30 x 2 s = 60 s for the dependencies to answer once"
    );
    let _ = writeln!(
        container,
        "livenessProbe:\n  httpGet: {{path: /health/live, port: {port}}}  # never touches a dependency\n  \
         timeoutSeconds: 1  # liveness answers in well under 1 ms of server time\n  \
         periodSeconds: 10\n  \
         failureThreshold: 3  # 30 s without an answer before a restart"
    );
    let drain_note = match period * failures * 1000 <= b.drain_ms {
        true => format!("within health.drain_ms = {}", b.drain_ms),
        false => format!(
            "MORE than health.drain_ms = {}: raise drain_ms to at least {}",
            b.drain_ms,
            period * failures * 1000
        ),
    };
    let _ = writeln!(
        container,
        "readinessProbe:\n  httpGet: {{path: /health/ready, port: {port}}}\n  \
         timeoutSeconds: {ready_timeout}  # > {ready_wait} + {MARGIN_MS} ms\n  \
         periodSeconds: {period}\n  \
         failureThreshold: {failures}  # {period} s x {failures} = {} s to withdraw the pod, {drain_note}\n  \
         successThreshold: 1",
        period * failures
    );
    let need = b.shutdown_s();
    let pod = format!(
        "terminationGracePeriodSeconds: {}  # drain {} ms + Rocket grace {} s + mercy {} s = {need} s, \
         + 5 s slack; no preStop needed: vitals drains on SIGTERM itself\n",
        need + 5,
        b.drain_ms,
        b.grace_s,
        b.mercy_s
    );
    let compose_timeout = (CLIENT_BOUND_MS.max(b.deadline_ms + MARGIN_MS)).div_ceil(1000) + 2;
    let compose = format!(
        "healthcheck:\n  test: [\"CMD\", \"vitals\", \"healthcheck\", \"http://127.0.0.1:{port}/health/ready\"]  \
         # the image has no curl\n  \
         interval: 10s\n  \
         timeout: {compose_timeout}s  # > the client's own {} s bound and the {deadline}\n  \
         retries: 5\n  \
         start_period: 30s\n\
         stop_grace_period: {}s  # drain + grace + mercy = {need} s, + 5 s slack\n",
        CLIENT_BOUND_MS / 1000,
        need + 5
    );
    Recommended {
        container,
        pod,
        compose,
    }
}

/// The printed recommendation, with its derivation up front.
pub fn render(b: &Budget) -> String {
    let r = recommend(b);
    format!(
        "# Probe settings for vitals, profile \"{}\": longest check deadline {} ms ({}),\n\
         # health.drain_ms {}, Rocket shutdown grace {} s + mercy {} s, probes on port {}.\n\
         # Kubernetes: in the container\n{}\
         # Kubernetes: in the pod spec\n{}\
         # docker compose: in the service\n{}",
        b.profile,
        b.deadline_ms,
        b.slowest,
        b.drain_ms,
        b.grace_s,
        b.mercy_s,
        b.probe_port(),
        r.container,
        r.pod,
        r.compose,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        super::super::budget::test_budget()
    }

    #[test]
    fn with_the_timer_readiness_needs_no_room_for_the_deadline_but_startup_does() {
        let mut b = budget();
        b.deadline_ms = 2500;
        b.interval_ms = 1000;
        let r = recommend(&b);
        assert!(
            r.container
                .contains("timeoutSeconds: 1  # > nothing: checks run every 1000 ms"),
            "{}",
            r.container
        );
        assert!(r
            .container
            .contains("timeoutSeconds: 3  # startup runs the checks"));
    }
}
