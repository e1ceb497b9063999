//! `/status` through the local client: headers, verdicts, structure, escaping, shared runs.

use std::time::Duration;

use rocket::http::{ContentType, Status};

use crate::helpers::*;

async fn page(app: &TestApp) -> String {
    let response = app.client.get("/status").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    response.into_string().await.unwrap()
}

#[rocket::async_test]
async fn status_is_html_with_a_strict_policy_and_no_store() {
    let app = spawn_app([]).await;
    let response = app.client.get("/status").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::HTML));
    let header = |name| response.headers().get_one(name).map(str::to_owned);
    let csp = header("Content-Security-Policy").expect("a CSP header");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header("X-Content-Type-Options").as_deref(), Some("nosniff"));
    assert_eq!(header("Referrer-Policy").as_deref(), Some("no-referrer"));
    assert_eq!(header("Cache-Control").as_deref(), Some("no-store"));
}

#[rocket::async_test]
async fn the_title_carries_the_ready_verdict() {
    let app = spawn_app([]).await;
    assert!(page(&app).await.contains("<title>Ready · vitals</title>"));
}

#[rocket::async_test]
async fn the_title_carries_the_unavailable_verdict() {
    let app = spawn_app([("databases.redis.url", redis_url(closed_port().await))]).await;
    let html = page(&app).await;
    assert!(html.contains("<title>Unavailable · vitals</title>"));
    assert!(
        html.contains("Connection refused"),
        "the error text is shown"
    );
}

#[rocket::async_test]
async fn the_title_carries_the_degraded_verdict() {
    let app = spawn_app([
        ("databases.redis.url", redis_url(closed_port().await)),
        ("health.checks.redis.critical", val(false)),
    ])
    .await;
    let html = page(&app).await;
    assert!(html.contains("<title>Degraded · vitals</title>"));
    assert!(html.contains("non-critical"));
}

#[rocket::async_test]
async fn a_draining_page_shows_the_last_results_without_checking() {
    let proxy = Proxy::start(postgres_addr(), Protocol::Postgres, Duration::ZERO).await;
    let app = spawn_app([("databases.postgres.url", pg_url(proxy.port))]).await;
    app.get_ready().await;
    app.begin_drain();
    let html = page(&app).await;
    assert!(html.contains("<title>Draining · vitals</title>"));
    assert!(html.contains(r#"<th scope="row">database</th>"#));
    assert_eq!(proxy.commands(), 1);
}

#[rocket::async_test]
async fn the_page_is_a_table_with_headers_and_a_row_per_check() {
    let app = spawn_app([]).await;
    let html = page(&app).await;
    assert_eq!(html.matches(r#"<th scope="col">"#).count(), 6);
    assert!(html.contains(r#"<th scope="row">database</th>"#));
    assert!(html.contains(r#"<th scope="row">redis</th>"#));
    assert!(html.contains(r#"<meta http-equiv="refresh""#));
    assert!(!html.contains("<script"), "no script at all");
}

#[rocket::async_test]
async fn the_recent_strip_grows_with_each_run() {
    let app = spawn_app([]).await;
    for _ in 0..3 {
        app.get("/health/ready/database").await;
    }
    let html = page(&app).await;
    assert!(
        html.contains(r#"aria-label="last 4 runs: 0 failed""#),
        "{html}"
    );
    assert!(html.contains("4 runs"));
}

#[rocket::async_test]
async fn text_from_postgres_is_escaped() {
    // Postgres names the missing database in its error, markup and all.
    let db = "%3Cscript%3Ealert(1)%3C%2Fscript%3E%3Cb%20x%3D%22";
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let app = spawn_app([("databases.postgres.url", val(url))]).await;
    let html = page(&app).await;
    assert!(html.contains("does not exist"), "the error is on the page");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("<b x"),
        "{html}"
    );
}

#[rocket::async_test]
async fn the_page_shares_runs_with_concurrent_probes() {
    let proxy = Proxy::start(
        postgres_addr(),
        Protocol::Postgres,
        Duration::from_millis(100),
    )
    .await;
    let app = spawn_app([("databases.postgres.url", pg_url(proxy.port))]).await;
    let pages = futures::future::join_all((0..16).map(|_| page(&app)));
    let probes = futures::future::join_all((0..16).map(|_| app.get_ready()));
    let (pages, probes) = tokio::join!(pages, probes);
    assert!(pages.iter().all(|p| p.contains("Ready · vitals")));
    assert!(probes.iter().all(|a| a.status == Status::Ok));
    assert!(proxy.commands() <= 2, "{} queries", proxy.commands());
}

#[rocket::async_test]
async fn root_redirects_to_the_status_page() {
    let app = spawn_app([]).await;
    let response = app.client.get("/").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(response.headers().get_one("Location"), Some("/status"));
}

#[rocket::async_test]
async fn the_stylesheet_is_served_from_static() {
    let app = spawn_app([]).await;
    let response = app.client.get("/static/status.css").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::CSS));
    let css = response.into_string().await.unwrap();
    assert!(css.contains("prefers-color-scheme: dark"));
}

#[rocket::async_test]
async fn a_declared_check_has_its_own_row() {
    let upstream = HttpServer::start(503).await;
    let app = spawn_app([
        ("health.checks.payments.kind", val("http")),
        ("health.checks.payments.url", val(upstream.url("/pay"))),
        ("health.checks.payments.critical", val(false)),
    ])
    .await;
    let page = app.client.get("/status").dispatch().await;
    let html = page.into_string().await.unwrap();
    assert!(html.contains(">payments<"), "no payments row");
    assert!(
        html.contains("answered 503"),
        "the row shows the upstream's answer"
    );
    assert!(
        html.contains("Degraded"),
        "the verdict follows the non-critical check"
    );
}
