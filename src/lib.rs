//! vitals: health endpoints for Kubernetes, Docker and people, for any Rocket 0.5 app.
//!
//! It answers liveness, readiness and startup probes honestly (every check has a deadline and
//! says why it failed) and cheaply (concurrent probes share one check run; results can be
//! cached for `health.cache_ms`). Run on its own (`vitals serve`) it watches Postgres and
//! Redis; attached to a host app it checks the app's rocket_db_pools databases and whatever
//! else the app registers or declares.
//!
//! ```no_run
//! use rocket::{get, launch, routes};
//! use rocket_db_pools::{deadpool_redis, Connection, Database};
//! use vitals::Vitals;
//!
//! #[derive(Database)]
//! #[database("cache")]
//! struct Cache(deadpool_redis::Pool);
//!
//! #[get("/hello")]
//! fn hello(_cache: Connection<Cache>) -> &'static str { "hello" }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(Cache::init())
//!         .mount("/", routes![hello])
//!         .attach(
//!             Vitals::new()
//!                 .database::<Cache>("cache") // PING through the app's own pool
//!                 .check_fn("queue", || async { Ok::<(), String>(()) }),
//!         )
//! }
//! ```
//!
//! The public surface: [`Vitals`] (attach, register checks), the [`Check`] trait with [`Run`],
//! [`Failure`] and [`Reason`], [`check_once`] for a check's unit tests, [`Lifecycle`] for the
//! app's own handlers, [`PgLazy`] (a lazily connecting sqlx 0.8 Postgres pool for
//! rocket_db_pools), and [`rocket()`], [`build()`] and [`figment()`] for the standalone service and
//! its tests. Module map (all internal):
//! - `config`: the figment (built-in defaults, Rocket.toml, env overrides) and typed settings.
//! - `pools`: the standalone service's Postgres (`Db`) and Redis (`Cache`) pools, both lazy.
//! - `checks`: the trait, the registry, the engine and its runtime, one file per kind.
//! - `redact`: the one path dependency text takes before anyone sees it.
//! - `routes`: the health endpoints; `error`: refusals and JSON catchers.
//! - `status_page`: `/status`, the HTML view for people.
//! - `fairings`: request logging and `Cache-Control`, for vitals' own routes.
//! - `metrics`: Prometheus registry, its recorder and `/metrics`.
//! - `shutdown`: the lifecycle (serving, draining) and the signal task.
//! - `heartbeat`: proof that the app's runtime runs (stall detection, runtime lag).
//! - `listener`: the health endpoints' own port, thread and runtime (`health.port`).
//! - `logging`, `healthcheck`, `probes`: the `vitals` command's log lines, `vitals healthcheck`
//!   and `vitals probes`; public for the binary and its tests only, not part of the API.

mod access;
mod checks;
mod config;
mod error;
mod fairings;
#[doc(hidden)]
pub mod healthcheck;
mod heartbeat;
mod listener;
#[doc(hidden)]
pub mod logging;
mod metrics;
mod panics;
mod pools;
#[doc(hidden)]
pub mod probes;
mod redact;
mod reply;
mod routes;
mod shutdown;
mod status_page;
mod tls;

use std::future::Future;
use std::sync::Arc;

use figment::Figment;
use rocket::fairing::{self, AdHoc, Fairing, Info, Kind};
use rocket::{Build, Rocket};

pub use checks::{check_once, Change, Check, Failure, Reason, Run};
pub use config::figment;
pub use pools::PgLazy;
/// The deadpool-redis that [`Vitals::redis`] takes a pool of (rocket_db_pools' own).
pub use rocket_db_pools::deadpool_redis;
pub use shutdown::Lifecycle;
/// The sqlx pool type that [`Vitals::postgres`] takes (sqlx 0.8).
pub use sqlx::PgPool;

use checks::{FnCheck, Health, Recorder, Registry, Source, Subscriber};
use config::Settings;
use fairings::Scope;
use metrics::Metrics;

