//! The real binary: SIGTERM drain, exit codes, release log lines, `vitals healthcheck`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::helpers::*;

#[tokio::test]
async fn sigterm_withdraws_readiness_at_once_keeps_liveness_then_exits_0() {
    let drain = Duration::from_millis(1500);
    let server = Server::start(&[("ROCKET_HEALTH", "{drain_ms=1500}".into())]).await;
    assert_eq!(server.get("/health/startup").await.unwrap().0, 200);

    let sent = Instant::now();
    server.signal("TERM");
    let drained = eventually(Duration::from_secs(1), || async {
        server.get("/health/ready").await == Some((503, r#"{"status":"draining"}"#.into()))
    })
    .await;
    assert!(
        drained,
        "readiness was not 503 draining within 1 s of SIGTERM"
    );
    assert_eq!(server.get("/health/live").await.unwrap().0, 200);
    assert_eq!(server.get("/health/startup").await.unwrap().0, 200);
    assert!(
        sent.elapsed() < drain,
        "the checks above outlasted the drain window"
    );

    let (status, log) = server.exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    assert!(sent.elapsed() >= drain, "exited after {:?}", sent.elapsed());
    assert_eq!(
        log.matches("draining: readiness is 503 for 1500 ms")
            .count(),
        1,
        "{log}"
    );
}

#[tokio::test]
async fn sigint_drains_like_sigterm() {
    let server = Server::start(&[("ROCKET_HEALTH", "{drain_ms=200}".into())]).await;
    server.signal("INT");
    let (status, _) = server.exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sigterm_while_postgres_hangs_still_exits_0_in_time() {
    let silent = Silent::start().await;
    let server = Server::start(&[
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/postgres", silent.port),
        ),
        ("ROCKET_HEALTH", "{drain_ms=300,timeout_ms=1000}".into()),
    ])
    .await;
    let url = format!("http://127.0.0.1:{}/health/ready", server.port);
    let in_flight = tokio::spawn(async move { vitals::healthcheck::get(&url).await });
    // The probe is waiting on the hung database when the signal lands: its connection has
    // reached the silent listener.
    let waiting = eventually(Duration::from_secs(5), || async { silent.accepted() >= 1 }).await;
    assert!(waiting, "the probe never reached the hung database");
    let sent = Instant::now();
    server.signal("TERM");
    let (status, _) = server.exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    // Drain, then Rocket's grace lets the in-flight probe finish at its deadline.
    assert!(
        sent.elapsed() < Duration::from_secs(6),
        "took {:?}",
        sent.elapsed()
    );
    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight probe was answered");
    assert_eq!(answer.0, 503);
}

#[tokio::test]
async fn release_logs_are_json_lines_without_the_password() {
    let secret = "Pw-binary-3b9d";
    let port = closed_port().await;
    let server = Server::start(&[
        ("ROCKET_PROFILE", "release".into()),
        ("ROCKET_HEALTH", "{drain_ms=0}".into()),
        (
            "DATABASE_URL",
            format!("postgres://postgres:{secret}@127.0.0.1:{port}/postgres"),
        ),
    ])
    .await;
    assert_eq!(server.get("/health/ready").await.unwrap().0, 503);
    server.signal("TERM");
    let (status, log) = server.exit(Duration::from_secs(10)).await;
    assert!(status.success());
    assert!(!log.contains(secret), "{log}");
    for line in log.lines() {
        let json: rocket::serde::json::Value = rocket::serde::json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            json["ts"].is_string() && json["level"].is_string(),
            "{line}"
        );
    }
    let check = log
        .lines()
        .find(|l| l.contains(r#""target":"vitals::check""#))
        .expect("a check line");
    assert!(
        check.contains(r#""check":"database","status":"error""#),
        "{check}"
    );
}

async fn healthcheck(args: &[String], envs: &[(&str, String)]) -> (i32, Duration) {
    let started = Instant::now();
    let status = Command::new(BIN)
        .arg("healthcheck")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    (status.code().unwrap_or(-1), started.elapsed())
}

#[tokio::test]
async fn healthcheck_exits_0_against_a_ready_server() {
    let server = Server::start(&[]).await;
    let (code, _) = healthcheck(&[], &[("ROCKET_PORT", server.port.to_string())]).await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn healthcheck_exits_1_on_a_503() {
    let port = closed_port().await;
    let server = Server::start(&[("REDIS_URL", format!("redis://127.0.0.1:{port}"))]).await;
    let url = format!("http://127.0.0.1:{}/health/ready", server.port);
    assert_eq!(healthcheck(&[url], &[]).await.0, 1);
    let live = format!("http://127.0.0.1:{}/health/live", server.port);
    assert_eq!(healthcheck(&[live], &[]).await.0, 0);
}

#[tokio::test]
async fn healthcheck_exits_1_at_once_on_a_closed_port() {
    let url = format!("http://127.0.0.1:{}/health/ready", closed_port().await);
    let (code, took) = healthcheck(&[url], &[]).await;
    assert_eq!(code, 1);
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn healthcheck_exits_1_within_3_s_when_the_server_never_answers() {
    let silent = Silent::start().await;
    let url = format!("http://127.0.0.1:{}/health/ready", silent.port);
    let (code, took) = healthcheck(&[url], &[]).await;
    assert_eq!(code, 1);
    assert!(took >= Duration::from_secs(3), "gave up early: {took:?}");
    // 3 s, the process's start and exit included, with slack for a loaded machine.
    assert!(took < Duration::from_millis(3400), "took {took:?}");
}

#[tokio::test]
async fn healthcheck_exits_1_on_a_bad_url() {
    assert_eq!(healthcheck(&["https://127.0.0.1/".into()], &[]).await.0, 1);
    assert_eq!(healthcheck(&["a".into(), "b".into()], &[]).await.0, 1);
}
