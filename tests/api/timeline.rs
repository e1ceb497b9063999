//! Health as a timeline: checks on a timer (probes answer from the latest result, which goes
//! stale), thresholds against flapping, and the changes told to the log and the metrics.

use std::time::Duration;

use rocket::http::Status;

use crate::helpers::*;

#[rocket::async_test]
async fn on_a_timer_probes_answer_at_once_while_redis_hangs_and_each_missed_deadline_counts() {
    let redis = RedisServer::start().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(redis.port)),
        ("health.checks.database.enabled", val(false)),
        ("health.interval_ms", val(200)),
        // The least the limit allows: 1.1 x 200 + the 300 ms deadline.
        ("health.max_age_ms", val(520)),
        ("health.timeout_ms", val(300)),
        ("health.details", val("always")),
    ])
    .await;
    let first = app.get_ready().await;
    assert_eq!(first.status, Status::Ok, "{:?}", first.json);
    // Redis stops answering: every run now hangs until its 300 ms deadline.
    redis.pause(10_000).await;
    let mut answers = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let mut timed_out = false;
    while !timed_out && std::time::Instant::now() < until {
        let answer = app.get_ready().await;
        let reason = answer.check("redis")["reason"].clone();
        // A healthy timer keeps results fresh: a hang is a timeout, never `stale`.
        assert_ne!(reason, "stale", "{:?}", answer.json);
        timed_out = reason == "timeout";
        answers.push((answer.status, answer.elapsed));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(timed_out, "readiness never said timeout: {answers:?}");
    // Until then, every answer came from the latest result, at once.
    assert!(answers.iter().any(|(s, _)| *s == Status::Ok), "{answers:?}");
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap();
    assert!(
        slowest < Duration::from_millis(50),
        "a probe waited {slowest:?}"
    );
    assert_eq!(answers.last().unwrap().0, Status::ServiceUnavailable);
}

#[rocket::async_test]
async fn with_fail_after_three_two_refusals_keep_readiness_200_and_a_third_turns_it() {
    // A private Redis that is stopped and started between probes: a real refusal.
    let port = closed_port().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(port)),
        ("health.checks.database.enabled", val(false)),
        ("health.checks.redis.fail_after", val(3)),
        ("health.details", val("always")),
    ])
    .await;
    let redis = RedisServer::start_on(port).await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
    redis.stop().await;
    for runs_left in [2, 1] {
        let answer = app.get_ready().await;
        assert_eq!(answer.status, Status::Ok, "{:?}", answer.json);
        assert_eq!(answer.check_status("redis"), "error");
        assert_eq!(answer.check("redis")["reason"], "refused");
        assert_eq!(answer.check("redis")["held"]["status"], "passing");
        assert_eq!(answer.check("redis")["held"]["runs_left"], runs_left);
    }
    let third = app.get_ready().await;
    assert_eq!(third.status, Status::ServiceUnavailable);
    assert!(third.check("redis").get("held").is_none());
    let text = app.metrics_text().await;
    assert!(
        text.contains(r#"vitals_check_transitions_total{check="redis"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vitals_check_up{check="redis"} 0"#),
        "{text}"
    );
    assert!(logs()
        .iter()
        .any(|l| l.contains("check redis is failing, after passing for")));
}

#[rocket::async_test]
async fn a_recovery_within_fail_after_never_leaves_readiness() {
    let port = closed_port().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(port)),
        ("health.checks.database.enabled", val(false)),
        ("health.fail_after", val(3)),
    ])
    .await;
    let redis = RedisServer::start_on(port).await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
    redis.stop().await;
    assert_eq!(app.get_ready().await.status, Status::Ok);
    assert_eq!(app.get_ready().await.status, Status::Ok);
    let _back = RedisServer::start_on(port).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok);
    assert!(
        answer.check("redis").get("held").is_none(),
        "{:?}",
        answer.json
    );
    let text = app.metrics_text().await;
    assert!(text.contains(r#"vitals_check_transitions_total{check="redis"} 0"#));
}

/// One field of a private Redis's `INFO`, read on a connection of its own (counted itself).
async fn redis_info(port: u16, field: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(b"INFO\r\n").await.unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 8192];
    while !text.contains("# Keyspace") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "redis closed: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

#[rocket::async_test]
async fn a_rocket_that_shut_down_leaves_no_timer_running_and_no_connection_open() {
    let redis = RedisServer::start().await;
    let app = spawn_app([
        ("databases.redis.url", redis_url(redis.port)),
        ("health.checks.database.enabled", val(false)),
        ("health.interval_ms", val(100)),
    ])
    .await;
    let timers_run = eventually(Duration::from_secs(5), || async {
        redis_info(redis.port, "total_commands_processed").await >= 5
    })
    .await;
    assert!(timers_run, "the timer never checked Redis");
    // The timer's pool holds a connection; this INFO holds the other.
    assert_eq!(redis_info(redis.port, "connected_clients").await, 2);
    let rocket = app.client.terminate().await;
    drop(rocket);
    let closed = eventually(Duration::from_secs(5), || async {
        redis_info(redis.port, "connected_clients").await == 1
    })
    .await;
    assert!(closed, "the check's connection outlived its Rocket");
    // No timer checks any more: across ten intervals, only these INFOs reach Redis.
    let before = redis_info(redis.port, "total_commands_processed").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = redis_info(redis.port, "total_commands_processed").await;
    assert_eq!(after - before, 1, "a timer still runs after shutdown");
}
