//! Configuration: the figment the service is built from and the typed [`Settings`] it reads.
//!
//! Sources, lowest to highest: Rocket's defaults, vitals' built-in defaults (the shipped
//! `Rocket.toml`, compiled in, so the service runs from any directory), the `Rocket.toml` found
//! at run time (`[default]`, then the selected profile, `[debug]` or `[release]`), `ROCKET_*`
//! variables, then `DATABASE_URL` and `REDIS_URL`, which override the pool URLs in every
//! profile. A host app's figment is its own; [`with_defaults`] lays the built-in `health`
//! values of its profile beneath it. Pools read their own tables
//! (`databases.postgres`, `databases.redis`) through rocket_db_pools; this module owns `health`.
//! It checks each value on its own; whether a check name exists is the registry's business.

use std::collections::BTreeMap;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Profile};
use serde::Deserialize;

use crate::access::Details;
use crate::redact::Secret;

/// Largest accepted deadline for one check, in milliseconds. A probe that may wait longer than
/// a minute is no longer a health check.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// Most `fail_after` / `pass_after` runs: beyond, a check would in effect never change.
const MAX_RUNS: u32 = 100;

/// Longest `cache_ms`: a minute-old answer is as old as a probe should ever get.
const MAX_CACHE_MS: u64 = 60_000;

/// Longest `drain_ms`: five minutes, within any orchestrator's termination grace period
/// one would configure; beyond, SIGKILL comes first and the exit is not 0.
const MAX_DRAIN_MS: u64 = 300_000;

/// Every default, per profile: the shipped `Rocket.toml`, compiled in.
const BUILT_IN: &str = include_str!("../../Rocket.toml");

/// The figment `vitals::rocket()` builds from: Rocket's own sources (defaults, `Rocket.toml`,
/// `ROCKET_*`) with vitals' built-in defaults beneath the file, and `DATABASE_URL` and
/// `REDIS_URL` mapped onto the pool URLs.
///
/// ```
/// let figment = vitals::figment().merge(("health.timeout_ms", 200));
/// let timeout: u64 = figment.extract_inner("health.timeout_ms").unwrap();
/// assert_eq!(timeout, 200);
/// ```
pub fn figment() -> Figment {
    // As `rocket::Config::figment()`, with the built-in defaults beneath the file.
    let file = Env::var_or("ROCKET_CONFIG", "Rocket.toml");
    let profile = Profile::from_env_or("ROCKET_PROFILE", rocket::Config::DEFAULT_PROFILE);
    Figment::from(rocket::Config::default())
        .merge(Toml::string(BUILT_IN).nested())
        .merge(Toml::file(file).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(profile)
        // `.global()` makes the variables win over every profile; without it a `[debug]` or
        // `[release]` URL in Rocket.toml would beat the environment.
        .merge(
            Env::raw()
                .only(&["DATABASE_URL"])
                .map(|_| "databases.postgres.url".into())
                .global(),
        )
        .merge(
            Env::raw()
                .only(&["REDIS_URL"])
                .map(|_| "databases.redis.url".into())
                .global(),
        )
}

/// `figment` with the built-in `health` values of its profile beneath it: a host app gets the
/// standalone service's `debug` and `release` defaults unless its own configuration says
/// otherwise (any profile of it, `[default]` included).
pub(crate) fn with_defaults(figment: &Figment) -> Figment {
    let profile = figment.profile().clone();
    let built_in = Figment::from(Toml::string(BUILT_IN).nested())
        .select(profile.clone())
        .find_value("health");
    let layered = match built_in {
        Ok(health) => Figment::from(Serialized::defaults(Health { health })),
        Err(_) => Figment::new(),
    };
    layered.merge(figment.clone()).select(profile)
}

/// The `health` key alone, for [`with_defaults`].
#[derive(serde::Serialize)]
struct Health {
    health: figment::value::Value,
}

/// Everything vitals itself reads from configuration; Rocket's and the pools' keys are theirs.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Settings {
    /// The `[<profile>.health]` table.
    #[serde(default)]
    pub health: HealthSettings,
}

/// The `[<profile>.health]` table. Defaults match `[default.health]` in `Rocket.toml`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HealthSettings {
    /// Deadline of each dependency check, pool acquire and query together, in ms. Default 1000.
    pub timeout_ms: u64,
    /// How long a completed check result is reused, in ms; 0 checks on every probe. Default 0.
    pub cache_ms: u64,
    /// How long readiness answers `draining` before shutdown, in ms. Default 0.
    pub drain_ms: u64,
    /// A port of their own for the health endpoints, served by a thread and runtime of their
    /// own; unset (the default), they are served on Rocket's port only.
    pub port: Option<u16>,
    /// With `port`: how long the app's runtime may run no task before liveness on the health
    /// port answers 503 `stalled`, in ms. Default 5000 (README, "Stall detection").
    pub stall_ms: u64,
    /// Who sees the error texts: `always`, `authorized` (default) or `never`.
    pub details: Details,
    /// The token that shows details under `authorized`; `VITALS_TOKEN` wins. Default none.
    pub token: Option<Secret>,
    /// Runs every check on a timer every this many ms (with jitter), probes answering from
    /// the latest result; 0 (the default) runs checks when a probe asks.
    pub interval_ms: u64,
    /// Timer mode: a result older than this (ms) counts as failing, reason `stale`. Default
    /// three intervals plus the largest check deadline; at least 1.1 intervals plus it.
    pub max_age_ms: Option<u64>,
    /// Consecutive failed runs before a passing check counts as failing. Default 1.
    pub fail_after: u32,
    /// Consecutive ok runs before a failing check counts as passing again. Default 1.
    pub pass_after: u32,
    /// Per-check settings and declared checks, keyed by check name.
    pub checks: BTreeMap<String, CheckSettings>,
}

