//! A host app for the isolation tests (`tests/api/guest.rs` runs it under `taskset -c 0`,
//! built as the example `pinned`): two critical checks on real dependencies (its own sqlx
//! pool on `DATABASE_URL`, its own Redis pool on `REDIS_URL`), and a non-critical `nfs` check
//! that blocks its thread for 3 s while the file `BLOCK_MARKER` exists, as a `std::fs` call on
//! a hung NFS mount would. Its change subscriber blocks its thread for 2 s too, as a
//! synchronous webhook client would.

use std::time::Duration;

use rocket::launch;
use vitals::Vitals;

#[launch]
async fn rocket() -> _ {
    let db = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let cache = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let marker = std::env::var("BLOCK_MARKER").unwrap_or_else(|_| "/nonexistent".into());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy(&db)
        .expect("DATABASE_URL is a Postgres URL");
    let redis = rocket_db_pools::deadpool_redis::Config::from_url(cache)
        .create_pool(Some(rocket_db_pools::deadpool_redis::Runtime::Tokio1))
        .expect("REDIS_URL is a Redis URL");
    rocket::build().attach(
        Vitals::new()
            .postgres("orders_db", pool)
            .redis("cache", redis)
            .check_fn("nfs", move || {
                let marker = marker.clone();
                async move {
                    if std::path::Path::new(&marker).exists() {
                        std::thread::sleep(Duration::from_secs(3));
                    }
                    Ok::<(), String>(())
                }
            })
            .on_change(|_| async { std::thread::sleep(Duration::from_secs(2)) }),
    )
}