/// The standalone service as `vitals serve` runs it: configuration from the built-in defaults,
/// `Rocket.toml` and the environment, the process logger installed, and the drain on SIGTERM.
///
/// ```no_run
/// #[rocket::main]
/// async fn main() -> Result<(), rocket::Error> {
///     vitals::rocket().launch().await.map(drop)
/// }
/// ```
pub fn rocket() -> Rocket<Build> {
    let figment = config::figment();
    logging::init(&figment);
    rocket::custom(figment).attach(Vitals::standalone().drain_on_signal(true))
}

/// The standalone service built from `figment`, without signal handling; `rocket()` passes
/// the real figment, tests their own.
///
/// ```no_run
/// # async fn probe() {
/// use rocket::local::asynchronous::Client;
///
/// let figment = vitals::figment().merge(("health.timeout_ms", 200));
/// let client = Client::tracked(vitals::build(figment)).await.unwrap();
/// let ready = client.get("/health/ready").dispatch().await;
/// println!("{}", ready.status());
/// # }
/// ```
pub fn build(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment).attach(Vitals::standalone())
}

/// vitals as a fairing: attach it to any Rocket 0.5 app to get the health endpoints,
/// `/status`, `/metrics`, the drain on SIGTERM and one log line per check run, configured by
/// the app's `[<profile>.health]` table (with the standalone service's `debug` and `release`
/// defaults beneath it). Checks come from the app's rocket_db_pools databases
/// ([`database`](Vitals::database)), [`check`](Vitals::check), [`check_fn`](Vitals::check_fn),
/// pools built by hand ([`postgres`](Vitals::postgres), [`redis`](Vitals::redis)) and
/// `[<profile>.health.checks.<name>]` declarations. A bad name, a duplicate, a bad declaration,
/// a database pool that is not attached or a second `Vitals` stops launch with a message
/// naming it.
///
/// It is a good guest: the app's own answers leave it as the app made them (headers, logs,
/// metrics), Rocket's signal handling is the app's unless the drain is on, and check runs live
/// on a runtime of vitals' own that outlives Rocket's shutdown.
///
/// ```
/// use vitals::Vitals;
///
/// let vitals = Vitals::new()
///     .base("/ops")
///     .check_fn("disk", || async {
///         std::fs::metadata("/tmp")?; // `?` on any error: reason from its source chain
///         Ok::<(), std::io::Error>(())
///     });
/// let rocket = rocket::build().attach(vitals);
/// # drop(rocket);
/// ```
#[derive(Clone)]
pub struct Vitals {
    checks: Vec<(String, Source)>,
    service: routes::Service,
    base: String,
    standalone: bool,
    drain_on_signal: bool,
    host_requests: bool,
    subscribers: Vec<Subscriber>,
}

impl Default for Vitals {
    fn default() -> Self {
        Self::new()
    }
}

impl Vitals {
    /// No checks yet, endpoints at `/`, drain on SIGTERM and SIGINT.
    pub fn new() -> Vitals {
        Vitals {
            checks: Vec::new(),
            service: routes::Service {
                id: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            base: "/".into(),
            standalone: false,
            drain_on_signal: true,
            host_requests: false,
            subscribers: Vec::new(),
        }
    }

    /// The standalone service: `database` and `redis` on the Rocket-managed pools
    /// `databases.postgres` and `databases.redis`, `/` redirecting to `/status`, JSON catchers.
    fn standalone() -> Vitals {
        Vitals {
            checks: vec![
                ("database".into(), Source::ManagedPostgres),
                ("redis".into(), Source::ManagedRedis),
            ],
            standalone: true,
            drain_on_signal: false,
            ..Vitals::new()
        }
    }

    /// Registers `check` as `name` (`[a-z][a-z0-9_-]{0,31}`, unique).
    pub fn check(mut self, name: impl Into<String>, check: impl Check) -> Vitals {
        self.checks
            .push((name.into(), Source::Ready(Arc::new(check))));
        self
    }

    /// Registers an async closure as the check `name`: `Ok(())` passes, an `Err` is an
    /// `error` with its text, and the deadline is enforced around it.
    ///
    /// ```
    /// let vitals = vitals::Vitals::new().check_fn("spool", || async {
    ///     match std::fs::read_dir("/tmp").map_err(|e| e.to_string())?.count() {
    ///         n if n > 10_000 => Err(format!("{n} files waiting")),
    ///         _ => Ok(()),
    ///     }
    /// });
    /// # drop(vitals);
    /// ```
    pub fn check_fn<F, Fut, E>(self, name: impl Into<String>, check: F) -> Vitals
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        self.check(name, FnCheck(check))
    }

