//! The dependency pools: [`Db`] (Postgres) and [`Cache`] (Redis), managed by rocket_db_pools.
//!
//! This module owns how pools are created and closed; what a check does with a connection is
//! `checks`' business. Both pools are lazy: nothing connects until a check asks, so the service
//! ignites and serves while a dependency is down, refused or hanging. A host app's handlers can
//! borrow them as `&Db`/`&Cache` or `Connection<Db>` like any rocket_db_pools database.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use deadpool::managed;
use rocket::figment::Figment;
use rocket::{Build, Rocket};
use rocket_db_pools::deadpool_redis::{self, redis};
use rocket_db_pools::{Config, Database};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;

/// The Postgres pool, configured by `[<profile>.databases.postgres]`.
#[derive(Database)]
#[database("postgres")]
pub struct Db(PgLazy);

/// The Redis pool, configured by `[<profile>.databases.redis]`.
#[derive(Database)]
#[database("redis")]
pub struct Cache(RedisLazy);

// NOTE: rocket_db_pools 0.2's own `sqlx_postgres` pool connects during ignition, so an
// unreachable Postgres stops launch ("failed to initialize database ... pool timed out"), and
// that feature pins sqlx 0.7 with known advisories. This type wraps sqlx 0.8's pool, built with
// `connect_lazy_with` from the same `rocket_db_pools::Config`.
/// A lazily connecting sqlx 0.8 Postgres pool that rocket_db_pools can manage: a host app's
/// `#[derive(Database)]` type wraps it, its handlers take `Connection<D>`, and launch never
/// waits for the database. Configured by `[<profile>.databases.<name>]` (`url`,
/// `max_connections`, `min_connections`, `connect_timeout`, `idle_timeout`).
///
/// ```no_run
/// use rocket::get;
/// use rocket_db_pools::{Connection, Database};
///
/// #[derive(Database)]
/// #[database("orders")]
/// struct Orders(vitals::PgLazy);
///
/// #[get("/orders/count")]
/// async fn count(mut db: Connection<Orders>) -> String {
///     let n: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM orders")
///         .fetch_one(&mut **db)
///         .await;
///     format!("{n:?}")
/// }
/// ```
#[derive(Clone)]
pub struct PgLazy {
    /// The pool itself; connections open on first use.
    pub pool: sqlx::PgPool,
}

