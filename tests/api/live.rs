use rocket::http::{ContentType, Status};

use crate::helpers::*;

#[rocket::async_test]
async fn live_is_200_ok_json_with_no_store() {
    let app = spawn_app([]).await;
    let answer = app.get_live().await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.content_type, Some(ContentType::JSON));
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    assert_eq!(answer.json, rocket::serde::json::json!({"status": "ok"}));
}

#[rocket::async_test]
async fn live_is_200_while_both_dependencies_are_down() {
    let app = spawn_app([
        ("databases.postgres.url", pg_url(closed_port().await)),
        ("databases.redis.url", redis_url(closed_port().await)),
    ])
    .await;
    assert_eq!(app.get_live().await.status, Status::Ok);
}

#[rocket::async_test]
async fn live_does_not_wait_for_a_hung_dependency() {
    let silent = Silent::start().await;
    let app = spawn_app([
        ("databases.postgres.url", pg_url(silent.port)),
        ("health.timeout_ms", val(3000)),
    ])
    .await;
    let (live, ready) = tokio::join!(app.get_live(), app.get_ready());
    assert_eq!(live.status, Status::Ok);
    assert!(live.elapsed < ready.elapsed, "{live:?} vs {ready:?}");
}

#[rocket::async_test]
async fn head_live_is_200_without_a_body() {
    let app = spawn_app([]).await;
    let response = app.client.head("/health/live").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().await.unwrap_or_default(), "");
}

#[rocket::async_test]
async fn summary_names_the_service_and_its_version() {
    let app = spawn_app([]).await;
    let answer = app.get("/health").await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.json["status"], "ok");
    assert_eq!(answer.json["service"], "vitals");
    assert_eq!(answer.json["version"], env!("CARGO_PKG_VERSION"));
}
