//! The named checks of one service, assembled once at ignite from three sources: the built-ins
//! on Rocket-managed pools, checks a host app registered in code, and checks declared in
//! `[<profile>.health.checks.<name>]` with a `kind`. Names, duplicates and declarations are
//! validated here; a problem stops launch with a message naming the key.

use std::sync::Arc;
use std::time::Duration;

use rocket::{Build, Rocket};
use rocket_db_pools::Database;

use super::postgres::PostgresCheck;
use super::redis::{RedisCheck, RedisPool};
use super::{http, is_valid_name, tcp, Check, Declarable, Thresholds};
use crate::config::{CheckSettings, HealthSettings};
use crate::pools::{Cache, Db};
use crate::redact::{password_is_public, url_secrets};

/// The kinds a check can be declared as. A new kind is one file with its `DECLARABLE` and one
/// line here (and a field in `CheckSettings` if it needs a key no kind has yet).
const KINDS: &[Declarable] = &[tcp::DECLARABLE, http::DECLARABLE];

/// Where a registered check comes from.
#[derive(Clone)]
pub(crate) enum Source {
    /// `SELECT 1` through the Rocket-managed pool `databases.postgres` ([`Db`]).
    ManagedPostgres,
    /// `PING` through the Rocket-managed pool `databases.redis` ([`Cache`]).
    ManagedRedis,
    /// A check object made by a host app (or by the crate from a host's pool).
    Ready(Arc<dyn Check>),
    /// A check made at ignite from the app's managed state (a rocket_db_pools database); the
    /// error says what is missing.
    Fetched(Arc<Fetch>),
}

/// Makes a check from the app's managed state, once its pool fairings have run.
pub(crate) type Fetch = dyn Fn(&Rocket<Build>) -> Result<Arc<dyn Check>, String> + Send + Sync;

/// One enabled check with its resolved settings.
pub(crate) struct Registered {
    pub name: Arc<str>,
    pub check: Arc<dyn Check>,
    pub timeout: Duration,
    pub critical: bool,
    pub thresholds: Thresholds,
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
            if !is_valid_name(name) {
                return Err(format!(
                    "health.checks.{name}: invalid check name; use [a-z][a-z0-9_-], at most 32 \
                     characters"
                ));
            }
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
                Source::ManagedRedis => managed_redis(rocket, settings)?,
                Source::Ready(check) => check.clone(),
                Source::Fetched(fetch) => {
                    fetch(rocket).map_err(|why| format!("check '{name}': {why}"))?
                }
            };
            checks.push(registered_check(name, check, settings));
        }
        for (name, declared) in &settings.checks {
            let built_in_redis = registered
                .iter()
                .any(|(n, s)| n == name && matches!(s, Source::ManagedRedis));
            if let Some(check) = declare(name, declared, built_in_redis)? {
                if declared.enabled {
                    checks.push(registered_check(name, check, settings));
                }
            }
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

/// The check a `[health.checks.<name>]` table declares (`None` without a `kind`), after
/// checking that it sets exactly the keys of its kind; `built_in_redis`: `name` is the
/// built-in Redis check, which takes a `ca_file` (for a `rediss://` URL, see [`managed_redis`]).
fn declare(
    name: &str,
    table: &CheckSettings,
    built_in_redis: bool,
) -> Result<Option<Arc<dyn Check>>, String> {
    let key = |key: &str| format!("health.checks.{name}.{key}");
    let Some(kind) = table.kind.as_deref() else {
        let own = |k: &&str| !(built_in_redis && *k == "ca_file");
        return match table.kind_keys().find(own) {
            Some(k) => Err(format!(
                "{}: only a declared check (with a kind) takes it",
                key(k)
            )),
            None => Ok(None),
        };
    };
    let Some(declarable) = KINDS.iter().find(|d| d.kind == kind) else {
        let kinds: Vec<String> = KINDS.iter().map(|d| format!("\"{}\"", d.kind)).collect();
        return Err(format!(
            "{}: unknown kind \"{kind}\"; known kinds: {}",
            key("kind"),
            kinds.join(", ")
        ));
    };
    for given in table.kind_keys() {
        if !declarable.required.contains(&given) && !declarable.optional.contains(&given) {
            return Err(format!("{}: not a key of kind = \"{kind}\"", key(given)));
        }
    }
    let given: Vec<&str> = table.kind_keys().collect();
    if let Some(missing) = declarable.required.iter().find(|k| !given.contains(k)) {
        return Err(format!("{}: required by kind = \"{kind}\"", key(missing)));
    }
    (declarable.build)(table)
        .map(Some)
        .map_err(|(at, why)| format!("{}: {why}", key(at)))
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
        thresholds: settings.thresholds(name),
    }
}

fn pool_url(rocket: &Rocket<Build>, table: &str) -> String {
    let url = rocket
        .figment()
        .extract_inner::<String>(&format!("databases.{table}.url"))
        .unwrap_or_default();
    if password_is_public(&url) {
        log::warn!(
            target: "vitals::config",
            "databases.{table}.url: the password equals the user name or the database, so every \
             error naming them will read \"***\"; give it a password of its own"
        );
    }
    url
}

fn managed_postgres(rocket: &Rocket<Build>) -> Result<Arc<dyn Check>, String> {
    let db = Db::fetch(rocket).ok_or_else(|| {
        crate::pools::table_error(rocket.figment(), "postgres")
            .unwrap_or_else(|| "the Postgres pool (databases.postgres) did not start".to_owned())
    })?;
    let secrets = url_secrets(&pool_url(rocket, "postgres"));
    Ok(Arc::new(
        PostgresCheck::new(db.pool.clone(), secrets).table("postgres"),
    ))
}

