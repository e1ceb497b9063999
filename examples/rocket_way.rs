//! A Rocket app that owns its pools the Rocket way and lets vitals check them.
use rocket::{get, launch, routes};
use rocket_db_pools::{deadpool_redis, Connection, Database};
use vitals::{PgLazy, Vitals};

/// Postgres through vitals' lazy sqlx 0.8 pool: launch never waits for the database.
#[derive(Database)]
#[database("orders")]
struct Orders(PgLazy);

/// Redis through rocket_db_pools' deadpool-redis pool.
#[derive(Database)]
#[database("sessions")]
struct Sessions(deadpool_redis::Pool);

#[get("/connections")]
async fn connections(mut db: Connection<Orders>) -> String {
    let n: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity")
        .fetch_one(&mut **db)
        .await;
    n.map_or_else(|e| format!("error: {e}"), |n| n.to_string())
}

#[launch]
fn rocket() -> _ {
    rocket::build()
        .attach(Orders::init())
        .attach(Sessions::init())
        .mount("/", routes![connections])
        .attach(
            Vitals::new()
                .base("/ops") // /ops/health/ready, /ops/status, /ops/metrics, ...
                .database::<Orders>("orders") // SELECT 1 on the app's own pool
                .database::<Sessions>("sessions") // PING on the app's own pool
                .check_fn("spool", || async {
                    // any async closure; an Err is an `error` with its text
                    std::fs::metadata("/tmp").map(drop)
                }),
        )
}