/// A `[<profile>.health.checks.<name>]` table: settings of a check, or the declaration of one.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CheckSettings {
    /// This check's deadline in ms; the global `timeout_ms` when unset.
    pub timeout_ms: Option<u64>,
    /// Whether a failure makes the service unavailable (503). Default true; a failing
    /// non-critical check makes readiness `degraded` (200).
    pub critical: bool,
    /// `false` removes the check everywhere (a built-in's pool then never connects). Default true.
    pub enabled: bool,
    /// Declares a check of this kind (`tcp`, `http`) under this name.
    pub kind: Option<String>,
    /// `kind = "tcp"`: `host:port` to connect to.
    pub address: Option<String>,
    /// `kind = "http"`: the `http://` URL to GET.
    pub url: Option<String>,
    /// `kind = "http"`: the accepted statuses; any 2xx when unset.
    pub expect: Option<Vec<u16>>,
    /// `kind = "tcp"`: `true` checks that a TLS handshake completes, not only a connection.
    pub tls: Option<bool>,
    /// A PEM file of the roots to trust instead of the system's: `http` (https), `tcp` with
    /// `tls`, and the built-in `redis` with a `rediss://` URL.
    pub ca_file: Option<String>,
    /// This check's `fail_after`; the global one when unset.
    pub fail_after: Option<u32>,
    /// This check's `pass_after`; the global one when unset.
    pub pass_after: Option<u32>,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            timeout_ms: 1000,
            cache_ms: 0,
            drain_ms: 0,
            port: None,
            stall_ms: 5000,
            interval_ms: 0,
            max_age_ms: None,
            fail_after: 1,
            pass_after: 1,
            details: Details::default(),
            token: None,
            checks: BTreeMap::new(),
        }
    }
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            timeout_ms: None,
            critical: true,
            enabled: true,
            kind: None,
            address: None,
            url: None,
            expect: None,
            tls: None,
            ca_file: None,
            fail_after: None,
            pass_after: None,
        }
    }
}

impl HealthSettings {
    /// The deadline of the check called `name`: its own `timeout_ms`, else the global one.
    pub fn timeout_ms(&self, name: &str) -> u64 {
        self.checks
            .get(name)
            .and_then(|c| c.timeout_ms)
            .unwrap_or(self.timeout_ms)
    }

    /// Whether the check called `name` failing makes the service unavailable.
    pub fn is_critical(&self, name: &str) -> bool {
        self.checks.get(name).is_none_or(|c| c.critical)
    }

    /// The thresholds of the check called `name`: its own, else the global ones.
    pub fn thresholds(&self, name: &str) -> crate::checks::Thresholds {
        let own = self.checks.get(name);
        crate::checks::Thresholds {
            fail_after: own.and_then(|c| c.fail_after).unwrap_or(self.fail_after),
            pass_after: own.and_then(|c| c.pass_after).unwrap_or(self.pass_after),
        }
    }

    /// The timer mode these settings ask for, if any.
    pub fn timer(&self) -> Option<crate::checks::Timer> {
        (self.interval_ms > 0).then(|| crate::checks::Timer {
            interval: std::time::Duration::from_millis(self.interval_ms),
            max_age: std::time::Duration::from_millis(
                self.max_age_ms
                    .unwrap_or(3 * self.interval_ms + self.largest_timeout_ms()),
            ),
        })
    }