/// Why a Postgres pool could not be built. rocket_db_pools hands the pool only its own table,
/// not its name, so the message says `databases.<name>`; vitals' launch error names the table
/// (see [`table_error`]).
#[derive(Debug, thiserror::Error)]
pub enum PgPoolError {
    /// A value of the pool's table is missing or of the wrong type.
    #[error("databases.<name>: {0}")]
    Config(#[from] figment::Error),
    /// The table's `url` is not a Postgres URL (the reason, sanitised).
    #[error("databases.<name>.url is not a valid Postgres URL: {0}")]
    Url(String),
    /// Acquiring a connection failed (only through `Connection<Db>`, which vitals does not use).
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// What is wrong with the URL of `databases.<table>`, a [`PgLazy`] pool that did not start,
/// named by its key; `None` when there is no URL (perhaps no pool was attached) or it is fine.
pub(crate) fn table_error(figment: &Figment, table: &str) -> Option<String> {
    let url = figment
        .extract_inner::<String>(&format!("databases.{table}.url"))
        .ok()?;
    pg_options(&url)
        .err()
        .map(|why| format!("databases.{table}.url is not a valid Postgres URL: {why}"))
}

/// The connect options of a Postgres `url`, or why it is not one (sanitised).
fn pg_options(url: &str) -> Result<PgConnectOptions, String> {
    // sqlx parses any scheme; a mysql:// URL would otherwise surface as a check error.
    if !["postgres://", "postgresql://"]
        .iter()
        .any(|s| url.starts_with(s))
    {
        return Err("the scheme must be postgres:// or postgresql://".to_owned());
    }
    crate::redact::register(crate::redact::url_secrets(url));
    PgConnectOptions::from_str(&known_parameters_only(url))
        .map_err(|e| crate::redact::sanitise(&e.to_string()))
}

#[rocket::async_trait]
impl rocket_db_pools::Pool for PgLazy {
    type Connection = sqlx::pool::PoolConnection<sqlx::Postgres>;
    type Error = PgPoolError;

    async fn init(figment: &Figment) -> Result<Self, Self::Error> {
        let config: Config = figment.extract()?;
        let options = pg_options(&config.url)
            .map_err(PgPoolError::Url)?
            .application_name("vitals")
            // Every check runs `SELECT 1`: logging each at info level would drown the log.
            .log_statements(log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.clamp(1, u32::MAX as usize) as u32)
            // A non-zero minimum makes sqlx connect in the background; off unless configured.
            .min_connections(config.min_connections.unwrap_or(0))
            .acquire_timeout(Duration::from_secs(config.connect_timeout))
            .idle_timeout(config.idle_timeout.map(Duration::from_secs))
            // The check's own `SELECT 1` proves the connection; a test query before it would
            // double the round trips of every probe.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        Ok(PgLazy { pool })
    }

    async fn get(&self) -> Result<Self::Connection, Self::Error> {
        Ok(self.pool.acquire().await?)
    }

    async fn close(&self) {
        // NOTE: sqlx's close waits for every checked-out connection to come back. Rocket runs
        // this before it counts its grace, without a deadline, so a host's query on a server
        // that went silent would hold the process forever; the pool is closed either way, and
        // a connection that comes back later is closed then.
        if tokio::time::timeout(CLOSE_WITHIN, self.pool.close())
            .await
            .is_err()
        {
            log::warn!(
                target: "vitals::shutdown",
                "a Postgres pool still had connections out after {} s; they close when they \
                 come back",
                CLOSE_WITHIN.as_secs()
            );
        }
    }
}

/// The connect parameters sqlx 0.8 reads from a Postgres URL's query (`options/parse.rs`).
const PG_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

// NOTE: sqlx logs every query parameter it does not know at WARN with its value
// ("ignoring unrecognized connect parameter key=sslpassword value=..."), in the host's log
// too, where vitals' logger cannot hide it: so such a parameter never reaches sqlx.
/// `url` without the query parameters sqlx would ignore, each logged by its key alone.
fn known_parameters_only(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let Some(query) = parsed.query().map(str::to_owned) else {
        return url.to_owned();
    };
    let (known, unknown): (Vec<&str>, Vec<&str>) = query.split('&').partition(|pair| {
        let key = crate::redact::percent_decode(pair.split('=').next().unwrap_or(""));
        PG_PARAMETERS.contains(&key.as_str()) || key.starts_with("options[")
    });
    for pair in unknown.iter().filter(|p| !p.is_empty()) {
        let key = crate::redact::sanitise(pair.split('=').next().unwrap_or(""));
        log::warn!(
            target: "vitals::config",
            "a Postgres URL's parameter '{key}' is not one sqlx knows; it is ignored (its \
             value is not shown)"
        );
    }
    parsed.set_query((!known.is_empty()).then(|| known.join("&")).as_deref());
    parsed.into()
}

/// How long closing a Postgres pool at shutdown waits for its connections: Rocket's default
/// `shutdown.grace`.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

impl fmt::Debug for PgLazy {
    // Hand-written: `PgConnectOptions`' own Debug prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = self.pool.connect_options();
        f.debug_struct("PgLazy")
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database())
            .field("size", &self.pool.size())
            .finish()
    }
}

// NOTE: deadpool-redis' own manager recycles every checkout with UNWATCH+PING, so each check
// cost two round trips and three commands. This manager creates connections the same way but
// recycles for free: the check's own PING then tests the pooled connection, and a check that
// fails on a reused connection retries once on a new one (see `checks::redis`).
/// deadpool-redis' connection factory with a recycle that sends nothing; for a `rediss://`
/// URL, connections over vitals' own TLS (see [`RedisTls`]).
pub struct RedisManager {
    plain: deadpool_redis::Manager,
    tls: Option<RedisTls>,
}

// NOTE: redis-rs' own TLS features bring a second rustls (and its own roots) into the build.
// vitals makes the TLS connection itself, with the one configuration every check uses, and
// hands the stream to redis-rs: the same handshake also yields the certificate's expiry.
/// How a `rediss://` pool connects: TCP, vitals' TLS handshake, then redis-rs on that stream.
pub(crate) struct RedisTls {
    host: String,
    port: u16,
    info: redis::RedisConnectionInfo,
    /// The roots to trust: `health.checks.redis.ca_file` once the registry has read it, else
    /// the system's.
    roots: OnceLock<crate::tls::Roots>,
    /// The `notAfter` of the certificate the latest handshake saw, `i64::MIN` before any.
    not_after: AtomicI64,
}

