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