    /// Whether the check called `name` runs at all.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.checks.get(name).is_none_or(|c| c.enabled)
    }

    /// Rejects values that would make probes meaningless, naming the offending key.
    fn validate(&self) -> Result<(), String> {
        let in_range = |key: String, ms: u64| {
            if (1..=MAX_TIMEOUT_MS).contains(&ms) {
                Ok(())
            } else {
                Err(format!(
                    "{key} = {ms}: must be between 1 and {MAX_TIMEOUT_MS} ms"
                ))
            }
        };
        in_range("health.timeout_ms".into(), self.timeout_ms)?;
        // Several heartbeat periods, so that one late beat is never a stall.
        if !(500..=600_000).contains(&self.stall_ms) {
            return Err(format!(
                "health.stall_ms = {}: must be between 500 and 600000 ms",
                self.stall_ms
            ));
        }
        let runs_in_range = |key: String, runs: u32| match (1..=MAX_RUNS).contains(&runs) {
            true => Ok(()),
            false => Err(format!("{key} = {runs}: must be between 1 and {MAX_RUNS}")),
        };
        for (name, check) in &self.checks {
            if let Some(ms) = check.timeout_ms {
                in_range(format!("health.checks.{name}.timeout_ms"), ms)?;
            }
            for (key, runs) in [
                ("fail_after", check.fail_after),
                ("pass_after", check.pass_after),
            ] {
                if let Some(runs) = runs {
                    runs_in_range(format!("health.checks.{name}.{key}"), runs)?;
                }
            }
            if check.expect.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!(
                    "health.checks.{name}.expect = []: name at least one status code, or \
                     leave it out for any 2xx"
                ));
            }
        }
        for (key, runs) in [
            ("fail_after", self.fail_after),
            ("pass_after", self.pass_after),
        ] {
            runs_in_range(format!("health.{key}"), runs)?;
        }
        for (key, ms, max) in [
            ("cache_ms", self.cache_ms, MAX_CACHE_MS),
            ("drain_ms", self.drain_ms, MAX_DRAIN_MS),
        ] {
            if ms > max {
                return Err(format!(
                    "health.{key} = {ms}: must be between 0 and {max} ms"
                ));
            }
        }
        if self.port == Some(0) {
            return Err(
                "health.port = 0: must be between 1 and 65535 (a port probes can \
                        be pointed at)"
                    .into(),
            );
        }
        if self.interval_ms != 0 && !(100..=3_600_000).contains(&self.interval_ms) {
            return Err(format!(
                "health.interval_ms = {}: must be 0 (off) or between 100 and 3600000 ms",
                self.interval_ms
            ));
        }
        if let Some(age) = self.max_age_ms {
            if self.interval_ms == 0 {
                return Err(
                    "health.max_age_ms: only health.interval_ms (the timer) uses it".into(),
                );
            }
            let least = self.least_max_age_ms();
            if age < least {
                return Err(format!(
                    "health.max_age_ms = {age}: must be at least {least} ms, 1.1 x \
                     health.interval_ms ({}) plus the largest check deadline ({} ms), or \
                     healthy checks would read `stale` between two runs",
                    self.interval_ms,
                    self.largest_timeout_ms()
                ));
            }
        }
        if self.interval_ms != 0 && self.cache_ms != 0 {
            log::warn!(
                target: "vitals::config",
                "health.cache_ms = {} does nothing with health.interval_ms: probes answer \
                 from the timer's latest result",
                self.cache_ms
            );
        }
        Ok(())
    }

    /// The largest deadline among the checks: the global `timeout_ms` or a check's own.
    fn largest_timeout_ms(&self) -> u64 {
        self.checks
            .values()
            .filter_map(|c| c.timeout_ms)
            .fold(self.timeout_ms, u64::max)
    }

    /// The smallest `max_age_ms` that a healthy check on the timer never outgrows: results
    /// come an interval apart (a tenth more at the jittered start) plus a run's duration,
    /// which its deadline bounds.
    fn least_max_age_ms(&self) -> u64 {
        self.interval_ms + self.interval_ms.div_ceil(10) + self.largest_timeout_ms()
    }
}

impl CheckSettings {
    /// The kind-specific keys this table sets, for the registry to check against its kind.
    pub fn kind_keys(&self) -> impl Iterator<Item = &'static str> {
        [
            ("address", self.address.is_some()),
            ("url", self.url.is_some()),
            ("expect", self.expect.is_some()),
            ("tls", self.tls.is_some()),
            ("ca_file", self.ca_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
    }
}

impl Settings {
    /// Reads and validates the settings; the error names the key at fault.
    pub fn from_figment(figment: &Figment) -> Result<Settings, String> {
        let settings: Settings = figment.extract().map_err(redacted::describe)?;
        let env_token = std::env::var("VITALS_TOKEN").ok();
        let tokens = settings.health.token.iter().map(|t| t.expose().trim());
        crate::redact::register(
            tokens
                .chain(env_token.as_deref().map(str::trim))
                .map(Into::into),
        );
        settings.health.validate()?;
        validate_pools(figment)?;
        Ok(settings)
    }
}

mod redacted;

/// Rejects a `databases.<name>.connect_timeout` of 0, which rocket_db_pools would take as a
/// pool that gives up before it has tried: every check fails as `timeout` at once.
fn validate_pools(figment: &Figment) -> Result<(), String> {
    let tables: BTreeMap<String, figment::value::Dict> =
        figment.extract_inner("databases").unwrap_or_default();
    for (name, table) in tables {
        let timeout = table.get("connect_timeout").and_then(|v| v.to_num());
        if timeout.and_then(|n| n.to_u128_lossy()) == Some(0) {
            return Err(format!(
                "databases.{name}.connect_timeout = 0: must be at least 1 (seconds the pool may \
                 take to open a connection)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
// figment::Jail's closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests;
