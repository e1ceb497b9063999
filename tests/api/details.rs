//! Who sees details: with `details = "authorized"`, error texts only for a request that
//! presents the token (Bearer, or the password of Basic); everyone sees status and reason,
//! with the same status code and shape.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Value as Json;

use crate::helpers::*;

const TOKEN: &str = "T0ken-d3tails";

async fn guarded_app(redis_port: u16) -> TestApp {
    spawn_app([
        ("databases.redis.url", redis_url(redis_port)),
        ("health.details", val("authorized")),
        ("health.token", val(TOKEN)),
    ])
    .await
}

async fn body(app: &TestApp, uri: &str, headers: &[(&str, String)]) -> (Status, String) {
    let mut request = app.client.get(uri.to_owned());
    for (name, value) in headers {
        request.add_header(Header::new(name.to_string(), value.clone()));
    }
    let response = request.dispatch().await;
    (
        response.status(),
        response.into_string().await.unwrap_or_default(),
    )
}

fn basic(user: &str, password: &str) -> String {
    // The test's own encoder: what a browser or curl -u sends.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char),
                false => out.push('='),
            }
        }
    }
    format!("Basic {out}")
}

#[rocket::async_test]
async fn without_the_token_no_form_shows_the_error_text() {
    let app = guarded_app(closed_port().await).await;
    let (status, json) = body(&app, "/health/ready", &[]).await;
    assert_eq!(status, Status::ServiceUnavailable);
    let json: Json = rocket::serde::json::from_str(&json).unwrap();
    assert_eq!(json["checks"]["redis"]["reason"], "refused");
    assert!(json["checks"]["redis"].get("error").is_none(), "{json}");
    let (status, text) = body(&app, "/health/ready?verbose", &[]).await;
    assert_eq!(status, Status::ServiceUnavailable);
    assert!(text.contains("[-]redis failed: refused\n"), "{text}");
    let accept = [("Accept", "application/health+json".to_owned())];
    let (status, health) = body(&app, "/health/ready", &accept).await;
    assert_eq!(status, Status::ServiceUnavailable);
    assert!(
        health.contains(r#""reason":"refused""#) && !health.contains("output"),
        "{health}"
    );
}

#[rocket::async_test]
async fn a_bearer_token_shows_the_error_text_in_every_form() {
    let app = guarded_app(closed_port().await).await;
    let auth = ("Authorization", format!("Bearer {TOKEN}"));
    let (status, json) = body(&app, "/health/ready", std::slice::from_ref(&auth)).await;
    assert_eq!(status, Status::ServiceUnavailable);
    assert!(
        json.contains(r#""error":"redis: Connection refused"#),
        "{json}"
    );
    let (_, text) = body(&app, "/health/ready?verbose", std::slice::from_ref(&auth)).await;
    assert!(
        text.contains("[-]redis failed: refused: redis: Connection refused"),
        "{text}"
    );
    let accept = ("Accept", "application/health+json".to_owned());
    let (_, health) = body(&app, "/health/ready", &[auth, accept]).await;
    assert!(
        health.contains(r#""output":"redis: Connection refused"#),
        "{health}"
    );
}

#[rocket::async_test]
async fn the_token_as_a_basic_password_shows_details_whatever_the_user() {
    let app = guarded_app(closed_port().await).await;
    let auth = ("Authorization", basic("anyone", TOKEN));
    let (_, json) = body(&app, "/health/ready/redis", &[auth]).await;
    assert!(json.contains(r#""error":"#), "{json}");
}

#[rocket::async_test]
async fn a_wrong_token_changes_nothing_but_is_logged_without_its_value() {
    let app = guarded_app(closed_port().await).await;
    let (anonymous_status, anonymous) = body(&app, "/health/ready?verbose", &[]).await;
    let wrong = "Wr0ng-guess-5511";
    let auth = ("Authorization", format!("Bearer {wrong}"));
    let (status, text) = body(&app, "/health/ready?verbose", &[auth]).await;
    assert_eq!(status, anonymous_status);
    assert_eq!(text, anonymous);
    let warned = logs()
        .into_iter()
        .any(|l| l.contains(r#""level":"warn""#) && l.contains("wrong token"));
    assert!(warned, "no warning for a wrong token");
    assert!(
        !logs().iter().any(|l| l.contains(wrong)),
        "a log line holds the value"
    );
}

#[rocket::async_test]
async fn never_shows_details_even_with_the_token() {
    let app = spawn_app([
        ("databases.redis.url", redis_url(closed_port().await)),
        ("health.details", val("never")),
        ("health.token", val(TOKEN)),
    ])
    .await;
    let auth = ("Authorization", format!("Bearer {TOKEN}"));
    let (_, json) = body(&app, "/health/ready", &[auth]).await;
    assert!(!json.contains(r#""error":"#), "{json}");
}

#[rocket::async_test]
async fn the_page_withholds_details_and_links_to_sign_in() {
    let app = guarded_app(closed_port().await).await;
    let (status, html) = body(&app, "/status", &[]).await;
    assert_eq!(status, Status::Ok);
    assert!(html.contains("refused"), "the reason is shown");
    assert!(
        !html.contains("Connection refused"),
        "the error text is shown"
    );
    assert!(html.contains("withheld") && html.contains(r#"href="/status/login""#));
}

#[rocket::async_test]
async fn the_login_path_challenges_until_it_gets_the_token() {
    let app = guarded_app(closed_port().await).await;
    let response = app.client.get("/status/login").dispatch().await;
    assert_eq!(response.status(), Status::Unauthorized);
    let challenge = response.headers().get_one("WWW-Authenticate").unwrap_or("");
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let wrong = [("Authorization", basic("me", "nope"))];
    assert_eq!(
        body(&app, "/status/login", &wrong).await.0,
        Status::Unauthorized
    );
    let right = [("Authorization", basic("me", TOKEN))];
    let (status, html) = body(&app, "/status/login", &right).await;
    assert_eq!(status, Status::Ok);
    assert!(
        html.contains("Connection refused"),
        "no details after signing in"
    );
}

/// Words of the configuration that no unauthorised answer may carry.
#[derive(Debug, Clone)]
struct Names {
    user: String,
    database: String,
    host: String,
}

fn names() -> impl Strategy<Value = Names> {
    ("[a-z]{4,8}", "[a-z]{4,8}", "[a-z]{4,8}").prop_map(|(u, d, h)| Names {
        user: format!("u{u}"),
        database: format!("d{d}"),
        host: format!("h{h}"),
    })
}

#[test]
fn no_unauthorised_answer_names_a_host_port_user_or_database() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (upstream, closed) = runtime.block_on(async {
        crate::helpers::spawn_app([]).await; // installs the log capture
        (HttpServer::start(500).await, closed_port().await)
    });
    let mut runner = TestRunner::new(Config {
        cases: 12,
        ..Config::default()
    });
    let result = runner.run(&names(), |n| {
        runtime.block_on(async {
            let figment = vitals::figment()
                .merge(("health.details", "authorized"))
                .merge(("health.token", TOKEN))
                // The role does not exist: Postgres names it back.
                .merge((
                    "databases.postgres.url",
                    format!("postgres://{}@127.0.0.1:5432/{}", n.user, n.database),
                ))
                .merge((
                    "databases.redis.url",
                    format!("redis://127.0.0.1:{closed}/0"),
                ))
                .merge(("health.checks.queue.kind", "tcp"))
                .merge((
                    "health.checks.queue.address",
                    format!("{}..invalid:5672", n.host),
                ))
                .merge(("health.checks.api.kind", "http"))
                .merge((
                    "health.checks.api.url",
                    upstream.url(&format!("/{}", n.database)),
                ));
            let client = Client::tracked(vitals::build(figment)).await.unwrap();
            let secrets = [
                n.user.clone(),
                n.database.clone(),
                n.host.clone(),
                closed.to_string(),
                upstream.port.to_string(),
                "5672".to_owned(),
                "5432".to_owned(),
            ];
            let mut shown = Vec::new();
            for uri in [
                "/health/ready",
                "/health/ready/database",
                "/health/startup",
                "/status",
                "/status/login",
            ] {
                for accept in ["application/json", "application/health+json", "text/plain"] {
                    let response = client
                        .get(uri)
                        .header(Header::new("Accept", accept))
                        .dispatch()
                        .await;
                    shown.push(response.into_string().await.unwrap_or_default());
                }
            }
            // The texts exist: with the token they do name what they must hide without it.
            let authorised = client
                .get("/health/ready?verbose")
                .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
                .dispatch()
                .await
                .into_string()
                .await
                .unwrap_or_default();
            prop_assert!(authorised.contains(&n.user), "{}", authorised);
            for text in &shown {
                for secret in &secrets {
                    prop_assert!(!text.contains(secret.as_str()), "{} in {}", secret, text);
                }
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[rocket::async_test]
async fn each_form_shows_details_exactly_to_the_token() {
    let app = guarded_app(closed_port().await).await;
    let callers = [
        ("nobody", None, false),
        ("bearer", Some(format!("Bearer {TOKEN}")), true),
        ("wrong bearer", Some("Bearer not-it".to_owned()), false),
        ("basic", Some(basic("whoever", TOKEN)), true),
        ("wrong basic", Some(basic("whoever", "not-it")), false),
    ];
    let forms = [
        ("application/json", "/health/ready", r#""error":"#),
        ("application/health+json", "/health/ready", r#""output":"#),
        ("text/plain", "/health/ready?verbose", "refused: redis"),
    ];
    for (caller, authorization, sees) in &callers {
        for (accept, uri, detail) in forms {
            let mut headers = vec![("Accept", accept.to_owned())];
            if let Some(value) = authorization {
                headers.push(("Authorization", value.clone()));
            }
            let (status, text) = body(&app, uri, &headers).await;
            assert_eq!(status, Status::ServiceUnavailable, "{caller} {accept}");
            assert!(
                text.contains("refused"),
                "{caller} {accept}: no reason in {text}"
            );
            assert_eq!(text.contains(detail), *sees, "{caller} {accept}: {text}");
        }
    }
}
