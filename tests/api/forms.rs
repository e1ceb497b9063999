//! The three forms of one answer: vitals' JSON, application/health+json and the `?verbose`
//! text, by content negotiation, with the same status code and `Vary: Accept` in each.

use rocket::http::{Header, Status};
use rocket::serde::json::Value as Json;

use crate::helpers::*;

/// An answer's status, `Content-Type`, `Vary` and body.
async fn fetch(app: &TestApp, uri: &str, accept: Option<&str>) -> (Status, String, String, String) {
    let mut request = app.client.get(uri.to_owned());
    if let Some(accept) = accept {
        request.add_header(Header::new("Accept", accept.to_owned()));
    }
    let response = request.dispatch().await;
    let status = response.status();
    let header = |name| response.headers().get_one(name).unwrap_or("").to_owned();
    let (content_type, vary) = (header("Content-Type"), header("Vary"));
    (
        status,
        content_type,
        vary,
        response.into_string().await.unwrap_or_default(),
    )
}

const HEALTH_JSON: &str = "application/health+json";

#[rocket::async_test]
async fn every_probe_answers_in_every_form_with_vary_accept() {
    let app = spawn_app([]).await;
    for uri in [
        "/health/live",
        "/health/ready",
        "/health/ready/redis",
        "/health/startup",
    ] {
        for (accept, verbose, expected) in [
            (None, false, "application/json"),
            (Some(HEALTH_JSON), false, HEALTH_JSON),
            (Some("text/plain"), false, "text/plain; charset=utf-8"),
            (None, true, "text/plain; charset=utf-8"),
        ] {
            let uri = if verbose {
                format!("{uri}?verbose")
            } else {
                uri.to_owned()
            };
            let (status, content_type, vary, _) = fetch(&app, &uri, accept).await;
            assert_eq!(status, Status::Ok, "{uri} {accept:?}");
            assert_eq!(content_type, expected, "{uri} {accept:?}");
            assert_eq!(vary, "Accept", "{uri} {accept:?}");
        }
    }
}

#[rocket::async_test]
async fn an_accept_naming_no_form_gets_json_never_406() {
    let app = spawn_app([]).await;
    for accept in [
        "image/png",
        "text/html",
        "application/xml;q=0.9",
        "*/*;q=0",
        "x;;;q==",
    ] {
        let (status, content_type, _, _) = fetch(&app, "/health/ready", Some(accept)).await;
        assert_eq!(status, Status::Ok, "{accept}");
        assert_eq!(content_type, "application/json", "{accept}");
    }
}

#[rocket::async_test]
async fn health_json_reports_components_with_time_and_reason() {
    let port = closed_port().await;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    let (status, _, _, body) = fetch(&app, "/health/ready", Some(HEALTH_JSON)).await;
    assert_eq!(status, Status::ServiceUnavailable);
    let json: Json = rocket::serde::json::from_str(&body).unwrap();
    assert_eq!(json["status"], "fail");
    assert_eq!(json["serviceId"], "vitals");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let db = &json["checks"]["database:responseTime"][0];
    assert_eq!(db["status"], "pass");
    assert_eq!(db["componentType"], "datastore");
    assert_eq!(db["observedUnit"], "ms");
    assert!(
        db["observedValue"].as_f64().is_some_and(|v| v > 0.0),
        "{db}"
    );
    assert!(
        db["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{db}"
    );
    let redis = &json["checks"]["redis:responseTime"][0];
    assert_eq!(redis["status"], "fail");
    assert_eq!(redis["reason"], "refused");
    // The debug profile shows details to everyone.
    assert!(
        redis["output"]
            .as_str()
            .is_some_and(|o| o.contains("refused")),
        "{redis}"
    );
}

#[rocket::async_test]
async fn a_non_critical_failure_is_warn_in_health_json() {
    let port = closed_port().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(port)),
        ("health.checks.redis.critical", val(false)),
    ])
    .await;
    let (status, _, _, body) = fetch(&app, "/health/ready", Some(HEALTH_JSON)).await;
    assert_eq!(status, Status::Ok);
    let json: Json = rocket::serde::json::from_str(&body).unwrap();
    assert_eq!(json["status"], "warn");
    assert_eq!(json["checks"]["redis:responseTime"][0]["status"], "warn");
}

