//! Property test of the request surface: arbitrary methods, paths, query strings and headers
//! never get a 5xx (other than a readiness 503), never a non-JSON error, and never hang.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rocket::http::{Header, Method, Status};
use rocket::local::asynchronous::Client;

/// Path segments that reach real routes and their neighbours, plus hostile ones.
const SEGMENTS: &[&str] = &[
    "health",
    "ready",
    "live",
    "startup",
    "status",
    "metrics",
    "static",
    "status.css",
    "database",
    "redis",
    "",
    "..",
    ".",
    "%00",
    "%2F",
    "%2e%2e",
    "%ZZ",
    "ü",
    "%F0%9F%92%A5",
    "<script>",
    "'",
    "\"",
    "a%20b",
    ";",
    "~",
    "%",
    "+",
];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(SEGMENTS).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9._~-]{1,12}",
        1 => "[!-~]{1,8}".prop_map(|s| percent(&s)),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![
            Just("exclude".to_owned()),
            "[a-z]{1,6}",
            "[!-~]{0,6}".prop_map(|s| percent(&s))
        ],
        prop_oneof![
            proptest::sample::select(
                &["database", "redis", "", "DATABASE", "%00", "%FF", "%ZZ"][..]
            )
            .prop_map(str::to_owned),
            "[!-~]{0,10}".prop_map(|s| percent(&s)),
        ],
        any::<bool>(),
    )
        .prop_map(|(k, v, bare)| if bare { k } else { format!("{k}={v}") });
    proptest::collection::vec(pair, 0..5).prop_map(|pairs| pairs.join("&"))
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            proptest::sample::select(
                &[
                    "Accept",
                    "Content-Type",
                    "Cookie",
                    "X-Forwarded-For",
                    "X-Real-IP",
                    "Range",
                    "If-None-Match",
                    "Accept-Encoding",
                    "Origin"
                ][..]
            )
            .prop_map(str::to_owned),
            "X-[A-Za-z]{1,10}",
        ],
        "[ -~]{0,40}",
    )
}

/// Percent-encodes everything outside a safe set, so any byte string makes a valid URI.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Req {
    method: Method,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

fn request() -> impl Strategy<Value = Req> {
    (
        proptest::sample::select(
            &[
                Method::Get,
                Method::Get,
                Method::Get,
                Method::Head,
                Method::Post,
                Method::Put,
                Method::Delete,
                Method::Options,
                Method::Patch,
            ][..],
        ),
        proptest::collection::vec(segment(), 0..5),
        query(),
        proptest::collection::vec(header(), 0..4),
    )
        .prop_map(|(method, segments, query, headers)| Req {
            method,
            path: format!("/{}", segments.join("/")),
            query,
            headers,
        })
}

/// The paths that may answer 503: readiness withdrawn or startup not yet passed.
fn may_be_503(path: &str) -> bool {
    path.starts_with("/health/ready") || path.starts_with("/health/startup")
}

#[test]
fn no_request_gets_a_5xx_a_bare_error_or_a_hang() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let figment = vitals::figment()
            .merge(("health.timeout_ms", 500))
            .merge(("health.cache_ms", 1000));
        Client::tracked(vitals::build(figment)).await.unwrap()
    });
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    let result = runner.run(&request(), |req| {
        let uri = if req.query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{}", req.path, req.query)
        };
        runtime.block_on(async {
            let mut local = client.req(req.method, uri.clone());
            for (name, value) in &req.headers {
                local.add_header(Header::new(name.clone(), value.clone()));
            }
            let response = tokio::time::timeout(Duration::from_secs(3), local.dispatch())
                .await
                .map_err(|_| TestCaseError::fail(format!("{uri}: no answer within 3 s")))?;
            let status = response.status();
            let server_error = status.class().is_server_error();
            prop_assert!(
                !server_error || (status == Status::ServiceUnavailable && may_be_503(&req.path)),
                "{} {uri} answered {status}",
                req.method
            );
            if status.class().is_client_error() && req.method != Method::Head {
                let body = response.into_string().await.unwrap_or_default();
                let json: Result<rocket::serde::json::Value, _> =
                    rocket::serde::json::from_str(&body);
                prop_assert!(
                    json.is_ok_and(|j| j["error"].is_string()),
                    "{} {uri}: {status} without a JSON error: {body}",
                    req.method
                );
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
