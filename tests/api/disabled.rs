//! A built-in switched off (`enabled = false`): never checked, never shown, never connected.

use rocket::http::Status;

use crate::helpers::*;

#[rocket::async_test]
async fn a_disabled_redis_is_never_connected_nor_shown_anywhere() {
    // Every connection to this "Redis" is counted.
    let redis = Silent::start().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(redis.port)),
        ("health.checks.redis.enabled", val(false)),
    ])
    .await;
    let ready = app.get_ready().await;
    assert_eq!(ready.status, Status::Ok);
    assert_eq!(ready.check_names(), ["database"]);
    assert_eq!(app.get_startup().await.status, Status::Ok);
    assert_eq!(
        app.get("/health/ready/redis").await.status,
        Status::NotFound
    );
    let excluded = app.get("/health/ready?exclude=redis").await;
    assert_eq!(excluded.status, Status::BadRequest);

    let page = app.client.get("/status").dispatch().await;
    let html = page.into_string().await.unwrap();
    assert!(html.contains(">database<"), "the page lists the database");
    assert!(!html.contains("redis"), "the page mentions redis");

    let metrics = app.client.get("/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(text.contains(r#"check="database""#));
    assert!(!text.contains(r#"check="redis""#), "{text}");

    assert_eq!(redis.accepted(), 0, "the disabled pool connected");
}

#[rocket::async_test]
async fn a_disabled_redis_needs_no_valid_url() {
    let app = spawn_app([
        ("databases.redis.url", val("not a url")),
        ("health.checks.redis.enabled", val(false)),
    ])
    .await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
}
