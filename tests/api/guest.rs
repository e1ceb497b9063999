//! vitals as a guest in a host app: the host's answers, logs, metrics, signals and shutdown
//! settings stay the host's; check runs cannot stall liveness, hold an answer past its
//! deadline or strand a host connection; a second `Vitals` stops launch.

use std::time::{Duration, Instant};

use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes, Build, Responder, Rocket};
use vitals::Vitals;

use crate::helpers::*;

/// An answer the host wants cached for an hour.
#[derive(Responder)]
#[response(content_type = "json")]
struct Cached {
    body: &'static str,
    cache: Header<'static>,
}

#[get("/cached")]
fn cached() -> Cached {
    Cached {
        body: r#"{"price":42}"#,
        cache: Header::new("Cache-Control", "public, max-age=3600"),
    }
}

#[get("/hello")]
fn hello() -> &'static str {
    "hello"
}

#[get("/echo/<word>")]
fn echo(word: &str) -> String {
    word.to_owned()
}

/// A host app with its own routes and `vitals`, configured from `Rocket.toml` and `overrides`.
fn host(vitals: Vitals, overrides: &[(&str, figment::value::Value)]) -> Rocket<Build> {
    capture_logs(); // before `rocket::custom` installs Rocket's logger
    let figment = overrides
        .iter()
        .fold(rocket::Config::figment(), |f, (k, v)| {
            f.merge((*k, v.clone()))
        });
    rocket::custom(figment)
        .mount("/", routes![cached, hello, echo])
        .attach(vitals)
}

async fn client(rocket: Rocket<Build>) -> Client {
    Client::tracked(rocket).await.expect("the host app ignites")
}

#[rocket::async_test]
async fn the_hosts_caching_headers_survive_and_vitals_answers_are_no_store() {
    let app = client(host(Vitals::new(), &[])).await;
    let page = app.get("/cached").dispatch().await;
    assert_eq!(page.status(), Status::Ok);
    assert_eq!(
        page.headers().get_one("Cache-Control"),
        Some("public, max-age=3600")
    );
    let live = app.get("/health/live").dispatch().await;
    assert_eq!(live.headers().get_one("Cache-Control"), Some("no-store"));
}

