//! A host app for the good-guest tests (`tests/api/guest.rs` runs it as a process, built as
//! the example `guest`): its own caching headers, its own `shutdown` settings, Rocket's own
//! signal handling (`.drain_on_signal(false)`), and a rocket_db_pools Postgres pool of one
//! connection that its handlers use and vitals checks. `ORDERS_URL` names the database;
//! `GUEST_PANIC` adds a check that panics.

use rocket::http::Header;
use rocket::{get, launch, routes, Responder};
use rocket_db_pools::{Connection, Database};
use vitals::{PgLazy, Vitals};

#[derive(Database)]
#[database("orders")]
struct Orders(PgLazy);

/// An answer the host wants cached for an hour.
#[derive(Responder)]
#[response(content_type = "json")]
pub struct Cached {
    body: &'static str,
    cache: Header<'static>,
}

#[get("/cached")]
pub fn cached() -> Cached {
    Cached {
        body: r#"{"price":42}"#,
        cache: Header::new("Cache-Control", "public, max-age=3600"),
    }
}

/// Holds the pool's one connection for `ms` in a query of the host's own.
#[get("/slow?<ms>")]
async fn slow(mut db: Connection<Orders>, ms: u64) -> Result<&'static str, String> {
    sqlx::query("SELECT pg_sleep($1)")
        .bind(ms.min(10_000) as f64 / 1e3)
        .execute(&mut **db)
        .await
        .map(|_| "slept")
        .map_err(|e| e.to_string())
}

#[launch]
fn rocket() -> _ {
    let url = std::env::var("ORDERS_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let figment = rocket::Config::figment()
        .merge(("shutdown.grace", 5))
        .merge(("shutdown.mercy", 2))
        .merge(("databases.orders.url", url))
        .merge(("databases.orders.max_connections", 1));
    let mut vitals = Vitals::new()
        .base("/ops")
        .database::<Orders>("orders")
        .drain_on_signal(false);
    // `GUEST_PANIC`: a check whose every run panics with a URL and its password.
    if std::env::var_os("GUEST_PANIC").is_some() {
        vitals = vitals.check_fn("queue", || async {
            if true {
                panic!("redis://:pw1234@h down");
            }
            Ok::<(), String>(())
        });
    }
    rocket::custom(figment)
        .attach(Orders::init())
        .mount("/", routes![cached, slow])
        .attach(vitals)
}
