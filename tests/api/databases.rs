//! `Vitals::database::<D>()`: a host's rocket_db_pools databases as checks, against the real
//! Postgres and Redis: healthy, refused, hung, and busy with the host's own work.

use std::time::Duration;

use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes, Build, Rocket};
use rocket_db_pools::{deadpool_redis, Connection, Database};
use vitals::{PgLazy, Vitals};

use crate::helpers::*;
use figment::value::Value;

#[derive(Database)]
#[database("orders")]
struct Orders(PgLazy);

#[derive(Database)]
#[database("sessions")]
struct Sessions(deadpool_redis::Pool);

/// Holds one Postgres connection of the host's pool for `ms`.
#[get("/orders/hold?<ms>")]
async fn hold_orders(mut db: Connection<Orders>, ms: u64) -> &'static str {
    let _ = sqlx::query("SELECT pg_sleep($1)")
        .bind(ms as f64 / 1e3)
        .execute(&mut **db)
        .await;
    "held"
}

/// Set while [`keep_orders`] holds its connection.
static KEEPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Holds one Postgres connection of the host's pool for `ms`, sending nothing on it.
#[get("/orders/keep?<ms>")]
async fn keep_orders(_db: Connection<Orders>, ms: u64) -> &'static str {
    KEEPING.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "kept"
}

/// Holds one Redis connection of the host's pool for `ms`.
#[get("/sessions/hold?<ms>")]
async fn hold_sessions(_db: Connection<Sessions>, ms: u64) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "held"
}

/// A host app written the Rocket way: both pools attached, used by its handlers, checked by
/// vitals. Pools of one connection, so one held request makes them busy.
fn host(orders_url: Value, sessions_url: Value) -> Rocket<Build> {
    capture_logs();
    let figment = rocket::Config::figment()
        .merge(("databases.orders.url", orders_url))
        .merge(("databases.orders.max_connections", 1))
        .merge(("databases.sessions.url", sessions_url))
        .merge(("databases.sessions.max_connections", 1))
        .merge(("health.timeout_ms", 500))
        .merge(("health.details", "always"));
    rocket::custom(figment)
        .attach(Orders::init())
        .attach(Sessions::init())
        .mount("/", routes![hold_orders, hold_sessions])
        .attach(
            Vitals::new()
                .database::<Orders>("orders")
                .database::<Sessions>("sessions"),
        )
}

async fn app(orders_url: Value, sessions_url: Value) -> TestApp {
    let client = Client::tracked(host(orders_url, sessions_url)).await;
    TestApp {
        client: client.expect("the host app ignites"),
    }
}

fn healthy() -> (Value, Value) {
    (pg_url(5432), redis_url(6379))
}

#[rocket::async_test]
async fn the_hosts_databases_are_checked_through_their_own_pools() {
    let (pg, redis) = healthy();
    let app = app(pg, redis).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok, "{:?}", answer.json);
    assert_eq!(answer.check_names(), ["orders", "sessions"]);
    assert_eq!(answer.check_status("orders"), "ok");
    assert_eq!(answer.check_status("sessions"), "ok");
}