#[rocket::async_test]
async fn the_hosts_requests_are_not_logged_or_counted_unless_it_asks() {
    let app = client(host(Vitals::new(), &[])).await;
    let path = "/echo/unlogged-by-vitals";
    assert_eq!(app.get(path).dispatch().await.status(), Status::Ok);
    app.get("/health/live").dispatch().await;
    let logged = |path: &str| {
        logs()
            .iter()
            .any(|l| l.contains(r#""target":"vitals::http""#) && l.contains(path))
    };
    assert!(!logged(path), "a host request was logged by vitals");
    assert!(logged("/health/live"), "vitals' own request was not logged");
    let metrics = app.get("/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(!text.contains(r#"route="echo""#), "{text}");
    assert!(text.contains(r#"vitals_http_requests_total{route="live",status="200"}"#));
}

#[rocket::async_test]
async fn a_host_that_asks_gets_its_requests_logged_and_counted() {
    let app = client(host(Vitals::new().host_requests(true), &[])).await;
    assert_eq!(app.get("/hello").dispatch().await.status(), Status::Ok);
    let metrics = app.get("/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains(r#"vitals_http_requests_total{route="hello",status="200"} 1"#),
        "{text}"
    );
}

#[rocket::async_test]
async fn without_the_drain_rockets_signal_handling_stays_the_hosts() {
    let kept = client(host(Vitals::new().drain_on_signal(false), &[])).await;
    let shutdown = &kept.rocket().config().shutdown;
    assert!(shutdown.ctrlc, "ctrlc was turned off");
    #[cfg(unix)]
    assert!(
        !shutdown.signals.is_empty(),
        "Rocket's signals were removed"
    );
    let drained = client(host(Vitals::new(), &[("shutdown.grace", 7.into())])).await;
    let shutdown = &drained.rocket().config().shutdown;
    assert!(!shutdown.ctrlc, "the drain did not take SIGINT");
    assert_eq!(shutdown.grace, 7, "the host's grace was changed");
}

#[rocket::async_test]
async fn attaching_vitals_twice_stops_launch_naming_the_cause() {
    let rocket = host(Vitals::new(), &[]).attach(Vitals::new().base("/other"));
    let ignited = rocket.ignite().await.map_err(|e| e.to_string());
    assert!(ignited.is_err(), "a second Vitals ignited");
    let named = logs()
        .iter()
        .any(|l| l.contains("vitals is attached twice (the second at base /other)"));
    assert!(named, "no error line names the second Vitals");
}

/// The deadline a host app's check `x` gets from `figment` (no `Rocket.toml`), in seconds.
async fn deadline_of_x(figment: figment::Figment) -> String {
    capture_logs();
    let vitals = Vitals::new().check_fn("x", || async { Ok::<(), String>(()) });
    let app = Client::tracked(rocket::custom(figment).attach(vitals))
        .await
        .expect("ignites");
    let text = app.get("/metrics").dispatch().await.into_string().await;
    let text = text.unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.starts_with(r#"vitals_check_deadline_seconds{check="x"}"#));
    line.and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_owned()
}

#[rocket::async_test]
async fn a_host_gets_the_built_in_defaults_of_its_profile() {
    let bare = |profile: &str| {
        figment::Figment::from(rocket::Config::default()).select(profile.to_owned())
    };
    assert_eq!(deadline_of_x(bare("release")).await, "0.8");
    assert_eq!(deadline_of_x(bare("debug")).await, "2");
    assert_eq!(deadline_of_x(bare("other")).await, "1");
    // The host's own [default.health] wins over the built-in profile value.
    let own = figment::Figment::from(rocket::Config::default())
        .merge(figment::providers::Serialized::defaults(
            rocket::serde::json::json!({"health": {"timeout_ms": 300}}),
        ))
        .select("release");
    assert_eq!(deadline_of_x(own).await, "0.3");
}

/// A check that blocks its thread: the most common mistake in host code.
fn blocking_check(vitals: Vitals, ms: u64) -> Vitals {
    vitals.check_fn("blocking", move || async move {
        std::thread::sleep(Duration::from_millis(ms));
        Ok::<(), String>(())
    })
}

#[rocket::async_test]
async fn a_check_that_blocks_its_thread_holds_neither_liveness_nor_readiness() {
    let port = closed_port().await;
    let rocket = host(
        blocking_check(Vitals::new(), 3000),
        &[
            ("health.port", port.into()),
            ("health.timeout_ms", 300.into()),
            ("health.details", "always".into()),
        ],
    );
    let app = client(rocket).await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let up = eventually(Duration::from_secs(5), || async {
        vitals::healthcheck::get(&url("/health/live")).await.is_ok()
    })
    .await;
    assert!(up, "the health port never answered");

    // Readiness on Rocket's port: `timeout` by the deadline, while the check still blocks.
    let asked = Instant::now();
    let ready = app.get("/health/ready").dispatch().await;
    let took = asked.elapsed();
    assert_eq!(ready.status(), Status::ServiceUnavailable);
    let body = ready.into_string().await.unwrap();
    assert!(body.contains(r#""status":"timeout""#), "{body}");
    assert!(took < Duration::from_millis(800), "readiness took {took:?}");

    // Liveness on the health port answers in milliseconds meanwhile.
    for _ in 0..5 {
        let asked = Instant::now();
        let (status, _) = vitals::healthcheck::get(&url("/health/live"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        let took = asked.elapsed();
        assert!(took < Duration::from_millis(100), "liveness took {took:?}");
    }

    // Readiness on the health port joins the same stuck run: `timeout`, no second run.
    let asked = Instant::now();
    let (status, body) = vitals::healthcheck::get(&url("/health/ready"))
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("the check is still running"), "{body}");
    assert!(asked.elapsed() < Duration::from_millis(800));

    // The gauge shows the overdue run.
    let metrics = app.get("/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains(r#"vitals_check_overdue{check="blocking"} 1"#),
        "{text}"
    );
    let runs = r#"vitals_check_runs_total{check="blocking",outcome="ok"} 0"#;
    assert!(text.contains(runs), "{text}");
    app.terminate().await;
}