    /// Registers the app's rocket_db_pools database `D` as the check `name`. Its pool is taken
    /// from the app's managed state after ignite, so `D::init()` must be attached too (in any
    /// order); launch stops naming it when it is not. vitals' [`PgLazy`] is checked with
    /// `SELECT 1` and a deadpool-redis pool with `PING` (both with the busy-pool rule of
    /// [`postgres`](Vitals::postgres)); any other pool by a checkout under the deadline.
    ///
    /// ```no_run
    /// use rocket_db_pools::Database;
    ///
    /// #[derive(Database)]
    /// #[database("orders")]
    /// struct Orders(vitals::PgLazy);
    ///
    /// let rocket = rocket::build()
    ///     .attach(Orders::init())
    ///     .attach(vitals::Vitals::new().database::<Orders>("orders"));
    /// # drop(rocket);
    /// ```
    pub fn database<D>(mut self, name: impl Into<String>) -> Vitals
    where
        D: rocket_db_pools::Database,
        D::Pool: Clone,
        <D::Pool as rocket_db_pools::Pool>::Error: 'static,
    {
        let fetch = Arc::new(checks::rocket_db::fetch::<D>);
        self.checks.push((name.into(), Source::Fetched(fetch)));
        self
    }

    /// Calls `subscriber` with every change of a check's counted state (`passing`/`failing`,
    /// see `fail_after`) and of the overall verdict: to page someone, shed load or flip a
    /// feature flag. Each call runs on a task of its own on vitals' check runtime, so a slow
    /// or panicking subscriber delays and breaks nothing.
    ///
    /// ```
    /// let vitals = vitals::Vitals::new().on_change(|change: vitals::Change| async move {
    ///     if change.check.is_none() && change.to == "unavailable" {
    ///         eprintln!("readiness lost after {:?} {}", change.lasted, change.from);
    ///     }
    /// });
    /// # drop(vitals);
    /// ```
    pub fn on_change<F, Fut>(mut self, subscriber: F) -> Vitals
    where
        F: Fn(Change) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let subscriber: Subscriber = Arc::new(move |change| Box::pin(subscriber(change)));
        self.subscribers.push(subscriber);
        self
    }

    /// Logs and counts (in `vitals_http_requests_total`) the app's own requests too, not only
    /// vitals' (default false: the app's requests are its own business).
    pub fn host_requests(mut self, on: bool) -> Vitals {
        self.host_requests = on;
        self
    }

    /// Registers `SELECT 1` on the app's own sqlx pool as the check `name`. When the app's
    /// traffic holds every connection, the check uses one of its own instead of waiting.
    /// (A pool the app owns through rocket_db_pools is [`database`](Vitals::database)'s.)
    ///
    /// ```no_run
    /// #[rocket::launch]
    /// async fn rocket() -> _ {
    ///     // In an async launch: a lazy sqlx pool needs Tokio's context to be built.
    ///     let pool = vitals::PgPool::connect_lazy("postgres://app@db/app").unwrap();
    ///     rocket::build()
    ///         .manage(pool.clone())
    ///         .attach(vitals::Vitals::new().postgres("orders", pool))
    /// }
    /// ```
    pub fn postgres(self, name: impl Into<String>, pool: sqlx::PgPool) -> Vitals {
        self.check(
            name,
            checks::postgres::PostgresCheck::new(pool, Vec::new()).shared(),
        )
    }

    /// Registers `PING` on the app's own deadpool-redis pool as the check `name`.
    pub fn redis(self, name: impl Into<String>, pool: deadpool_redis::Pool) -> Vitals {
        let pool = checks::redis::RedisPool::Host(pool);
        self.check(
            name,
            checks::redis::RedisCheck::new(pool, Vec::new()).shared(),
        )
    }

    /// Names the service in `/health` and health+json (`serviceId`, `version`); default
    /// `vitals` and vitals' version. A host app passes its own, e.g.
    /// `.identify(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))`.
    pub fn identify(mut self, id: &'static str, version: &'static str) -> Vitals {
        self.service = routes::Service { id, version };
        self
    }

    /// Serves everything under `base` (`/ops`: `/ops/health/ready`, `/ops/status`, ...).
    pub fn base(mut self, base: impl Into<String>) -> Vitals {
        let base = base.into();
        self.base = format!("/{}", base.trim_matches('/'));
        self
    }

    /// Whether SIGTERM and SIGINT start the drain (default true): readiness answers `draining`
    /// for `health.drain_ms`, then Rocket shuts down under the app's own `shutdown.grace` and
    /// `mercy`; Rocket's own `shutdown.ctrlc`/`signals` are turned off for that (logged at
    /// launch). `false` leaves Rocket's signal handling exactly as the app configured it.
    pub fn drain_on_signal(mut self, on: bool) -> Vitals {
        self.drain_on_signal = on;
        self
    }

    fn uses(&self, source: fn(&Source) -> bool, settings: &Settings) -> bool {
        Registry::enabled(&self.checks, &settings.health).any(|(_, s)| source(s))
    }
}

