//! vitals: health endpoints for Kubernetes, Docker and people.
//!
//! It answers liveness, readiness and startup probes for a service that depends on Postgres
//! and Redis, honestly (every check has a deadline and says why it failed) and cheaply
//! (concurrent probes share one check run; results can be cached for `health.cache_ms`).
//!
//! Module map:
//! - [`config`]: the figment (Rocket.toml, env overrides) and typed [`config::Settings`].
//! - [`pools`]: the Postgres ([`pools::Db`]) and Redis ([`pools::Cache`]) pools, both lazy.
//! - [`checks`]: probes, deadlines, coalescing, history, verdicts, sanitising.
//! - [`routes`]: the health endpoints; [`error`]: refusals and JSON catchers.
//! - [`status_page`]: `/status`, the HTML view for people.
//! - [`fairings`]: request and check logging, `Cache-Control`.
//! - [`metrics`]: Prometheus registry, its recorder and `/metrics`.
//! - [`shutdown`]: the lifecycle (serving, draining).
//! - [`logging`]: text or JSON log lines.
//! - [`healthcheck`]: the `vitals healthcheck` probe client.

pub mod checks;
pub mod config;
pub mod error;
pub mod fairings;
pub mod healthcheck;
pub mod logging;
pub mod metrics;
pub mod pools;
pub mod routes;
pub mod shutdown;
pub mod status_page;

use figment::Figment;
use rocket::{Build, Rocket};

/// The service as `vitals serve` runs it: configuration from `Rocket.toml` and the
/// environment, and the process logger installed.
pub fn rocket() -> Rocket<Build> {
    let figment = config::figment();
    logging::init(&figment);
    build(figment).attach(shutdown::signals())
}

/// Assembles the service from `figment`; `rocket()` passes the real one, tests their own.
///
/// ```no_run
/// # async fn probe() {
/// use rocket::local::asynchronous::Client;
///
/// let figment = vitals::config::figment().merge(("health.timeout_ms", 200));
/// let client = Client::tracked(vitals::build(figment)).await.unwrap();
/// let ready = client.get("/health/ready").dispatch().await;
/// println!("{}", ready.status());
/// # }
/// ```
pub fn build(figment: Figment) -> Rocket<Build> {
    // Rocket's own signal handling would stop accepting connections at the first SIGTERM;
    // `shutdown` drains first.
    rocket::custom(shutdown::configure(figment))
        .attach(config::stage()) // Settings first: later stages read them
        .attach(pools::stage()) // before anything that fetches a pool
        .attach(checks::stage())
        .attach(metrics::stage())
        .attach(fairings::stage())
        .attach(routes::stage())
        .attach(status_page::stage())
        .attach(shutdown::stage())
}
