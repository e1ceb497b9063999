//! Configuration that must stop launch, with a message naming the key.

use crate::helpers::*;

async fn launch_error(key: &str, value: figment::value::Value) -> Vec<String> {
    spawn_app([]).await; // installs the log capture
    let figment = vitals::figment().merge((key, value));
    // Displaying Rocket's error marks it handled (dropping an unhandled one panics).
    let result = vitals::build(figment)
        .ignite()
        .await
        .map_err(|e| e.to_string());
    assert!(result.is_err(), "{key} was accepted");
    logs()
        .into_iter()
        .filter(|l| l.contains(r#""level":"error""#) && l.contains(key))
        .collect()
}

#[rocket::async_test]
async fn a_non_numeric_timeout_stops_launch_naming_the_key() {
    let lines = launch_error("health.timeout_ms", val("fast")).await;
    assert!(!lines.is_empty(), "no line names health.timeout_ms");
}

#[rocket::async_test]
async fn a_zero_check_timeout_stops_launch_naming_the_key() {
    let lines = launch_error("health.checks.redis.timeout_ms", val(0)).await;
    assert!(!lines.is_empty(), "no line names the check's timeout");
}

#[rocket::async_test]
async fn a_bad_postgres_url_stops_launch_naming_the_key() {
    let lines = launch_error("databases.postgres.url", val("mysql://x@h/db")).await;
    assert!(!lines.is_empty(), "no line names databases.postgres.url");
}

#[rocket::async_test]
async fn a_bad_redis_url_stops_launch_naming_the_key() {
    let lines = launch_error("databases.redis.url", val("http://nope")).await;
    assert!(!lines.is_empty(), "no line names databases.redis.url");
}

/// Ignites the app `rocket` builds; the error lines it logged that contain `needle`.
async fn ignite_error(
    rocket: impl FnOnce() -> rocket::Rocket<rocket::Build>,
    needle: &str,
) -> Vec<String> {
    // First: building a Rocket installs Rocket's own logger when none is installed.
    spawn_app([]).await;
    let result = rocket().ignite().await.map_err(|e| e.to_string());
    assert!(result.is_err(), "launch went ahead");
    logs()
        .into_iter()
        .filter(|l| l.contains(r#""level":"error""#) && l.contains(needle))
        .collect()
}

#[rocket::async_test]
async fn an_unknown_check_without_a_kind_stops_launch_naming_the_known_ones() {
    let figment = vitals::figment().merge(("health.checks.mongo.timeout_ms", 10));
    let lines = ignite_error(|| vitals::build(figment), "health.checks.mongo").await;
    assert!(
        lines.iter().any(|l| l.contains("database, redis")),
        "{lines:?}"
    );
}

#[rocket::async_test]
async fn an_unknown_kind_stops_launch_naming_the_key() {
    let lines = launch_error("health.checks.queue.kind", val("amqp")).await;
    assert!(!lines.is_empty());
}

#[rocket::async_test]
async fn a_tcp_declaration_without_an_address_stops_launch_naming_the_key() {
    let figment = vitals::figment().merge(("health.checks.queue.kind", "tcp"));
    let lines = ignite_error(|| vitals::build(figment), "health.checks.queue.address").await;
    assert!(!lines.is_empty());
}

#[rocket::async_test]
async fn a_malformed_address_stops_launch_naming_the_key() {
    let figment = vitals::figment()
        .merge(("health.checks.queue.kind", "tcp"))
        .merge(("health.checks.queue.address", "queue.internal"));
    let lines = ignite_error(|| vitals::build(figment), "health.checks.queue.address").await;
    assert!(!lines.is_empty());
}

#[rocket::async_test]
async fn a_url_of_another_scheme_stops_launch_naming_the_key() {
    let figment = vitals::figment()
        .merge(("health.checks.web.kind", "http"))
        .merge(("health.checks.web.url", "ftp://example.test/"));
    let lines = ignite_error(|| vitals::build(figment), "health.checks.web.url").await;
    assert!(lines.iter().any(|l| l.contains("https://")), "{lines:?}");
}

#[rocket::async_test]
async fn a_key_of_another_kind_stops_launch_naming_it() {
    let figment = vitals::figment()
        .merge(("health.checks.web.kind", "http"))
        .merge(("health.checks.web.url", "http://127.0.0.1:1/"))
        .merge(("health.checks.web.address", "127.0.0.1:1"));
    let lines = ignite_error(|| vitals::build(figment), "health.checks.web.address").await;
    assert!(!lines.is_empty());
}

#[rocket::async_test]
async fn a_declaration_under_a_built_in_name_stops_launch() {
    let figment = vitals::figment()
        .merge(("health.checks.redis.kind", "tcp"))
        .merge(("health.checks.redis.address", "127.0.0.1:6379"));
    let lines = ignite_error(|| vitals::build(figment), "health.checks.redis.kind").await;
    assert!(!lines.is_empty());
}

#[rocket::async_test]
async fn a_bad_check_name_stops_launch_naming_it() {
    let figment = vitals::figment()
        .merge(("health.checks.Queue.kind", "tcp"))
        .merge(("health.checks.Queue.address", "127.0.0.1:1"));
    let lines = ignite_error(|| vitals::build(figment), "health.checks.Queue").await;
    assert!(!lines.is_empty());
}

fn host(vitals: vitals::Vitals) -> rocket::Rocket<rocket::Build> {
    rocket::custom(vitals::figment()).attach(vitals.drain_on_signal(false))
}

#[rocket::async_test]
async fn a_name_registered_twice_stops_launch_naming_it() {
    let twice = vitals::Vitals::new()
        .check_fn("queue", || async { Ok::<(), String>(()) })
        .check_fn("queue", || async { Ok::<(), String>(()) });
    let lines = ignite_error(|| host(twice), "'queue' is registered twice").await;
    assert!(!lines.is_empty());
}

#[rocket::async_test]
async fn an_invalid_name_in_code_stops_launch_naming_it() {
    let bad = vitals::Vitals::new().check_fn("Job Queue", || async { Ok::<(), String>(()) });
    let lines = ignite_error(|| host(bad), "'Job Queue' is invalid").await;
    assert!(!lines.is_empty());
}

#[rocket::async_test]
async fn a_zero_connect_timeout_stops_launch_naming_the_key() {
    let lines = launch_error("databases.redis.connect_timeout", val(0)).await;
    assert!(
        lines.iter().any(|l| l.contains("must be at least 1")),
        "{lines:?}"
    );
}