#[rocket::async_trait]
impl Fairing for Vitals {
    fn info(&self) -> Info {
        Info {
            name: "Vitals",
            kind: Kind::Ignite,
        }
    }

    /// One stage per concern, in the order they depend on each other.
    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let rocket = self.settings_stage(rocket)?;
        let Some(settings) = rocket.state::<Settings>().cloned() else {
            return Err(rocket);
        };
        let rocket = self.signals_stage(rocket, &settings);
        let rocket = self.pools_stage(rocket, &settings);
        let scope = Scope {
            everything: self.standalone || self.host_requests,
            standalone: self.standalone,
        };
        let (registered, subscribers) = (self.checks.clone(), self.subscribers.clone());
        let rocket = rocket
            .manage(access::Policy::new(
                settings.health.details,
                settings.health.token.clone(),
            ))
            .manage(self.service)
            // After the pools (the app's and vitals' own): checks take theirs from managed state.
            .attach(AdHoc::try_on_ignite("Health Checks", |rocket| {
                engine_stage(rocket, registered, subscribers)
            }))
            .attach(metrics::stage(&self.base, scope))
            .attach(fairings::stage(scope, &self.base))
            .attach(routes::stage(&self.base, self.standalone))
            .attach(status_page::stage(&self.base, self.standalone))
            .attach(shutdown::stage())
            // After the engine's stage, which manages the metrics its lag feeds.
            .attach(heartbeat::stage());
        let rocket = match settings.health.port {
            Some(port) => rocket.attach(listener::stage(port, self.base.clone(), self.standalone)),
            None => rocket,
        };
        Ok(match self.drain_on_signal {
            true => rocket.attach(shutdown::signals()),
            false => rocket,
        })
    }
}

impl Vitals {
    /// Reads and manages the settings (the profile's built-in defaults beneath the app's own);
    /// a second `Vitals` or a bad value stops launch naming it.
    // Rocket's own `fairing::Result`, whose error hands the Rocket back, as ignite expects.
    #[allow(clippy::result_large_err)]
    fn settings_stage(&self, rocket: Rocket<Build>) -> fairing::Result {
        if rocket.state::<Settings>().is_some() {
            log::error!(
                target: "vitals::config",
                "vitals is attached twice (the second at base {}): attach one Vitals; one \
                 instance serves every check",
                self.base
            );
            return Err(rocket);
        }
        match Settings::from_figment(&config::with_defaults(rocket.figment())) {
            Ok(settings) => Ok(rocket.manage(settings)),
            Err(message) => {
                log::error!(target: "vitals::config", "invalid configuration: {message}");
                Err(rocket)
            }
        }
    }

