//! Faults from configuration: refused ports, silent listeners, a paused Redis, recovery.

use std::time::Duration;

use rocket::http::Status;

use crate::helpers::*;

/// Far above any answer these tests expect: a refusal must not wait for it.
const LONG_MS: u64 = 5000;
/// Generous scheduling slack for a loaded 2-core CI machine; the benchmark measures the real one.
const SLACK: Duration = Duration::from_millis(500);

#[rocket::async_test]
async fn a_closed_postgres_port_is_an_error_at_once() {
    let app = spawn_app([
        ("databases.postgres.url", pg_url(closed_port().await)),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.json["status"], "unavailable");
    assert_eq!(answer.check_status("database"), "error");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
    let error = answer.check("database")["error"].as_str().unwrap();
    assert!(error.contains("refused"), "{error}");
}

#[rocket::async_test]
async fn a_closed_redis_port_is_an_error_at_once() {
    let app = spawn_app([
        ("databases.redis.url", redis_url(closed_port().await)),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("redis"), "error");
    assert_eq!(answer.check_status("database"), "ok");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
}

#[rocket::async_test]
async fn a_silent_postgres_is_a_timeout_at_the_deadline() {
    let silent = Silent::start().await;
    let app = spawn_app([
        ("databases.postgres.url", pg_url(silent.port)),
        ("health.timeout_ms", val(300)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("database"), "timeout");
    let took = answer.check("database")["duration_ms"].as_f64().unwrap();
    assert!(took >= 300.0, "{took}");
    assert!(
        answer.elapsed < Duration::from_millis(300) + SLACK,
        "took {:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn a_silent_redis_is_a_timeout_at_the_deadline() {
    let silent = Silent::start().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(silent.port)),
        ("health.timeout_ms", val(300)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("redis"), "timeout");
    assert_eq!(answer.check("redis")["error"], "no answer within 300 ms");
    assert!(
        answer.elapsed < Duration::from_millis(300) + SLACK,
        "took {:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn a_paused_redis_is_a_timeout_and_recovers_when_the_pause_ends() {
    let redis = RedisServer::start().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(redis.port)),
        ("health.timeout_ms", val(300)),
    ])
    .await;
    // A pooled connection exists before the pause: recycling it must not hang either.
    assert_eq!(app.get_ready().await.check_status("redis"), "ok");
    // CLIENT UNPAUSE would itself wait out the pause: a short pause ends by itself.
    redis.pause(1500).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("redis"), "timeout");
    assert!(
        answer.elapsed < Duration::from_millis(300) + SLACK,
        "took {:?}",
        answer.elapsed
    );

    let recovered = eventually(Duration::from_secs(10), || async {
        app.get_ready().await.status == Status::Ok
    })
    .await;
    assert!(recovered, "readiness did not recover after the pause");
}

#[rocket::async_test]
async fn a_check_timeout_overrides_the_global_one() {
    let silent = Silent::start().await;
    let app = spawn_app([
        ("databases.postgres.url", pg_url(silent.port)),
        ("health.timeout_ms", val(LONG_MS)),
        ("health.checks.database.timeout_ms", val(100)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check("database")["error"], "no answer within 100 ms");
    assert!(
        answer.elapsed < Duration::from_millis(100) + SLACK,
        "took {:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn the_app_starts_and_serves_with_both_dependencies_hung() {
    let (pg, redis) = (Silent::start().await, Silent::start().await);
    let app = spawn_app([
        ("databases.postgres.url", pg_url(pg.port)),
        ("databases.redis.url", redis_url(redis.port)),
        ("health.timeout_ms", val(200)),
    ])
    .await;
    assert_eq!(app.get_live().await.status, Status::Ok);
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("database"), "timeout");
    assert_eq!(answer.check_status("redis"), "timeout");
}

#[rocket::async_test]
async fn concurrent_probes_all_answer_by_the_deadline_while_everything_hangs() {
    let (pg, redis) = (Silent::start().await, Silent::start().await);
    let app = spawn_app([
        ("databases.postgres.url", pg_url(pg.port)),
        ("databases.redis.url", redis_url(redis.port)),
        ("health.timeout_ms", val(300)),
    ])
    .await;
    let answers = futures::future::join_all((0..100).map(|_| app.get_ready())).await;
    for answer in &answers {
        assert_eq!(answer.status, Status::ServiceUnavailable);
        assert!(
            answer.elapsed < Duration::from_millis(300) + SLACK,
            "took {:?}",
            answer.elapsed
        );
    }
}

#[rocket::async_test]
async fn postgres_refusing_then_listening_recovers_without_restart() {
    let port = closed_port().await;
    let app = spawn_app([("databases.postgres.url", pg_url(port))]).await;
    assert_eq!(app.get_ready().await.check_status("database"), "error");
    let _proxy = Proxy::start_on(port, postgres_addr(), Protocol::Postgres).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok, "{answer:?}");
}

#[rocket::async_test]
async fn redis_refusing_then_listening_recovers_without_restart() {
    let port = closed_port().await;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    assert_eq!(app.get_ready().await.check_status("redis"), "error");
    let _proxy = Proxy::start_on(port, redis_addr(), Protocol::Redis).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok, "{answer:?}");
}

#[rocket::async_test]
async fn a_postgres_that_goes_away_after_use_is_an_error_then_recovers() {
    let proxy = Proxy::start(postgres_addr(), Protocol::Postgres, Duration::ZERO).await;
    let port = proxy.port;
    let app = spawn_app([("databases.postgres.url", pg_url(port))]).await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
    drop(proxy);
    // The pooled connection's socket is still open; aborting the proxy closes the listener,
    // and its pipes end with it, so the next check finds a dead connection and a closed port.
    let down = eventually(Duration::from_secs(5), || async {
        app.get_ready().await.check_status("database") == "error"
    })
    .await;
    assert!(down, "a vanished Postgres was never reported");
    let _back = Proxy::start_on(port, postgres_addr(), Protocol::Postgres).await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
}

#[rocket::async_test]
async fn a_postgres_error_is_reported_with_its_text() {
    let app = spawn_app([(
        "databases.postgres.url",
        val("postgres://postgres@127.0.0.1:5432/no_such_database"),
    )])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("database"), "error");
    let error = answer.check("database")["error"].as_str().unwrap();
    assert!(
        error.contains("no_such_database") && error.contains("does not exist"),
        "{error}"
    );
}

