//! Every reason caused for real: closed ports, silent sockets, a name that does not resolve,
//! rejected credentials, a private Postgres at its connection limit or shutting down, Redis
//! with a password, an HTTP upstream answering 500. Each is reported in milliseconds where the
//! dependency answered, not at the deadline.

use std::time::Duration;

use rocket::http::Status;
use sqlx::Connection;

use crate::helpers::*;

/// Far above any answer these tests expect: a refusal must not wait for it.
const LONG_MS: u64 = 5000;
const SLACK: Duration = Duration::from_millis(500);

fn reason<'a>(answer: &'a Answer, check: &str) -> &'a str {
    answer.check(check)["reason"].as_str().unwrap_or("<none>")
}

#[rocket::async_test]
async fn a_closed_port_is_refused() {
    let port = closed_port().await;
    let app = spawn_app([
        ("databases.postgres.url", pg_url(port)),
        ("databases.redis.url", redis_url(port)),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(reason(&answer, "database"), "refused");
    assert_eq!(reason(&answer, "redis"), "refused");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
}

#[rocket::async_test]
async fn a_socket_that_never_answers_is_a_timeout() {
    let silent = Silent::start().await;
    let app = spawn_app([
        ("databases.postgres.url", pg_url(silent.port)),
        ("health.timeout_ms", val(200)),
    ])
    .await;
    let answer = app.get("/health/ready/database").await;
    assert_eq!(answer.check_status("database"), "timeout");
    assert_eq!(reason(&answer, "database"), "timeout");
}

#[rocket::async_test]
async fn a_name_that_does_not_resolve_is_dns() {
    // An empty label: the resolver refuses it on this machine, without a query leaving it.
    let app = spawn_app([
        (
            "databases.postgres.url",
            val("postgres://postgres@no-such..host:5432/postgres"),
        ),
        ("health.checks.queue.kind", val("tcp")),
        ("health.checks.queue.address", val("no-such..host:5672")),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(reason(&answer, "database"), "dns", "{answer:?}");
    assert_eq!(reason(&answer, "queue"), "dns", "{answer:?}");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
}

#[rocket::async_test]
async fn a_role_that_does_not_exist_is_auth() {
    let app = spawn_app([(
        "databases.postgres.url",
        val("postgres://no_such_role@127.0.0.1:5432/postgres"),
    )])
    .await;
    let answer = app.get("/health/ready/database").await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(reason(&answer, "database"), "auth", "{answer:?}");
}

#[rocket::async_test]
async fn a_database_that_does_not_exist_is_auth() {
    let app = spawn_app([(
        "databases.postgres.url",
        val("postgres://postgres@127.0.0.1:5432/no_such_database"),
    )])
    .await;
    let answer = app.get("/health/ready/database").await;
    assert_eq!(reason(&answer, "database"), "auth", "{answer:?}");
}

#[rocket::async_test]
async fn redis_with_a_password_and_none_given_is_auth() {
    let redis = RedisServer::start_with(&["--requirepass", "Pw-req-77"]).await;
    let app = spawn_app([("databases.redis.url", redis_url(redis.port))]).await;
    let answer = app.get("/health/ready/redis").await;
    assert_eq!(answer.check_status("redis"), "error");
    assert_eq!(reason(&answer, "redis"), "auth", "{answer:?}");
}

#[rocket::async_test]
async fn redis_at_a_name_that_does_not_resolve_is_dns() {
    // An empty label, as for Postgres above: refused on this machine, no query leaves it.
    let app = spawn_app([
        ("databases.redis.url", val("redis://no-such..host:6379")),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get("/health/ready/redis").await;
    assert_eq!(answer.check_status("redis"), "error", "{answer:?}");
    assert_eq!(reason(&answer, "redis"), "dns", "{answer:?}");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
}

#[rocket::async_test]
async fn redis_at_its_client_limit_is_unavailable_in_its_own_words() {
    let redis = RedisServer::start_with(&["--maxclients", "1"]).await;
    // Another client takes the only slot.
    let held = redis.hold_client().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(redis.port)),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get("/health/ready/redis").await;
    assert_eq!(answer.check_status("redis"), "error", "{answer:?}");
    assert_eq!(reason(&answer, "redis"), "unavailable", "{answer:?}");
    // The debug profile shows details: the server's own words.
    let error = answer.check("redis")["error"].as_str().unwrap();
    assert!(error.contains("max number of clients"), "{error}");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
    // The slot frees: a probe passes again, no restart.
    drop(held);
    let passes = eventually(Duration::from_secs(5), || async {
        app.get("/health/ready/redis").await.status == Status::Ok
    })
    .await;
    assert!(passes, "redis never passed once its slot was free");
}

#[rocket::async_test]
async fn postgres_at_its_connection_limit_is_unavailable_at_once() {
    let cluster = PgCluster::start(&[
        ("max_connections", "2"),
        ("superuser_reserved_connections", "0"),
    ])
    .await;
    // Other sessions take every slot.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(sqlx::PgConnection::connect(&cluster.url()).await.unwrap());
    }
    let app = spawn_app([
        ("databases.postgres.url", val(cluster.url())),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get("/health/ready/database").await;
    assert_eq!(answer.check_status("database"), "error", "{answer:?}");
    assert_eq!(reason(&answer, "database"), "unavailable");
    let error = answer.check("database")["error"].as_str().unwrap();
    assert!(error.contains("too many clients"), "{error}");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
    // A slot frees: the next probe passes, no restart.
    held.pop().unwrap().close().await.unwrap();
    assert_eq!(app.get("/health/ready/database").await.status, Status::Ok);
}

#[rocket::async_test]
async fn postgres_shutting_down_is_unavailable_at_once() {
    let cluster = PgCluster::start(&[]).await;
    // A smart shutdown waits for this session to end, refusing new ones meanwhile.
    let session = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    let mut stop = cluster.pg_ctl_background(&["stop", "-m", "smart", "-t", "30"]);
    let refusing = eventually(Duration::from_secs(10), || async {
        sqlx::PgConnection::connect(&cluster.url()).await.is_err()
    })
    .await;
    assert!(refusing, "the cluster never began shutting down");
    let app = spawn_app([
        ("databases.postgres.url", val(cluster.url())),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    let answer = app.get("/health/ready/database").await;
    assert_eq!(reason(&answer, "database"), "unavailable", "{answer:?}");
    let error = answer.check("database")["error"].as_str().unwrap();
    assert!(error.contains("shutting down"), "{error}");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
    drop(session);
    let _ = tokio::task::spawn_blocking(move || stop.wait()).await;
}

#[rocket::async_test]
async fn an_http_upstream_answering_500_is_http_status() {
    let upstream = HttpServer::start(500).await;
    let app = spawn_app([
        ("health.checks.payments.kind", val("http")),
        ("health.checks.payments.url", val(upstream.url("/"))),
    ])
    .await;
    let answer = app.get("/health/ready/payments").await;
    assert_eq!(reason(&answer, "payments"), "http_status");
}

#[rocket::async_test]
async fn failures_are_counted_by_reason() {
    let port = closed_port().await;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    app.get("/health/ready/redis").await;
    let response = app.client.get("/metrics").dispatch().await;
    let text = response.into_string().await.unwrap();
    assert!(
        text.contains("vitals_check_failures_total{check=\"redis\",reason=\"refused\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("vitals_check_failures_total{check=\"database\",reason=\"refused\"} 0\n"));
}
