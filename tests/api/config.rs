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