/// `url` as redis-rs (built without TLS) parses it, `rediss://` read as `redis://`, and
/// whether it asked for TLS, which vitals speaks itself (see [`RedisTls`]).
pub(crate) fn without_tls_scheme(url: &str) -> (String, bool) {
    match url.strip_prefix("rediss://") {
        Some(rest) => (format!("redis://{rest}"), true),
        None => (url.to_owned(), false),
    }
}

impl RedisManager {
    /// A manager for `url`: `redis://`, `rediss://` (TLS) or `redis+unix://`.
    fn new(url: &str) -> Result<RedisManager, redis::RedisError> {
        let (plain_url, tls) = without_tls_scheme(url);
        let plain = deadpool_redis::Manager::new(plain_url.as_str())?;
        let tls = match tls {
            false => None,
            true => {
                let info = redis::IntoConnectionInfo::into_connection_info(plain_url.as_str())?;
                let redis::ConnectionAddr::Tcp(host, port) = info.addr else {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "rediss:// needs a host and port",
                    )));
                };
                Some(RedisTls {
                    host,
                    port,
                    info: info.redis,
                    roots: OnceLock::new(),
                    not_after: AtomicI64::new(i64::MIN),
                })
            }
        };
        Ok(RedisManager { plain, tls })
    }

    /// Trusts `roots` instead of the system's for a `rediss://` URL; the first call wins.
    pub(crate) fn trust(&self, roots: crate::tls::Roots) {
        if let Some(tls) = &self.tls {
            let _ = tls.roots.set(roots);
        }
    }

    /// The `notAfter` of the certificate the latest TLS handshake saw (Unix seconds).
    pub(crate) fn certificate_expires(&self) -> Option<i64> {
        let tls = self.tls.as_ref()?;
        Some(tls.not_after.load(Ordering::Relaxed)).filter(|&t| t != i64::MIN)
    }
}

/// The code of the driver error (an extension error of redis-rs) a failed TLS handshake
/// becomes, its detail the reason in words (the reason itself was read from rustls' error
/// kind here).
pub(crate) const TLS_FAILURE: &str = "VITALS_TLS";

/// A driver error with the code [`TLS_FAILURE`] and `why` as its detail. redis-rs 0.25 builds
/// errors with a code of their own only from a server's reply, so this is made as one.
fn tls_failure(why: &str) -> redis::RedisError {
    let reply = format!("-{TLS_FAILURE} {}\r\n", why.replace(['\r', '\n'], " "));
    match redis::parse_redis_value(reply.as_bytes()) {
        Err(e) => e,
        Ok(_) => redis::RedisError::from((redis::ErrorKind::ClientError, "TLS", why.to_owned())),
    }
}

impl RedisTls {
    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        let roots = self
            .roots
            .get()
            .cloned()
            .unwrap_or_else(crate::tls::system_roots);
        let handshake = crate::tls::handshake(stream, &self.host, &roots)
            .await
            .map_err(|e| match crate::tls::rustls_error(&e) {
                Some(tls) => tls_failure(&crate::tls::describe(tls)),
                None => e.into(),
            })?;
        if let Some(not_after) = handshake.not_after {
            self.not_after.store(not_after, Ordering::Relaxed);
        }
        let (conn, driver) =
            redis::aio::MultiplexedConnection::new(&self.info, handshake.stream).await?;
        // The driver lives as long as the connection (it ends when the connection is dropped).
        tokio::spawn(driver);
        Ok(conn)
    }
}

impl managed::Manager for RedisManager {
    type Type = redis::aio::MultiplexedConnection;
    type Error = redis::RedisError;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        match &self.tls {
            Some(tls) => tls.connect().await,
            None => self.plain.create().await,
        }
    }

    async fn recycle(&self, _: &mut Self::Type, metrics: &managed::Metrics) -> RecycleResult {
        match self.renewal_due(metrics.created, std::time::Instant::now()) {
            // deadpool drops the connection and makes a new one for this checkout.
            true => Err(managed::RecycleError::message(
                "a TLS connection an hour old is renewed",
            )),
            false => Ok(()),
        }
    }
}

