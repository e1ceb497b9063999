//! `/metrics`: Prometheus text from the latest results; scraping never runs a check.

use std::collections::HashMap;
use std::time::Duration;

use rocket::http::{ContentType, Status};

use crate::helpers::*;

/// Every sample of a scrape, keyed by series (`name{labels}`).
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app.client.get("/metrics").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    let text = response.into_string().await.unwrap();
    parse(&text)
}

fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn get(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples.get(series).unwrap_or_else(|| panic!("no {series}"))
}

#[rocket::async_test]
async fn metrics_is_prometheus_text_0_0_4_with_every_family() {
    let app = spawn_app([]).await;
    app.get_ready().await;
    let response = app.client.get("/metrics").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    let content_type = response.content_type().unwrap();
    assert_eq!(content_type, ContentType::Plain);
    assert_eq!(
        content_type.to_string(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.into_string().await.unwrap();
    for family in [
        "vitals_check_up gauge",
        "vitals_check_duration_seconds histogram",
        "vitals_check_runs_total counter",
        "vitals_http_requests_total counter",
        "vitals_ready gauge",
        "vitals_draining gauge",
    ] {
        assert!(text.contains(&format!("# TYPE {family}\n")), "no {family}");
    }
    parse(&text);
}

#[rocket::async_test]
async fn metrics_follow_a_failing_then_recovering_check() {
    let port = closed_port().await;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    app.get_ready().await;
    let m = scrape(&app).await;
    assert_eq!(get(&m, r#"vitals_check_up{check="redis"}"#), 0.0);
    assert_eq!(get(&m, r#"vitals_check_up{check="database"}"#), 1.0);
    assert_eq!(
        get(
            &m,
            r#"vitals_check_runs_total{check="redis",outcome="error"}"#
        ),
        1.0
    );
    assert_eq!(get(&m, "vitals_ready"), 0.0);

    let _proxy = Proxy::start_on(port, redis_addr(), Protocol::Redis).await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
    let m = scrape(&app).await;
    assert_eq!(get(&m, r#"vitals_check_up{check="redis"}"#), 1.0);
    assert_eq!(
        get(&m, r#"vitals_check_runs_total{check="redis",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        get(&m, r#"vitals_check_duration_seconds_count{check="redis"}"#),
        2.0
    );
    assert_eq!(get(&m, "vitals_ready"), 1.0);
}

#[rocket::async_test]
async fn scraping_metrics_never_runs_a_check() {
    let proxy = Proxy::start(postgres_addr(), Protocol::Postgres, Duration::ZERO).await;
    let app = spawn_app([("databases.postgres.url", pg_url(proxy.port))]).await;
    app.get_ready().await;
    let before = proxy.commands();
    for _ in 0..5 {
        let m = scrape(&app).await;
        assert_eq!(
            get(
                &m,
                r#"vitals_check_runs_total{check="database",outcome="ok"}"#
            ),
            1.0
        );
    }
    assert_eq!(proxy.commands(), before);
}

#[rocket::async_test]
async fn requests_are_counted_by_route_name_not_path() {
    let app = spawn_app([]).await;
    app.get("/health/ready/redis").await;
    app.get("/no/such/path").await;
    let m = scrape(&app).await;
    assert_eq!(
        get(
            &m,
            r#"vitals_http_requests_total{route="ready_one",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"vitals_http_requests_total{route="unmatched",status="404"}"#
        ),
        1.0
    );
    assert!(!m.keys().any(|k| k.contains("/no/such/path")));
}

#[rocket::async_test]
async fn draining_shows_in_metrics() {
    let app = spawn_app([]).await;
    app.get_ready().await;
    assert_eq!(get(&scrape(&app).await, "vitals_draining"), 0.0);
    app.begin_drain();
    let m = scrape(&app).await;
    assert_eq!(get(&m, "vitals_draining"), 1.0);
    assert_eq!(get(&m, "vitals_ready"), 0.0);
}

#[rocket::async_test]
async fn a_declared_check_has_its_own_series() {
    let upstream = HttpServer::start(200).await;
    let app = spawn_app([
        ("health.checks.payments.kind", val("http")),
        ("health.checks.payments.url", val(upstream.url("/"))),
    ])
    .await;
    let m = scrape(&app).await;
    assert_eq!(
        get(
            &m,
            r#"vitals_check_runs_total{check="payments",outcome="ok"}"#
        ),
        0.0
    );
    app.get("/health/ready/payments").await;
    let m = scrape(&app).await;
    assert_eq!(get(&m, r#"vitals_check_up{check="payments"}"#), 1.0);
    assert_eq!(
        get(
            &m,
            r#"vitals_check_runs_total{check="payments",outcome="ok"}"#
        ),
        1.0
    );
}
