//! The health endpoints' own port (`health.port`): its own thread and runtime, a bound on how
//! long a request head may take, and liveness that holds with thousands of idle and half-sent
//! connections open.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

async fn with_health_port() -> (TestApp, u16) {
    let port = closed_port().await;
    let app = spawn_app([("health.port", val(port))]).await;
    // The listener starts at liftoff, on its own thread.
    let up = eventually(Duration::from_secs(5), || async {
        get(port, "/health/live")
            .await
            .is_some_and(|(s, _)| s == 200)
    })
    .await;
    assert!(up, "the health port never answered");
    (app, port)
}

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    vitals::healthcheck::get(&format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()
}

#[rocket::async_test]
async fn the_health_port_serves_probes_the_page_and_metrics() {
    let (app, port) = with_health_port().await;
    let (status, body) = get(port, "/health/ready").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""database":{"status":"ok""#), "{body}");
    assert_eq!(get(port, "/status").await.unwrap().0, 200);
    let (status, metrics) = get(port, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(metrics.starts_with("# HELP"), "{metrics}");
    assert_eq!(get(port, "/no/such").await.unwrap().0, 404);
    // Both ports share one engine and one lifecycle.
    app.begin_drain();
    assert_eq!(get(port, "/health/ready").await.unwrap().0, 503);
    assert_eq!(app.get_ready().await.status.code, 503);
    app.client.terminate().await;
}

#[rocket::async_test]
async fn a_health_port_in_use_stops_launch_naming_the_key() {
    spawn_app([]).await; // installs the log capture
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let figment = vitals::figment().merge(("health.port", port));
    let result = vitals::build(figment)
        .ignite()
        .await
        .map_err(|e| e.to_string());
    assert!(result.is_err());
    let named = logs()
        .iter()
        .any(|l| l.contains(r#""level":"error""#) && l.contains(&format!("health.port = {port}")));
    assert!(named, "no error line names health.port");
}

#[rocket::async_test]
async fn a_health_port_equal_to_rockets_stops_launch_naming_both() {
    spawn_app([]).await; // installs the log capture
    let port = closed_port().await;
    let figment = vitals::figment()
        .merge(("port", port))
        .merge(("health.port", port));
    // Reading the error keeps Rocket from panicking over an unread one.
    let result = vitals::build(figment)
        .ignite()
        .await
        .map_err(|e| e.to_string());
    assert!(result.is_err());
    let named = logs().iter().any(|l| {
        l.contains(r#""level":"error""#)
            && l.contains(&format!("health.port = {port} is Rocket's own port"))
    });
    assert!(named, "no error line names health.port and port");
}

#[rocket::async_test]
async fn a_connection_that_sends_no_request_is_closed_after_the_head_timeout() {
    let (app, port) = with_health_port().await;
    let mut idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(15), idle.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    let held = opened.elapsed();
    assert!(
        held >= Duration::from_secs(4) && held < Duration::from_secs(10),
        "{held:?}"
    );
    app.client.terminate().await;
}

#[rocket::async_test]
async fn liveness_answers_with_thousands_of_idle_and_half_sent_connections_open() {
    let (app, port) = with_health_port().await;
    // Each connection costs this process two descriptors (both ends); the app raised the soft
    // limit to the hard one at ignite.
    let target = 5000usize;
    let mut held = Vec::with_capacity(target);
    let head = b"GET /health/li";
    let announced = b"GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
    while held.len() < target {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            break;
        };
        match held.len() % 3 {
            0 => {}                                          // idle: nothing at all
            1 => stream.write_all(head).await.unwrap(),      // half a request line
            _ => stream.write_all(announced).await.unwrap(), // a body that never comes
        }
        held.push(stream);
    }
    assert!(
        held.len() >= 1000,
        "only {} connections could open",
        held.len()
    );
    eprintln!("holding {} slow connections to the health port", held.len());
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let asked = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(2), get(port, "/health/live")).await;
        assert!(matches!(answer, Ok(Some((200, _)))), "{answer:?}");
        slowest = slowest.max(asked.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "slowest liveness {slowest:?}"
    );
    drop(held);
    app.client.terminate().await;
}

/// One raw HTTP/1.1 exchange: the status, the headers (lower-case names, sorted, without the
/// ones a server adds around an answer: `date`, and Rocket's `server` and Shield headers) and
/// the body bytes.
async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[u8],
) -> (u16, Vec<String>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n").into_bytes();
    request.extend_from_slice(headers);
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let body = String::from_utf8_lossy(&answer[split + 4..]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    const FRAMING: [&str; 5] = [
        "date",
        "server",
        "x-content-type-options",
        "x-frame-options",
        "permissions-policy",
    ];
    let mut headers: Vec<String> = lines
        .map(|l| l.to_ascii_lowercase())
        .filter(|l| !FRAMING.iter().any(|f| l.starts_with(&format!("{f}:"))))
        .collect();
    headers.sort();
    (status, headers, body)
}

/// Each run of digits as one `#`: for the page and metrics, whose clocks and counters move
/// between two asks.
fn masked(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match (c.is_ascii_digit(), out.ends_with('#')) {
            (true, true) => {}
            (true, false) => out.push('#'),
            (false, _) => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn both_ports_give_the_same_answers_to_every_endpoint_form_and_method() {
    let health_port = closed_port().await;
    let token = "cross-port-token";
    let server = Server::start(&[(
        "ROCKET_HEALTH",
        format!(r#"{{port={health_port},cache_ms=60000,details="authorized",token="{token}"}}"#),
    )])
    .await;
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let basic = {
        use base64::Engine as _;
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("me:{token}"));
        format!("Authorization: Basic {pair}\r\n")
    };
    let text = "Accept: text/plain\r\n".to_owned();
    let health_json = "Accept: application/health+json\r\n".to_owned();
    let wrong = "Authorization: Bearer not-it\r\n".to_owned();
    let none = String::new();
    let mut asked: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    for path in [
        "/health/live",
        "/health/live?verbose",
        "/health/ready",
        "/health/ready?verbose",
        "/health/ready?exclude=redis",
        "/health/ready?exclude=redis&exclude=redis&verbose=1",
        "/health/ready?exclude=nope",
        "/health/ready?exclude=",
        "/health/ready?exclude=da+ta%62ase",
        "/health/ready/database",
        "/health/ready/redis?verbose",
        "/health/ready/nope",
        "/health/ready/%64atabase",
        "/health/ready/",
        "/health/startup",
        "/health",
        "/health//live/",
        "/%68ealth/live",
        "/static/status.css",
        "/no/such",
        "/",
    ] {
        for headers in [&none, &text, &health_json, &bearer, &wrong] {
            asked.push(("GET", path, headers.clone().into_bytes()));
        }
        asked.push(("HEAD", path, none.clone().into_bytes()));
    }
    asked.push((
        "GET",
        "/health/ready",
        b"Accept: text/plain\xff\r\n".to_vec(),
    ));
    for method in [
        "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW", "PROPFIND",
    ] {
        for path in ["/health/live", "/health/ready", "/status"] {
            asked.push((method, path, Vec::new()));
        }
    }
    // The first run fills the cache both ports then read; startup passes once.
    assert_eq!(server.get("/health/ready").await.unwrap().0, 200);
    assert_eq!(server.get("/health/startup").await.unwrap().0, 200);
    for (method, path, headers) in &asked {
        let rocket = exchange(server.port, method, path, headers).await;
        let health = exchange(health_port, method, path, headers).await;
        let shown = String::from_utf8_lossy(headers);
        assert_eq!(rocket, health, "{method} {path} with {shown:?}");
    }
    // What they agree on is what CONTRACT.md says.
    let (status, head, body) = exchange(health_port, "HEAD", "/health/live", b"").await;
    assert_eq!(status, 200);
    assert!(head.contains(&"content-length: 15".to_owned()), "{head:?}");
    assert_eq!(body, "");
    let brew = exchange(health_port, "BREW", "/health/ready", b"").await;
    assert_eq!(
        (brew.0, brew.2.as_str()),
        (400, r#"{"error":"bad request"}"#)
    );
    let post = exchange(health_port, "POST", "/health/ready", b"").await;
    assert_eq!((post.0, post.2.as_str()), (404, r#"{"error":"not found"}"#));
    // The page and metrics carry clocks and counters: the same but for their digits. Every
    // route's counter exists by now, the one of /metrics after these two.
    server.get("/metrics").await.unwrap();
    exchange(health_port, "GET", "/metrics", b"").await;
    let pages = ["/status", "/status/login", "/metrics"];
    let people = [&none, &bearer, &basic, &wrong];
    for (path, headers) in pages
        .iter()
        .flat_map(|p| people.iter().map(move |h| (*p, *h)))
    {
        for method in ["GET", "HEAD"] {
            let (status, head, body) =
                exchange(server.port, method, path, headers.as_bytes()).await;
            let rocket = (status, masked(&head.join("\n")), masked(&body));
            let (status, head, body) =
                exchange(health_port, method, path, headers.as_bytes()).await;
            let health = (status, masked(&head.join("\n")), masked(&body));
            assert_eq!(rocket, health, "{method} {path}");
        }
    }
}