fn managed_redis(
    rocket: &Rocket<Build>,
    settings: &HealthSettings,
) -> Result<Arc<dyn Check>, String> {
    let cache = Cache::fetch(rocket).ok_or("the Redis pool (databases.redis) did not start")?;
    let url = pool_url(rocket, "redis");
    let ca_file = settings
        .checks
        .get("redis")
        .and_then(|c| c.ca_file.as_deref());
    if let Some(path) = ca_file {
        if !crate::pools::without_tls_scheme(&url).1 {
            return Err(
                "health.checks.redis.ca_file: only a rediss:// URL makes a TLS handshake; \
                 databases.redis.url is not one"
                    .to_owned(),
            );
        }
        let roots = crate::tls::ca_file(path)
            .map_err(|why| format!("health.checks.redis.ca_file: {why}"))?;
        cache.pool.manager().trust(roots);
    }
    let secrets = url_secrets(&url);
    let pool = RedisPool::Managed(cache.pool.clone()).at(&url);
    Ok(Arc::new(RedisCheck::new(pool, secrets).table("redis")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> CheckSettings {
        let figment = pairs.iter().filter(|(k, _)| *k != "expect").fold(
            figment::Figment::new(),
            |f, (k, v)| match *k {
                "tls" => f.merge((*k, *v == "true")),
                _ => f.merge((*k, *v)),
            },
        );
        let mut table: CheckSettings = figment.extract().unwrap();
        if let Some(expect) = pairs.iter().find(|(k, _)| *k == "expect") {
            table.expect = Some(vec![expect.1.parse().unwrap()]);
        }
        table
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        match declare("q", &table(pairs), false) {
            Ok(_) => panic!("{pairs:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_ca_file_belongs_to_https_to_tcp_with_tls_and_to_the_built_in_redis() {
        let e = error(&[
            ("kind", "http"),
            ("url", "http://h/"),
            ("ca_file", "/x.pem"),
        ]);
        assert_eq!(e, "health.checks.q.ca_file: only an https:// url uses it");
        let e = error(&[("kind", "tcp"), ("address", "h:1"), ("ca_file", "/x.pem")]);
        assert_eq!(e, "health.checks.q.ca_file: only tls = true uses it");
        let e = error(&[
            ("kind", "tcp"),
            ("address", "h:1"),
            ("tls", "true"),
            ("ca_file", "/no/such.pem"),
        ]);
        assert!(
            e.starts_with("health.checks.q.ca_file: cannot read /no/such.pem"),
            "{e}"
        );
        let e = error(&[("kind", "http"), ("url", "https://h/"), ("tls", "true")]);
        assert_eq!(e, r#"health.checks.q.tls: not a key of kind = "http""#);
        assert!(declare("redis", &table(&[("ca_file", "/x.pem")]), true)
            .unwrap()
            .is_none());
        // A check of the host's that happens to be called redis makes no handshake of vitals'.
        let e = declare("redis", &table(&[("ca_file", "/x.pem")]), false)
            .err()
            .unwrap();
        assert!(
            e.starts_with("health.checks.redis.ca_file: only a declared check"),
            "{e}"
        );
        let e = declare("database", &table(&[("ca_file", "/x.pem")]), false)
            .err()
            .unwrap();
        assert!(
            e.starts_with("health.checks.database.ca_file: only a declared check"),
            "{e}"
        );
    }

    #[test]
    fn a_table_without_a_kind_declares_nothing() {
        assert!(declare("database", &table(&[]), false).unwrap().is_none());
    }

    #[test]
    fn tcp_and_http_declarations_build_checks() {
        assert!(declare("q", &table(&[("kind", "tcp"), ("address", "h:1")]), false).is_ok());
        let http = table(&[("kind", "http"), ("url", "http://h/"), ("expect", "204")]);
        assert!(declare("q", &http, false).unwrap().is_some());
    }

    #[test]
    fn an_unknown_kind_is_refused_naming_the_known_ones() {
        let e = error(&[("kind", "amqp")]);
        assert_eq!(
            e,
            r#"health.checks.q.kind: unknown kind "amqp"; known kinds: "tcp", "http""#
        );
    }

    #[test]
    fn a_missing_required_key_is_named() {
        assert_eq!(
            error(&[("kind", "tcp")]),
            r#"health.checks.q.address: required by kind = "tcp""#
        );
        assert_eq!(
            error(&[("kind", "http")]),
            r#"health.checks.q.url: required by kind = "http""#
        );
    }

    #[test]
    fn a_key_of_another_kind_is_named() {
        let e = error(&[("kind", "tcp"), ("address", "h:1"), ("url", "http://h/")]);
        assert_eq!(e, r#"health.checks.q.url: not a key of kind = "tcp""#);
        let e = error(&[("address", "h:1")]);
        assert!(
            e.starts_with("health.checks.q.address: only a declared check"),
            "{e}"
        );
    }

    #[test]
    fn a_malformed_value_is_named_with_its_key() {
        let e = error(&[("kind", "tcp"), ("address", "no-port")]);
        assert!(e.starts_with("health.checks.q.address: "), "{e}");
        let e = error(&[("kind", "http"), ("url", "ftp://h/")]);
        assert_eq!(
            e,
            "health.checks.q.url: only http:// and https:// URLs are supported"
        );
        let e = error(&[("kind", "http"), ("url", "http://h/"), ("expect", "999")]);
        assert!(e.starts_with("health.checks.q.expect: "), "{e}");
    }
}