#[rocket::async_test]
async fn a_restarted_redis_is_not_reported_as_an_outage() {
    let redis = RedisServer::start().await;
    let port = redis.port;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    assert_eq!(app.get_ready().await.check_status("redis"), "ok");
    redis.stop().await;
    let _redis = RedisServer::start_on(port).await;
    // The pooled connection died with the old server; the check retries on a new one.
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("redis"), "ok", "{answer:?}");
}

#[rocket::async_test]
async fn a_restarted_postgres_is_not_reported_as_an_outage() {
    let proxy = Proxy::start(postgres_addr(), Protocol::Postgres, Duration::ZERO).await;
    let port = proxy.port;
    let app = spawn_app([("databases.postgres.url", pg_url(port))]).await;
    assert_eq!(app.get_ready().await.check_status("database"), "ok");
    // Stopping the proxy closes every connection through it, as a server restart would.
    proxy.stop().await;
    let _back = Proxy::start_on(port, postgres_addr(), Protocol::Postgres).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("database"), "ok", "{answer:?}");
}

#[rocket::async_test]
async fn a_redis_pool_giving_up_first_says_its_own_timeout_not_the_checks() {
    let silent = Silent::start().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(silent.port)),
        ("databases.redis.connect_timeout", val(1)),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("redis"), "timeout");
    assert_eq!(
        answer.check("redis")["error"],
        "the pool opened no connection within 1 s (databases.redis.connect_timeout)"
    );
    assert!(
        answer.elapsed < Duration::from_secs(1) + SLACK,
        "took {:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn a_postgres_pool_giving_up_first_says_its_own_timeout_not_the_checks() {
    // Each connection answers one query, then goes silent: the first check's connection is
    // still on its way back to the pool when the second asks for one.
    let postgres = crate::shutdown::GoesSilent::start().await;
    let app = spawn_app([
        ("databases.postgres.url", val(postgres.url())),
        ("databases.postgres.connect_timeout", val(1)),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    assert_eq!(app.get("/health/ready/database").await.status, Status::Ok);
    let answer = app.get("/health/ready/database").await;
    assert_eq!(answer.check_status("database"), "timeout");
    assert_eq!(
        answer.check("database")["error"],
        "the pool opened no connection within 1 s (databases.postgres.connect_timeout)"
    );
    assert!(
        answer.elapsed < Duration::from_secs(1) + SLACK,
        "took {:?}",
        answer.elapsed
    );
}
