use rocket::http::{ContentType, Status};

use crate::helpers::*;

#[rocket::async_test]
async fn ready_is_200_with_both_checks_ok_when_healthy() {
    let app = spawn_app([]).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.content_type, Some(ContentType::JSON));
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    assert_eq!(answer.json["status"], "ready");
    assert_eq!(answer.check_status("database"), "ok");
    assert_eq!(answer.check_status("redis"), "ok");
}

#[rocket::async_test]
async fn a_check_reports_its_duration_and_no_error_when_ok() {
    let app = spawn_app([]).await;
    let answer = app.get_ready().await;
    let db = answer.check("database");
    assert!(
        db["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{db}"
    );
    assert!(db.get("error").is_none(), "{db}");
}

#[rocket::async_test]
async fn ready_excluding_redis_reports_only_the_database() {
    let app = spawn_app([]).await;
    let answer = app.get("/health/ready?exclude=redis").await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.check_names(), ["database"]);
}

#[rocket::async_test]
async fn ready_excluding_a_failing_check_is_200() {
    let app = spawn_app([("databases.redis.url", redis_url(closed_port().await))]).await;
    assert_eq!(app.get_ready().await.status, Status::ServiceUnavailable);
    let answer = app.get("/health/ready?exclude=redis").await;
    assert_eq!(answer.status, Status::Ok);
}

#[rocket::async_test]
async fn ready_excluding_every_check_is_ready_with_no_checks() {
    let app = spawn_app([]).await;
    let answer = app
        .get("/health/ready?exclude=database&exclude=redis")
        .await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(
        answer.json,
        rocket::serde::json::json!({"status": "ready", "checks": {}})
    );
}

#[rocket::async_test]
async fn ready_with_an_unknown_exclude_is_400_naming_the_known_checks() {
    let app = spawn_app([]).await;
    let answer = app.get("/health/ready?exclude=mongo").await;
    assert_eq!(answer.status, Status::BadRequest);
    assert_eq!(answer.content_type, Some(ContentType::JSON));
    let error = answer.json["error"].as_str().unwrap();
    assert!(
        error.contains("mongo") && error.contains("database, redis"),
        "{error}"
    );
}

#[rocket::async_test]
async fn ready_one_reports_only_that_check() {
    let app = spawn_app([]).await;
    let answer = app.get("/health/ready/redis").await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.json["status"], "ready");
    assert_eq!(answer.check_names(), ["redis"]);
}

#[rocket::async_test]
async fn ready_one_is_503_when_that_check_fails() {
    let app = spawn_app([("databases.postgres.url", pg_url(closed_port().await))]).await;
    let answer = app.get("/health/ready/database").await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("database"), "error");
    assert_eq!(app.get("/health/ready/redis").await.status, Status::Ok);
}

#[rocket::async_test]
async fn ready_one_with_an_unknown_name_is_404_json() {
    let app = spawn_app([]).await;
    let answer = app.get("/health/ready/mongo").await;
    assert_eq!(answer.status, Status::NotFound);
    assert_eq!(answer.content_type, Some(ContentType::JSON));
    assert!(answer.json["error"]
        .as_str()
        .unwrap()
        .contains("database, redis"));
}

#[rocket::async_test]
async fn a_failing_non_critical_check_makes_ready_degraded_and_200() {
    let app = spawn_app([
        ("databases.redis.url", redis_url(closed_port().await)),
        ("health.checks.redis.critical", val(false)),
    ])
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.json["status"], "degraded");
    assert_eq!(answer.check_status("redis"), "error");
    assert_eq!(answer.check("redis")["critical"], false);
}

#[rocket::async_test]
async fn a_draining_service_answers_503_draining_without_checks() {
    let app = spawn_app([]).await;
    app.begin_drain();
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(
        answer.json,
        rocket::serde::json::json!({"status": "draining"})
    );
    assert_eq!(app.get_live().await.status, Status::Ok);
}

#[rocket::async_test]
async fn declared_checks_can_be_excluded_and_asked_for_alone() {
    let upstream = HttpServer::start(500).await;
    let app = spawn_app([
        ("health.checks.payments.kind", val("http")),
        ("health.checks.payments.url", val(upstream.url("/"))),
    ])
    .await;
    assert_eq!(app.get_ready().await.status, Status::ServiceUnavailable);
    let answer = app.get("/health/ready?exclude=payments").await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.check_names(), ["database", "redis"]);
    let one = app.get("/health/ready/payments").await;
    assert_eq!(one.status, Status::ServiceUnavailable);
    assert_eq!(one.check_names(), ["payments"]);
    let unknown = app.get("/health/ready/nope").await;
    let error = unknown.json["error"].as_str().unwrap();
    assert!(error.contains("database, redis, payments"), "{error}");
}
