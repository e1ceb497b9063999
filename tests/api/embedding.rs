//! The example host app (`examples/host_app.rs`), in process: its own routes and pool work,
//! vitals under `/ops` reports its pool and its custom check, and a pool busy with the app's
//! own work is not a dead database.

use std::time::Duration;

use rocket::http::Status;
use rocket::local::asynchronous::Client;

use crate::helpers::*;

#[allow(dead_code)] // its `main` is for `cargo run --example host_app`
#[path = "../../examples/host_app.rs"]
mod host_app;

async fn host(max_connections: u32) -> TestApp {
    spawn_app([]).await; // installs the log capture
    let figment = vitals::figment()
        .merge(("orders_url", "postgres://postgres@127.0.0.1:5432/postgres"))
        .merge(("orders_max_connections", max_connections));
    let rocket = host_app::app(figment);
    let client = Client::tracked(rocket).await.expect("the host app ignites");
    TestApp { client }
}

#[rocket::async_test]
async fn the_host_apps_own_routes_and_pool_work() {
    let app = host(2).await;
    let hello = app.get("/hello").await;
    assert_eq!(hello.status, Status::Ok);
    assert_eq!(hello.json, "hello from the host app");
    let now = app.get("/db/now").await;
    assert_eq!(now.status, Status::Ok);
    assert!(
        now.json.as_str().is_some_and(|t| t.starts_with("20")),
        "{:?}",
        now.json
    );
}

#[rocket::async_test]
async fn the_host_app_reports_its_pool_and_custom_check_under_its_base() {
    let app = host(2).await;
    let answer = app.get("/ops/health/ready").await;
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.check_names(), ["orders_db", "backlog"]);
    assert_eq!(app.get("/ops/health/live").await.status, Status::Ok);
    assert_eq!(app.get("/health/ready").await.status, Status::NotFound);
    let page = app.client.get("/ops/status").dispatch().await;
    assert_eq!(page.status(), Status::Ok);
    let html = page.into_string().await.unwrap();
    assert!(html.contains("/ops/static/status.css") && html.contains(">backlog<"));
    let metrics = app.client.get("/ops/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains(r#"vitals_check_up{check="backlog"} 1"#),
        "{text}"
    );
}

#[rocket::async_test]
async fn the_custom_check_fails_readiness_when_the_backlog_is_too_long() {
    let app = host(2).await;
    let added = app.client.post("/jobs?count=150").dispatch().await;
    assert_eq!(added.status(), Status::Ok);
    let answer = app.get("/ops/health/ready").await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    assert_eq!(answer.check_status("backlog"), "error");
    assert_eq!(
        answer.check("backlog")["error"],
        "150 jobs waiting (limit 100)"
    );
    assert_eq!(answer.check_status("orders_db"), "ok");
}

#[rocket::async_test]
async fn a_pool_held_by_the_hosts_own_handlers_is_not_a_dead_database() {
    let app = host(2).await;
    // The app's own handlers take both connections of its pool for three seconds.
    let held = futures::future::join_all((0..2).map(|_| app.get("/db/sleep?ms=3000")));
    let probe = async {
        // Polled until the check reports the busy pool, for as long as the handlers hold it.
        let until = std::time::Instant::now() + Duration::from_millis(2500);
        loop {
            let answer = app.get("/ops/health/ready/orders_db").await;
            let busy = answer.check("orders_db")["busy_pool"] == true;
            if busy || std::time::Instant::now() > until {
                return (busy, answer);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    let (held, (busy, answer)) = tokio::join!(held, probe);
    assert!(busy, "the check never saw a busy pool: {answer:?}");
    assert_eq!(answer.status, Status::Ok);
    assert_eq!(answer.check_status("orders_db"), "ok");
    assert!(held.iter().all(|a| a.status == Status::Ok));
    let metrics = app.client.get("/ops/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        !text.contains(r#"vitals_check_busy_pool_total{check="orders_db"} 0"#),
        "{text}"
    );
}