#[rocket::async_test]
async fn verbose_text_lists_each_check_then_the_verdict() {
    let port = closed_port().await;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    let (status, _, _, body) = fetch(&app, "/health/ready?verbose", None).await;
    assert_eq!(status, Status::ServiceUnavailable);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "[+]database ok");
    assert!(lines[1].starts_with("[-]redis failed: refused: "), "{body}");
    assert_eq!(lines[2], "readyz check failed");
    let (_, _, _, live) = fetch(&app, "/health/live?verbose", None).await;
    assert_eq!(live, "[+]ping ok\nlivez check passed\n");
}

#[rocket::async_test]
async fn excluded_checks_appear_in_text_and_health_json() {
    let app = spawn_app([]).await;
    let (_, _, _, text) = fetch(&app, "/health/ready?exclude=redis&verbose", None).await;
    assert_eq!(
        text,
        "[+]database ok\n[+]redis excluded: ok\nreadyz check passed\n"
    );
    let (_, _, _, body) = fetch(&app, "/health/ready?exclude=redis", Some(HEALTH_JSON)).await;
    let json: Json = rocket::serde::json::from_str(&body).unwrap();
    assert_eq!(
        json["checks"]["redis:responseTime"][0]["notes"][0],
        "excluded"
    );
}

#[rocket::async_test]
async fn draining_appears_in_every_form_with_503() {
    let app = spawn_app([]).await;
    app.begin_drain();
    let (status, _, _, json) = fetch(&app, "/health/ready", None).await;
    assert_eq!(
        (status, json.as_str()),
        (Status::ServiceUnavailable, r#"{"status":"draining"}"#)
    );
    let (status, _, _, text) = fetch(&app, "/health/ready?verbose", None).await;
    assert_eq!(status, Status::ServiceUnavailable);
    assert_eq!(text, "[-]shutdown failed: draining\nreadyz check failed\n");
    let (status, _, _, body) = fetch(&app, "/health/ready", Some(HEALTH_JSON)).await;
    assert_eq!(status, Status::ServiceUnavailable);
    let json: Json = rocket::serde::json::from_str(&body).unwrap();
    assert_eq!(
        (json["status"].as_str(), json["notes"][0].as_str()),
        (Some("fail"), Some("draining"))
    );
}

#[rocket::async_test]
async fn startup_first_asked_during_a_drain_is_503_draining_not_started() {
    // Every dependency healthy: asked outside a drain, startup would pass at once.
    let app = spawn_app([]).await;
    app.begin_drain();
    let (status, _, _, json) = fetch(&app, "/health/startup", None).await;
    assert_eq!(
        (status, json.as_str()),
        (Status::ServiceUnavailable, r#"{"status":"draining"}"#)
    );
}

#[rocket::async_test]
async fn startup_appears_in_every_form() {
    let port = closed_port().await;
    let app = spawn_app([("databases.redis.url", redis_url(port))]).await;
    let (status, _, _, text) = fetch(&app, "/health/startup?verbose", None).await;
    assert_eq!(status, Status::ServiceUnavailable);
    assert!(text.ends_with("startup check failed\n"), "{text}");
    let (status, _, _, body) = fetch(&app, "/health/startup", Some(HEALTH_JSON)).await;
    assert_eq!(status, Status::ServiceUnavailable);
    assert!(body.contains(r#""status":"fail""#), "{body}");

    let app = spawn_app([]).await;
    assert_eq!(app.get_startup().await.status, Status::Ok);
    let (status, _, _, text) = fetch(&app, "/health/startup?verbose", None).await;
    assert_eq!(
        (status, text.as_str()),
        (Status::Ok, "startup check passed\n")
    );
}
