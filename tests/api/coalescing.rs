//! Probe storms cost one check run, counted where the commands land (a proxy in front of the
//! real Postgres and Redis).

use std::time::Duration;

use rocket::http::Status;

use crate::helpers::*;

const PROBES: usize = 64;
/// Slows every answer so that the probes overlap.
const DELAY: Duration = Duration::from_millis(100);

#[rocket::async_test]
async fn concurrent_probes_share_one_postgres_query() {
    let proxy = Proxy::start(postgres_addr(), Protocol::Postgres, DELAY).await;
    let app = spawn_app([("databases.postgres.url", pg_url(proxy.port))]).await;
    let answers = futures::future::join_all((0..PROBES).map(|_| app.get_ready())).await;
    assert!(answers.iter().all(|a| a.status == Status::Ok));
    let queries = proxy.commands();
    assert!(
        queries <= 2,
        "{queries} queries for {PROBES} concurrent probes"
    );
}

#[rocket::async_test]
async fn concurrent_probes_share_one_redis_ping() {
    let proxy = Proxy::start(redis_addr(), Protocol::Redis, DELAY).await;
    let app = spawn_app([("databases.redis.url", redis_url(proxy.port))]).await;
    let answers = futures::future::join_all((0..PROBES).map(|_| app.get_ready())).await;
    assert!(answers.iter().all(|a| a.status == Status::Ok));
    // A new connection may announce itself (CLIENT SETINFO) before the one PING.
    let commands = proxy.commands();
    assert!(
        commands <= 4,
        "{commands} commands for {PROBES} concurrent probes"
    );
}

#[rocket::async_test]
async fn with_cache_ms_sequential_probes_reuse_one_result() {
    let proxy = Proxy::start(postgres_addr(), Protocol::Postgres, Duration::ZERO).await;
    let app = spawn_app([
        ("databases.postgres.url", pg_url(proxy.port)),
        ("health.cache_ms", val(60_000)),
    ])
    .await;
    for _ in 0..10 {
        assert_eq!(app.get_ready().await.status, Status::Ok);
    }
    assert_eq!(proxy.commands(), 1);
}

#[rocket::async_test]
async fn without_cache_every_sequential_probe_checks() {
    let proxy = Proxy::start(postgres_addr(), Protocol::Postgres, Duration::ZERO).await;
    let app = spawn_app([
        ("databases.postgres.url", pg_url(proxy.port)),
        ("health.cache_ms", val(0)),
    ])
    .await;
    for _ in 0..5 {
        assert_eq!(app.get_ready().await.status, Status::Ok);
    }
    assert_eq!(proxy.commands(), 5);
}

#[rocket::async_test]
async fn a_cached_run_is_not_logged_again() {
    let app = spawn_app([("health.cache_ms", val(60_000))]).await;
    let first = app.get("/health/ready/database").await;
    let second = app.get("/health/ready/database").await;
    // The same run answered both: identical duration down to the microsecond.
    assert_eq!(first.check("database"), second.check("database"));
    let ms = first.check("database")["duration_ms"].as_f64().unwrap();
    let logged = logs()
        .iter()
        .filter(|l| l.contains(r#""target":"vitals::check""#))
        .filter(|l| l.contains(&format!(r#""duration_ms":{ms}"#)))
        .count();
    assert_eq!(logged, 1, "{ms}");
}
