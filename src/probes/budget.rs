//! The budget: what the configuration says probes must fit (deadlines, drain, grace, ports,
//! the timer, which checks trust the system's roots).

use figment::Figment;

use super::MARGIN_MS;
use crate::config::Settings;

/// What the configuration says probes must fit.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The profile the numbers come from.
    pub profile: String,
    /// Longest deadline among the enabled checks, ms.
    pub deadline_ms: u64,
    /// Which check has it.
    pub slowest: String,
    /// Rocket's port.
    pub port: u16,
    /// `health.port`, when set: where probes should go.
    pub health_port: Option<u16>,
    /// `health.drain_ms`.
    pub drain_ms: u64,
    /// Rocket's `shutdown.grace` and `shutdown.mercy`, seconds.
    pub grace_s: u64,
    pub mercy_s: u64,
    /// `health.interval_ms`: with the timer on, readiness answers from the latest results and
    /// never waits on a check.
    pub interval_ms: u64,
    /// The enabled checks that verify a certificate against the system's roots (a TLS URL or
    /// table without `ca_file` or `sslrootcert`): the image must ship them.
    pub system_roots: Vec<String>,
}

impl Budget {
    /// The budget of the standalone service configured by `figment`.
    pub fn from_figment(figment: &Figment) -> Result<Budget, String> {
        let settings = Settings::from_figment(figment)?;
        let health = &settings.health;
        let builtins = ["database", "redis"]
            .into_iter()
            .filter(|n| health.is_enabled(n));
        let declared = health
            .checks
            .iter()
            .filter(|(_, c)| c.kind.is_some() && c.enabled)
            .map(|(n, _)| n.as_str());
        let (slowest, deadline_ms) = builtins
            .chain(declared)
            .map(|n| (n.to_owned(), health.timeout_ms(n)))
            .max_by_key(|(_, ms)| *ms)
            .unwrap_or_else(|| ("(none)".to_owned(), health.timeout_ms));
        // `rocket::Config::from` would panic on a bad value; this names it instead (exit 2).
        let rocket: rocket::Config = figment.extract().map_err(|e| e.to_string())?;
        Ok(Budget {
            profile: figment.profile().to_string(),
            deadline_ms,
            slowest,
            port: rocket.port,
            health_port: health.port,
            drain_ms: health.drain_ms,
            grace_s: u64::from(rocket.shutdown.grace),
            mercy_s: u64::from(rocket.shutdown.mercy),
            system_roots: system_root_checks(figment, health),
            interval_ms: health.interval_ms,
        })
    }

    /// The port probes should use.
    pub(super) fn probe_port(&self) -> u16 {
        self.health_port.unwrap_or(self.port)
    }

    /// Smallest probe timeout, whole seconds, above the deadline plus the margin.
    pub(super) fn timeout_s(&self) -> u64 {
        (self.deadline_ms + MARGIN_MS).div_ceil(1000).max(1)
    }

    /// How long a readiness answer may wait on checks, ms: the longest deadline, or nothing
    /// with the timer on (probes answer from the latest results).
    pub(super) fn ready_wait_ms(&self) -> u64 {
        match self.interval_ms {
            0 => self.deadline_ms,
            _ => 0,
        }
    }

    /// Smallest readiness timeout, whole seconds.
    pub(super) fn ready_timeout_s(&self) -> u64 {
        (self.ready_wait_ms() + MARGIN_MS).div_ceil(1000).max(1)
    }

    /// What the readiness timeout must exceed, in words.
    pub(super) fn ready_wait(&self) -> String {
        match self.interval_ms {
            0 => format!(
                "longest check deadline {} ms ({})",
                self.deadline_ms, self.slowest
            ),
            ms => format!("nothing: checks run every {ms} ms and probes read the latest result"),
        }
    }

    /// What the pod needs between SIGTERM and SIGKILL, seconds (before any preStop).
    pub(super) fn shutdown_s(&self) -> u64 {
        self.drain_ms.div_ceil(1000) + self.grace_s + self.mercy_s
    }

    /// Readiness period and failure threshold whose product fits in the drain.
    pub(super) fn readiness_period(&self) -> (u64, u64) {
        let failures = 2;
        ((self.drain_ms / 1000 / failures).clamp(1, 10), failures)
    }
}

/// The enabled checks of `health` that trust the system's roots: a Postgres URL that verifies
/// (`sslmode=verify-ca|verify-full`) without `sslrootcert`, a `rediss://` Redis, an `https://`
/// check or a `tcp` check with `tls`, without `ca_file`.
fn system_root_checks(figment: &Figment, health: &crate::config::HealthSettings) -> Vec<String> {
    let url = |pool: &str| -> String {
        figment
            .extract_inner(&format!("databases.{pool}.url"))
            .unwrap_or_default()
    };
    let ca_file = |name: &str| health.checks.get(name).and_then(|c| c.ca_file.as_ref());
    let postgres = url("postgres");
    let verifies = ["sslmode=verify-ca", "sslmode=verify-full"]
        .iter()
        .any(|m| postgres.contains(m));
    let mut names = Vec::new();
    if health.is_enabled("database") && verifies && !postgres.contains("sslrootcert=") {
        names.push("database".to_owned());
    }
    if health.is_enabled("redis")
        && url("redis").starts_with("rediss://")
        && ca_file("redis").is_none()
    {
        names.push("redis".to_owned());
    }
    for (name, c) in &health.checks {
        let tls = match c.kind.as_deref() {
            Some("http") => c.url.as_deref().is_some_and(|u| u.starts_with("https://")),
            Some("tcp") => c.tls == Some(true),
            _ => false,
        };
        if c.enabled && tls && c.ca_file.is_none() {
            names.push(name.clone());
        }
    }
    names
}

#[cfg(test)]
pub(super) fn test_budget() -> Budget {
    Budget {
        profile: "release".into(),
        deadline_ms: 800,
        slowest: "redis".into(),
        port: 8000,
        health_port: None,
        drain_ms: 5000,
        grace_s: 2,
        mercy_s: 3,
        system_roots: Vec::new(),
        interval_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_that_trust_the_system_roots_are_found_in_the_configuration() {
        let figment = Figment::from(rocket::Config::default())
            .merge((
                "databases.postgres.url",
                "postgres://h/d?sslmode=verify-full",
            ))
            .merge(("databases.redis.url", "rediss://h:6380"))
            .merge(("health.checks.redis.ca_file", "/ca.pem"))
            .merge(("health.checks.api.kind", "http"))
            .merge(("health.checks.api.url", "https://api.example/"))
            .merge(("health.checks.ldap.kind", "tcp"))
            .merge(("health.checks.ldap.address", "ldap:636"))
            .merge(("health.checks.ldap.tls", true))
            .merge(("health.checks.plain.kind", "tcp"))
            .merge(("health.checks.plain.address", "db:5432"));
        let budget = Budget::from_figment(&figment).unwrap();
        assert_eq!(budget.system_roots, ["database", "api", "ldap"]);
    }
}