/// The longest a pooled `rediss://` connection serves: a server's rotated certificate (Redis
/// keeps old connections on the old one) is seen, and its expiry reported, within this.
const TLS_LIFETIME: Duration = Duration::from_secs(3600);

impl RedisManager {
    /// Whether a connection made at `created` must be replaced at `now` rather than reused:
    /// a TLS connection older than [`TLS_LIFETIME`]. A plain one lives as long as it works.
    fn renewal_due(&self, created: std::time::Instant, now: std::time::Instant) -> bool {
        self.tls.is_some() && now.saturating_duration_since(created) > TLS_LIFETIME
    }
}

type RecycleResult = managed::RecycleResult<redis::RedisError>;

/// A lazily connecting Redis pool that rocket_db_pools can manage.
#[derive(Clone)]
pub struct RedisLazy {
    /// The pool itself; connections open on first use.
    pub pool: managed::Pool<RedisManager>,
}

/// Why a Redis pool could not be built: the message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum RedisPoolError {
    /// A value of `databases.redis` is missing or of the wrong type.
    #[error("databases.redis: {0}")]
    Config(#[from] figment::Error),
    /// `databases.redis.url` is not a Redis URL (the reason, sanitised).
    #[error("databases.redis.url is not a valid Redis URL: {0}")]
    Url(String),
    /// The pool could not be assembled.
    #[error("databases.redis: {0}")]
    Build(#[from] managed::BuildError),
    /// Acquiring a connection failed (only through `Connection<Cache>`, which vitals does not use).
    #[error(transparent)]
    Pool(#[from] managed::PoolError<redis::RedisError>),
}

#[rocket::async_trait]
impl rocket_db_pools::Pool for RedisLazy {
    type Connection = managed::Object<RedisManager>;
    type Error = RedisPoolError;

    async fn init(figment: &Figment) -> Result<Self, Self::Error> {
        let config: Config = figment.extract()?;
        crate::redact::register(crate::redact::url_secrets(&config.url));
        let manager = RedisManager::new(config.url.as_str())
            .map_err(|e| RedisPoolError::Url(crate::redact::sanitise(&e.to_string())))?;
        let timeout = Some(Duration::from_secs(config.connect_timeout));
        let pool = managed::Pool::builder(manager)
            .max_size(config.max_connections.max(1))
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .runtime(deadpool::Runtime::Tokio1)
            .build()?;
        Ok(RedisLazy { pool })
    }

    async fn get(&self) -> Result<Self::Connection, Self::Error> {
        Ok(self.pool.get().await?)
    }

    async fn close(&self) {
        self.pool.close();
    }
}

impl fmt::Debug for RedisLazy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLazy")
            .field("status", &self.pool.status())
            .finish()
    }
}

/// Attaches the initializers of the pools whose checks are enabled: their on-ignite builds the
/// pools (a bad URL stops launch with a message naming its key), their on-shutdown closes
/// them. A pool left out is never built, so it never connects and its URL is never read.
pub(crate) fn attach(rocket: Rocket<Build>, postgres: bool, redis: bool) -> Rocket<Build> {
    let rocket = match postgres {
        true => rocket.attach(Db::init()),
        false => rocket,
    };
    match redis {
        true => rocket.attach(Cache::init()),
        false => rocket,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn parameters_sqlx_would_ignore_never_reach_it() {
        let url = "postgres://u@h/d?sslmode=require&sslpassword=KeyPass123&pasword=x&options[a]=b";
        assert_eq!(
            known_parameters_only(url),
            "postgres://u@h/d?sslmode=require&options[a]=b"
        );
        assert_eq!(
            known_parameters_only("postgres://u@h/d?pasword=x"),
            "postgres://u@h/d"
        );
        assert_eq!(
            known_parameters_only("postgres://u@h/d"),
            "postgres://u@h/d"
        );
    }

    #[test]
    fn a_rediss_connection_is_renewed_once_an_hour_old_and_a_plain_one_never() {
        let tls = RedisManager::new("rediss://cache:6380").unwrap();
        let plain = RedisManager::new("redis://cache:6379").unwrap();
        let created = Instant::now();
        let minutes = |m: u64| created + Duration::from_secs(m * 60);
        assert!(!tls.renewal_due(created, minutes(59)));
        assert!(tls.renewal_due(created, minutes(61)));
        assert!(!plain.renewal_due(created, minutes(24 * 60)));
    }
}
