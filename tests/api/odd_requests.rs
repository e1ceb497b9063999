//! Odd paths, methods, queries and headers: a 4xx JSON answer, never a 5xx or a hang.

use rocket::http::{ContentType, Header, Method, Status};

use crate::helpers::*;

async fn assert_json_4xx(app: &TestApp, method: Method, uri: &str) {
    let response = app.client.req(method, uri.to_owned()).dispatch().await;
    let status = response.status();
    assert!(status.class().is_client_error(), "{method} {uri}: {status}");
    assert_eq!(
        response.content_type(),
        Some(ContentType::JSON),
        "{method} {uri}"
    );
    let body = response.into_string().await.unwrap_or_default();
    let json: rocket::serde::json::Value = rocket::serde::json::from_str(&body).unwrap();
    assert!(json["error"].is_string(), "{method} {uri}: {body}");
}

#[rocket::async_test]
async fn unknown_paths_are_404_json() {
    let app = spawn_app([]).await;
    let long = format!("/{}", "a".repeat(10_000));
    for uri in [
        "/nope",
        "/health/ready/database/extra",
        "/health/ready/%2e%2e",
        "/%00",
        long.as_str(),
    ] {
        assert_json_4xx(&app, Method::Get, uri).await;
    }
}

#[rocket::async_test]
async fn other_methods_are_4xx_json() {
    let app = spawn_app([]).await;
    for method in [
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
        Method::Options,
    ] {
        assert_json_4xx(&app, method, "/health/ready").await;
        assert_json_4xx(&app, method, "/health/live").await;
    }
}

#[rocket::async_test]
async fn malformed_exclude_values_are_4xx_json() {
    let app = spawn_app([]).await;
    for uri in [
        "/health/ready?exclude=%ZZ",
        "/health/ready?exclude=%FF",
        "/health/ready?exclude",
        "/health/ready?exclude=",
        "/health/ready?exclude=DATABASE",
        "/health/ready?exclude=database%00",
    ] {
        assert_json_4xx(&app, Method::Get, uri).await;
    }
}

#[rocket::async_test]
async fn unknown_query_parameters_are_ignored() {
    let app = spawn_app([]).await;
    assert_eq!(app.get("/health/live?verbose=1&x").await.status, Status::Ok);
    let answer = app
        .get("/health/ready?exclude=redis&exclude=redis&foo=bar")
        .await;
    assert_eq!(answer.status, Status::Ok);
}

#[rocket::async_test]
async fn odd_headers_do_not_change_the_answer() {
    let app = spawn_app([]).await;
    let response = app
        .client
        .get("/health/ready")
        .header(Header::new("Accept", "text/html;q=0.1, */*;garbage"))
        .header(Header::new("Content-Type", "\u{1}nonsense"))
        .header(Header::new("X-Forwarded-For", "not an ip"))
        .body("ignored body")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
}