    /// With the drain on, takes SIGTERM and SIGINT from Rocket (ignite fairings run before
    /// Rocket reads its own configuration); without, changes nothing.
    fn signals_stage(&self, rocket: Rocket<Build>, settings: &Settings) -> Rocket<Build> {
        match self.drain_on_signal {
            true => shutdown::take_signals(rocket, settings.health.drain_ms),
            false => rocket,
        }
    }

    /// Builds the pools of the enabled built-in checks only: a disabled one never connects.
    fn pools_stage(&self, rocket: Rocket<Build>, settings: &Settings) -> Rocket<Build> {
        pools::attach(
            rocket,
            self.uses(|s| matches!(s, Source::ManagedPostgres), settings),
            self.uses(|s| matches!(s, Source::ManagedRedis), settings),
        )
    }
}

/// Most checks one service may have, the built-ins included: each has a thread of its own.
const MAX_CHECKS: usize = 100;

/// Assembles the registry, then manages [`Health`] and the [`Metrics`] its runs feed.
async fn engine_stage(
    rocket: Rocket<Build>,
    registered: Vec<(String, Source)>,
    subscribers: Vec<Subscriber>,
) -> fairing::Result {
    let Some(settings) = rocket.state::<Settings>() else {
        return Err(rocket);
    };
    let health = &settings.health;
    let registry = match Registry::assemble(&registered, health, &rocket) {
        Ok(registry) if registry.checks.len() > MAX_CHECKS => {
            log::error!(
                target: "vitals::config",
                "invalid configuration: {} checks: at most {MAX_CHECKS}, the built-ins \
                 included (health.checks)",
                registry.checks.len()
            );
            return Err(rocket);
        }
        Ok(registry) => registry,
        Err(message) => {
            log::error!(target: "vitals::config", "invalid configuration: {message}");
            return Err(rocket);
        }
    };
    let described: Vec<_> = registry
        .checks
        .iter()
        .map(|c| (&*c.name, c.timeout, c.critical))
        .collect();
    let metrics = Metrics::new(&described);
    let recorder: Recorder = {
        let metrics = metrics.clone();
        Arc::new(
            move |name: &str, outcome: &checks::RunOutcome, changed: bool| {
                metrics.record_run(name, outcome, changed)
            },
        )
    };
    // A check's panic message may hold a credential: its threads' panics print sanitised.
    panics::install();
    // Every check's secrets are hidden in every text and log line, not only in its own.
    redact::register(registry.secrets());
    let engine = Health::new(registry, health.cache_ms, recorder)
        .isolated(checks::checks_runtime())
        .on_timer(health.timer())
        .telling(subscribers);
    Ok(rocket
        .manage(engine)
        .manage(metrics)
        // Timers start when the app serves and stop when the drain begins...
        .attach(AdHoc::on_liftoff("Check Timers", |rocket| {
            Box::pin(async move {
                let (Some(engine), Some(lifecycle)) =
                    (rocket.state::<Health>(), rocket.state::<Lifecycle>())
                else {
                    return;
                };
                let lifecycle = lifecycle.clone();
                engine.start_timers(Arc::new(move || lifecycle.is_draining()));
            })
        }))
        // ... and stop for good when Rocket shuts down, drain or not: a test suite that
        // builds a Rocket per test leaks no timers, and with them no pools.
        .attach(AdHoc::on_shutdown("Check Timers Stop", |rocket| {
            Box::pin(async move {
                if let Some(engine) = rocket.state::<Health>() {
                    engine.halt();
                }
            })
        })))
}
