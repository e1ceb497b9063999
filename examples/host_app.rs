//! A small Rocket app of its own that attaches vitals: its routes, its own Postgres pool used
//! by its handlers, and a custom check. Run it with `cargo run --example host_app`, then
//! `curl localhost:8000/ops/health/ready`.
//!
//! - `GET /hello`: a route of the app.
//! - `GET /db/now`: the database's clock, through the app's own pool.
//! - `GET /db/sleep?<ms>`: holds one pooled connection for `ms` (at most 10 s), to show that a
//!   pool busy with the app's work is not reported as a dead database.
//! - `POST /jobs?<count>`: adds jobs to an in-memory backlog; the custom `backlog` check fails
//!   above 100 waiting jobs.
//! - `GET /work?<ms>`: keeps a worker thread busy for `ms` (at most 1000) of CPU, as a
//!   CPU-bound handler would; the benchmark saturates it.
//!
//! vitals serves under `/ops`: `/ops/health/live`, `/ops/health/ready`, `/ops/status`, ...

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rocket::figment::Figment;
use rocket::{get, post, routes, Build, Rocket, State};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use vitals::{Check, Failure, Run, Vitals};

/// Jobs waiting, shared by the app's handlers and its check.
#[derive(Clone, Default)]
pub struct Backlog(Arc<AtomicUsize>);

/// Most jobs that may wait before the app calls itself unready.
pub const BACKLOG_LIMIT: usize = 100;

/// The custom check: too long a backlog means this replica should take no more traffic.
struct BacklogCheck(Backlog);

#[rocket::async_trait]
impl Check for BacklogCheck {
    async fn run(&self, _: &Run) -> Result<(), Failure> {
        match self.0 .0.load(Ordering::Relaxed) {
            n if n > BACKLOG_LIMIT => Err(Failure::error(format!(
                "{n} jobs waiting (limit {BACKLOG_LIMIT})"
            ))),
            _ => Ok(()),
        }
    }
}

#[get("/hello")]
fn hello() -> &'static str {
    "hello from the host app"
}

#[get("/db/now")]
async fn now(pool: &State<PgPool>) -> Result<String, String> {
    sqlx::query_scalar::<_, String>("SELECT now()::text")
        .fetch_one(pool.inner())
        .await
        .map_err(|e| e.to_string())
}

#[get("/db/sleep?<ms>")]
async fn sleep(pool: &State<PgPool>, ms: u64) -> Result<&'static str, String> {
    let seconds = Duration::from_millis(ms.min(10_000)).as_secs_f64();
    sqlx::query("SELECT pg_sleep($1)")
        .bind(seconds)
        .execute(pool.inner())
        .await
        .map(|_| "slept")
        .map_err(|e| e.to_string())
}

/// A synchronous handler runs on one of Rocket's worker threads and holds it until done.
#[get("/work?<ms>")]
fn work(ms: u64) -> String {
    let until = std::time::Instant::now() + Duration::from_millis(ms.min(1000));
    let mut x = 0u64;
    while std::time::Instant::now() < until {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    format!("{x:x}")
}

#[post("/jobs?<count>")]
fn jobs(backlog: &State<Backlog>, count: usize) -> String {
    let waiting = backlog.0.fetch_add(count, Ordering::Relaxed) + count;
    format!("{waiting} jobs waiting")
}

/// The app from `figment`: `orders_url` names its database, `orders_max_connections` its
/// pool size.
pub fn app(figment: Figment) -> Rocket<Build> {
    let url: String = figment
        .extract_inner("orders_url")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let max: u32 = figment.extract_inner("orders_max_connections").unwrap_or(4);
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .connect_lazy(&url)
        .expect("orders_url is a Postgres URL");
    let backlog = Backlog::default();
    rocket::custom(figment)
        .mount("/", routes![hello, now, sleep, jobs, work])
        .manage(pool.clone())
        .manage(backlog.clone())
        .attach(
            Vitals::new()
                .base("/ops")
                .postgres("orders_db", pool)
                .check("backlog", BacklogCheck(backlog)),
        )
}

#[rocket::main]
async fn main() {
    if let Err(e) = app(rocket::Config::figment()).launch().await {
        eprintln!("host_app: {e}");
        std::process::exit(1);
    }
}
