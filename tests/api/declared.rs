//! Checks declared in configuration (`kind = "tcp"` and `kind = "http"`) against real local
//! servers, and built-ins switched off.

use std::time::Duration;

use rocket::http::Status;

use crate::helpers::*;

/// Far above any answer these tests expect: a refusal must not wait for it.
const LONG_MS: u64 = 5000;
const SLACK: Duration = Duration::from_millis(500);

fn http_check(name: &str, url: String) -> Vec<(String, figment::value::Value)> {
    vec![
        (format!("health.checks.{name}.kind"), val("http")),
        (format!("health.checks.{name}.url"), val(url)),
    ]
}

fn tcp_check(name: &str, address: String) -> Vec<(String, figment::value::Value)> {
    vec![
        (format!("health.checks.{name}.kind"), val("tcp")),
        (format!("health.checks.{name}.address"), val(address)),
    ]
}

async fn app_with(pairs: Vec<(String, figment::value::Value)>) -> TestApp {
    spawn_app(pairs.iter().map(|(k, v)| (k.as_str(), v.clone()))).await
}

#[rocket::async_test]
async fn a_declared_http_check_passes_on_a_200() {
    let upstream = HttpServer::start(200).await;
    let app = app_with(http_check("payments", upstream.url("/health/ready"))).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.check_names(), ["database", "redis", "payments"]);
    assert_eq!(answer.check_status("payments"), "ok");
    assert_eq!(upstream.requests(), 1);
}

#[rocket::async_test]
async fn a_declared_http_check_fails_on_a_500_naming_the_status() {
    let upstream = HttpServer::start(500).await;
    let app = app_with(http_check("payments", upstream.url("/x"))).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("payments"), "error");
    let error = answer.check("payments")["error"].as_str().unwrap();
    assert!(error.contains("answered 500"), "{error}");
}

#[rocket::async_test]
async fn expect_accepts_exactly_the_listed_statuses() {
    let upstream = HttpServer::start(401).await;
    let mut pairs = http_check("auth", upstream.url("/"));
    pairs.push(("health.checks.auth.expect".into(), val(vec![401])));
    let app = app_with(pairs).await;
    assert_eq!(app.get("/health/ready/auth").await.status, Status::Ok);

    let ok = HttpServer::start(200).await;
    let mut pairs = http_check("auth", ok.url("/"));
    pairs.push(("health.checks.auth.expect".into(), val(vec![401])));
    let app = app_with(pairs).await;
    assert_eq!(
        app.get("/health/ready/auth").await.status,
        Status::ServiceUnavailable
    );
}

#[rocket::async_test]
async fn a_declared_http_check_on_a_silent_server_times_out_at_its_deadline() {
    let silent = Silent::start().await;
    let mut pairs = http_check("payments", format!("http://127.0.0.1:{}/", silent.port));
    pairs.push(("health.checks.payments.timeout_ms".into(), val(300)));
    let app = app_with(pairs).await;
    let answer = app.get("/health/ready/payments").await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("payments"), "timeout");
    assert!(
        answer.elapsed < Duration::from_millis(300) + SLACK,
        "took {:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn a_declared_http_check_on_a_closed_port_is_an_error_at_once() {
    let port = closed_port().await;
    let mut pairs = http_check("payments", format!("http://127.0.0.1:{port}/"));
    pairs.push(("health.timeout_ms".into(), val(LONG_MS)));
    let app = app_with(pairs).await;
    let answer = app.get("/health/ready/payments").await;
    assert_eq!(answer.check_status("payments"), "error");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
    let error = answer.check("payments")["error"].as_str().unwrap();
    assert!(error.contains("refused"), "{error}");
}

#[rocket::async_test]
async fn a_non_critical_declared_check_failing_is_degraded() {
    let upstream = HttpServer::start(503).await;
    let mut pairs = http_check("payments", upstream.url("/"));
    pairs.push(("health.checks.payments.critical".into(), val(false)));
    let app = app_with(pairs).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.json["status"], "degraded");
}

#[rocket::async_test]
async fn a_password_in_a_declared_url_is_sent_but_never_shown() {
    let secret = "Pw-http-6c1d";
    let upstream = HttpServer::start(500).await;
    let url = format!("http://ops:{secret}@127.0.0.1:{}/private", upstream.port);
    let app = app_with(http_check("payments", url)).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("payments"), "error");
    assert!(!answer.json.to_string().contains(secret), "{}", answer.json);
    let page = app.client.get("/status").dispatch().await;
    assert!(!page.into_string().await.unwrap().contains(secret));
    assert!(
        !logs().iter().any(|l| l.contains(secret)),
        "a log line leaks it"
    );
}

#[rocket::async_test]
async fn a_declared_tcp_check_passes_when_the_port_accepts() {
    let app = app_with(tcp_check("queue", redis_addr().to_string())).await;
    assert_eq!(app.get("/health/ready/queue").await.status, Status::Ok);
}

#[rocket::async_test]
async fn a_declared_tcp_check_on_a_closed_port_is_an_error_at_once() {
    let port = closed_port().await;
    let mut pairs = tcp_check("queue", format!("127.0.0.1:{port}"));
    pairs.push(("health.timeout_ms".into(), val(LONG_MS)));
    let app = app_with(pairs).await;
    let answer = app.get("/health/ready/queue").await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("queue"), "error");
    assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
}

#[rocket::async_test]
async fn a_declared_tcp_check_passes_on_a_listener_that_never_speaks() {
    // The check is about the port accepting, not about a protocol behind it.
    let silent = Silent::start().await;
    let app = app_with(tcp_check("queue", format!("127.0.0.1:{}", silent.port))).await;
    assert_eq!(
        app.get("/health/ready/queue").await.check_status("queue"),
        "ok"
    );
}

#[rocket::async_test]
async fn a_declared_tcp_check_on_a_port_that_never_completes_the_handshake_times_out() {
    let full = FullBacklog::start().await;
    let mut pairs = tcp_check("queue", format!("127.0.0.1:{}", full.port));
    pairs.push(("health.checks.queue.timeout_ms".into(), val(300)));
    let app = app_with(pairs).await;
    let answer = app.get("/health/ready/queue").await;
    assert_eq!(answer.check_status("queue"), "timeout");
    assert_eq!(answer.check("queue")["error"], "no answer within 300 ms");
    assert!(
        answer.elapsed < Duration::from_millis(300) + SLACK,
        "took {:?}",
        answer.elapsed
    );
}
