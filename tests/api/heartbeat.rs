//! Stall detection and runtime lag: liveness on the health port answers for the app's
//! runtime, 503 `stalled` while that runtime runs no task, 200 again once it does.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// A blocking GET of `path` on `port` from a thread of its own: the status and body.
fn blocking_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.get(9..12)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

#[rocket::async_test]
async fn liveness_on_the_health_port_is_503_while_the_apps_runtime_is_wedged() {
    let port = closed_port().await;
    let app = spawn_app([("health.port", val(port)), ("health.stall_ms", val(500))]).await;
    let up = eventually(Duration::from_secs(5), || async {
        vitals::healthcheck::get(&format!("http://127.0.0.1:{port}/health/live"))
            .await
            .is_ok_and(|(s, _)| s == 200)
    })
    .await;
    assert!(up, "the health port never answered");

    // A prober on a thread of its own, while this test's runtime (the app's) is wedged.
    let prober = std::thread::spawn(move || {
        let started = Instant::now();
        let mut stalled = None;
        while started.elapsed() < Duration::from_secs(5) {
            if let Some((503, body)) = blocking_get(port, "/health/live") {
                stalled = Some((started.elapsed(), body));
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = blocking_get(port, "/health/live?verbose");
        (stalled, text)
    });
    // Every worker of the app's runtime blocked: this test's runtime has one (the test body
    // itself runs on the thread that blocks on it, not on a worker).
    let wedge = tokio::spawn(async { std::thread::sleep(Duration::from_millis(1200)) });
    let (stalled, text) = prober.join().unwrap();
    wedge.await.unwrap();
    let (after, body) = stalled.expect("liveness never answered 503 while the runtime was wedged");
    assert!(
        after <= Duration::from_millis(500 + 100 + 150),
        "503 came after {after:?}, more than stall_ms and a period"
    );
    assert!(
        body.starts_with(r#"{"status":"stalled","stalled_ms":"#),
        "{body}"
    );
    let (status, text) = text.expect("the text form answered");
    assert_eq!(status, 503);
    assert!(
        text.contains("[-]runtime failed: stalled\nlivez check failed"),
        "{text}"
    );

    // Freed, the runtime beats again and liveness is 200.
    let back = eventually(Duration::from_secs(2), || async {
        vitals::healthcheck::get(&format!("http://127.0.0.1:{port}/health/live"))
            .await
            .is_ok_and(|(s, _)| s == 200)
    })
    .await;
    assert!(back, "liveness stayed 503 after the runtime ran again");
    let logged = |words: &str| logs().iter().filter(|l| l.contains(words)).count();
    assert!(
        logged("has run no task for") >= 1,
        "the stall was not logged"
    );
    let ended = eventually(Duration::from_secs(1), || async {
        logged("runs tasks again") >= 1
    })
    .await;
    assert!(ended, "the end of the stall was not logged");
    app.client.terminate().await;
}

#[rocket::async_test]
async fn the_apps_port_never_answers_stalled_and_lag_is_measured() {
    let app = spawn_app([]).await;
    let live = app.get_live().await;
    assert_eq!(live.json["status"], "ok");
    let seen = eventually(Duration::from_secs(2), || async {
        let text = app.metrics_text().await;
        text.lines()
            .any(|l| l.starts_with("vitals_runtime_lag_seconds_count ") && !l.ends_with(" 0"))
    })
    .await;
    assert!(seen, "no heartbeat lag was recorded");
    let text = app.metrics_text().await;
    assert!(text.contains("vitals_runtime_stall_threshold_seconds 5"));
}
