//! The named checks of one service, assembled once at ignite from three sources: the built-ins
//! on Rocket-managed pools, checks a host app registered in code, and checks declared in
//! `[<profile>.health.checks.<name>]` with a `kind`. Names, duplicates and declarations are
//! validated here; a problem stops launch with a message naming the key.

use std::sync::Arc;
use std::time::Duration;

use rocket::{Build, Rocket};
use rocket_db_pools::Database;

use super::http::HttpCheck;
use super::postgres::PostgresCheck;
use super::redis::{RedisCheck, RedisPool};
use super::tcp::TcpCheck;
use super::{is_valid_name, Check};
use crate::config::{HealthSettings, Kind};
use crate::pools::{Cache, Db};
use crate::redact::url_secrets;

/// Where a registered check comes from.
#[derive(Clone)]
pub(crate) enum Source {
    /// `SELECT 1` through the Rocket-managed pool `databases.postgres` ([`Db`]).
    ManagedPostgres,
    /// `PING` through the Rocket-managed pool `databases.redis` ([`Cache`]).
    ManagedRedis,
    /// A check object made by a host app (or by the crate from a host's pool).
    Ready(Arc<dyn Check>),
}

/// One enabled check with its resolved settings.
pub(crate) struct Registered {
    pub name: Arc<str>,
    pub check: Arc<dyn Check>,
    pub timeout: Duration,
    pub critical: bool,
}

/// Every enabled check of the service, in report order: registered ones first, in the order
/// they were registered, then declared ones by name.
#[derive(Default)]
pub(crate) struct Registry {
    pub checks: Vec<Registered>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.checks.iter().map(|c| &*c.name).collect();
        f.debug_struct("Registry").field("checks", &names).finish()
    }
}

impl Registry {
    /// The names registered in code that `settings` leaves enabled.
    pub fn enabled<'a>(
        registered: &'a [(String, Source)],
        settings: &'a HealthSettings,
    ) -> impl Iterator<Item = &'a (String, Source)> {
        registered
            .iter()
            .filter(|(name, _)| settings.is_enabled(name))
    }

    /// Assembles the registry; managed sources take their pools from `rocket`, whose pool
    /// fairings must have run.
    pub fn assemble(
        registered: &[(String, Source)],
        settings: &HealthSettings,
        rocket: &Rocket<Build>,
    ) -> Result<Registry, String> {
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in registered {
            if !is_valid_name(name) {
                return Err(format!(
                    "check name '{name}' is invalid: use [a-z][a-z0-9_-], at most 32 characters"
                ));
            }
            if seen.contains(&name.as_str()) {
                return Err(format!("check '{name}' is registered twice"));
            }
            seen.push(name);
        }
        for (name, declared) in &settings.checks {
            let is_registered = seen.contains(&name.as_str());
            match (&declared.kind, is_registered) {
                (Some(_), true) => {
                    return Err(format!(
                        "health.checks.{name}.kind: '{name}' is already a check of this service; \
                         give the declared check another name"
                    ))
                }
                (None, false) => {
                    return Err(format!(
                        "health.checks.{name}: unknown check; known checks: {}; declare a new \
                         one with kind = \"tcp\" or \"http\"",
                        known(registered_names(registered))
                    ))
                }
                _ => {}
            }
        }

        let mut checks = Vec::new();
        for (name, source) in Self::enabled(registered, settings) {
            let check = match source {
                Source::ManagedPostgres => managed_postgres(rocket)?,
                Source::ManagedRedis => managed_redis(rocket)?,
                Source::Ready(check) => check.clone(),
            };
            checks.push(registered_check(name, check, settings));
        }
        for (name, declared) in &settings.checks {
            let Some(kind) = declared.kind else { continue };
            if !declared.enabled {
                continue;
            }
            let check: Arc<dyn Check> = match kind {
                Kind::Tcp => Arc::new(
                    TcpCheck::new(declared.address.as_deref().unwrap_or_default())
                        .map_err(|why| format!("health.checks.{name}.address: {why}"))?,
                ),
                Kind::Http => Arc::new(
                    HttpCheck::new(
                        declared.url.as_deref().unwrap_or_default(),
                        declared.expect.clone(),
                    )
                    .map_err(|why| format!("health.checks.{name}.url: {why}"))?,
                ),
            };
            checks.push(registered_check(name, check, settings));
        }
        Ok(Registry { checks })
    }

    /// The enabled names, comma separated, for error messages.
    pub fn names(&self) -> String {
        known(self.checks.iter().map(|c| &*c.name))
    }

    /// The position of the check called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.checks.iter().position(|c| &*c.name == name)
    }

    /// Every secret the checks must hide.
    pub fn secrets(&self) -> Vec<String> {
        self.checks.iter().flat_map(|c| c.check.secrets()).collect()
    }
}

fn registered_names(registered: &[(String, Source)]) -> impl Iterator<Item = &str> {
    registered.iter().map(|(n, _)| n.as_str())
}

fn known<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.is_empty() {
        true => "none".to_owned(),
        false => names.join(", "),
    }
}

fn registered_check(name: &str, check: Arc<dyn Check>, settings: &HealthSettings) -> Registered {
    Registered {
        name: name.into(),
        check,
        timeout: Duration::from_millis(settings.timeout_ms(name)),
        critical: settings.is_critical(name),
    }
}

fn pool_url(rocket: &Rocket<Build>, table: &str) -> String {
    rocket
        .figment()
        .extract_inner::<String>(&format!("databases.{table}.url"))
        .unwrap_or_default()
}

fn managed_postgres(rocket: &Rocket<Build>) -> Result<Arc<dyn Check>, String> {
    let db = Db::fetch(rocket).ok_or("the Postgres pool (databases.postgres) did not start")?;
    let secrets = url_secrets(&pool_url(rocket, "postgres"));
    Ok(Arc::new(PostgresCheck::new(db.pool.clone(), secrets)))
}

fn managed_redis(rocket: &Rocket<Build>) -> Result<Arc<dyn Check>, String> {
    let cache = Cache::fetch(rocket).ok_or("the Redis pool (databases.redis) did not start")?;
    let secrets = url_secrets(&pool_url(rocket, "redis"));
    let pool = RedisPool::Managed(cache.pool.clone());
    Ok(Arc::new(RedisCheck::new(pool, secrets)))
}