#[rocket::async_test]
async fn a_refused_database_is_refused_at_once() {
    let (pg, redis) = (pg_url(closed_port().await), redis_url(closed_port().await));
    let app = app(pg, redis).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check("orders")["reason"], "refused");
    assert_eq!(answer.check("sessions")["reason"], "refused");
    assert!(
        answer.elapsed < Duration::from_millis(400),
        "{:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn a_hung_database_is_a_timeout_at_its_deadline() {
    let (pg, redis) = (Silent::start().await, Silent::start().await);
    let app = app(pg_url(pg.port), redis_url(redis.port)).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("orders"), "timeout");
    assert_eq!(answer.check_status("sessions"), "timeout");
    assert!(
        answer.elapsed < Duration::from_millis(900),
        "{:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn pools_busy_with_the_hosts_work_are_not_dead_databases() {
    let (pg, redis) = healthy();
    let app = app(pg, redis).await;
    // The host's handlers hold each pool's one connection for two seconds.
    let held = futures::future::join(
        app.get("/orders/hold?ms=2000"),
        app.get("/sessions/hold?ms=2000"),
    );
    let probe = async {
        // Polled while the handlers hold the pools, until both checks report them busy.
        let until = std::time::Instant::now() + Duration::from_millis(1800);
        loop {
            let answer = app.get_ready().await;
            let busy = answer.check("orders")["busy_pool"] == true
                && answer.check("sessions")["busy_pool"] == true;
            if busy || std::time::Instant::now() > until {
                return (busy, Some(answer));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    let ((orders, sessions), (busy, last)) = tokio::join!(held, probe);
    let last = last.expect("probed at least once");
    assert!(
        busy,
        "the checks never saw both pools busy: {:?}",
        last.json
    );
    assert_eq!(last.status, Status::Ok);
    assert_eq!(last.check_status("orders"), "ok");
    assert_eq!(last.check_status("sessions"), "ok");
    assert_eq!((orders.status, sessions.status), (Status::Ok, Status::Ok));
}

#[rocket::async_test]
async fn a_database_whose_pool_is_not_attached_stops_launch_naming_it() {
    capture_logs();
    let rocket = rocket::build().attach(Vitals::new().database::<Orders>("orders"));
    let ignited = rocket.ignite().await.map_err(|e| e.to_string());
    assert!(ignited.is_err(), "launched without the pool");
    let named = logs().iter().any(|l| {
        l.contains("check 'orders': the database pool 'orders' did not start")
            && l.contains("Orders::init()")
    });
    assert!(named, "no error line names the missing pool");
}

#[rocket::async_test]
async fn a_hosts_postgres_gone_after_launch_is_refused_at_once_not_at_the_deadline() {
    let cluster = PgCluster::start(&[]).await;
    capture_logs();
    let figment = rocket::Config::figment()
        .merge(("databases.orders.url", cluster.url()))
        .merge(("databases.orders.max_connections", 2))
        .merge(("health.timeout_ms", 5000))
        .merge(("health.details", "always"));
    let rocket = rocket::custom(figment)
        .attach(Orders::init())
        .mount("/", routes![keep_orders])
        .attach(Vitals::new().database::<Orders>("orders"));
    let app = TestApp {
        client: Client::tracked(rocket).await.expect("the host app ignites"),
    };
    assert_eq!(app.get_ready().await.status, Status::Ok);
    // The host's own handler holds a connection: the pool is neither empty nor idle.
    let held = app.get("/orders/keep?ms=60000");
    let probe = async {
        let holding = eventually(Duration::from_secs(5), || async {
            KEEPING.load(std::sync::atomic::Ordering::SeqCst)
        })
        .await;
        assert!(holding, "the handler never held its connection");
        cluster.pg_ctl(&["stop", "-m", "immediate"]);
        app.get_ready().await
    };
    let answer = tokio::select! {
        answer = probe => answer,
        held = held => panic!("the held request ended first: {:?} {:?}", held.status, held.json),
    };
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(
        answer.check("orders")["reason"],
        "refused",
        "{:?}",
        answer.json
    );
    assert!(
        answer.elapsed < Duration::from_secs(1),
        "{:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn a_hosts_bad_postgres_url_stops_launch_naming_the_hosts_table() {
    let rocket = host(val("mysql://app@db/orders"), redis_url(6379));
    let ignited = rocket.ignite().await.map_err(|e| e.to_string());
    assert!(ignited.is_err(), "launched with a mysql:// URL");
    let errors: Vec<String> = logs()
        .into_iter()
        .filter(|l| l.contains(r#""level":"error""#))
        .collect();
    assert!(
        errors.iter().any(|l| l.contains(
            "databases.orders.url is not a valid Postgres URL: the scheme must be postgres://"
        )),
        "{errors:?}"
    );
}
