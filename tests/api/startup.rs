use rocket::http::Status;

use crate::helpers::*;

#[rocket::async_test]
async fn startup_is_503_starting_until_ready_then_200_for_good() {
    let port = closed_port().await;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    let answer = app.get_startup().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.json["status"], "starting");
    assert_eq!(answer.check_status("redis"), "error");

    let proxy = Proxy::start_on(port, redis_addr(), Protocol::Redis).await;
    let answer = app.get_startup().await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.json["status"], "started");

    drop(proxy);
    assert_eq!(app.get_startup().await.status, Status::Ok);
}

#[rocket::async_test]
async fn a_passing_readiness_probe_completes_startup() {
    let app = spawn_app([]).await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
    let answer = app.get_startup().await;
    assert_eq!(answer.status, Status::Ok);
    // Remembered, not re-checked.
    assert_eq!(
        answer.json,
        rocket::serde::json::json!({"status": "started"})
    );
}

#[rocket::async_test]
async fn a_partial_readiness_probe_does_not_complete_startup() {
    let app = spawn_app([("databases.redis.url", redis_url(closed_port().await))]).await;
    assert_eq!(
        app.get("/health/ready?exclude=redis").await.status,
        Status::Ok
    );
    assert_eq!(app.get_startup().await.status, Status::ServiceUnavailable);
}

#[rocket::async_test]
async fn the_evaluation_that_passes_startup_answers_started_alone() {
    let app = spawn_app([]).await;
    let answer = app.get_startup().await;
    assert_eq!(answer.status, Status::Ok);
    // CONTRACT.md: 200 {"status":"started"}, from the first passing answer on.
    assert_eq!(
        answer.json,
        rocket::serde::json::json!({"status": "started"})
    );
}
