//! Probes that hold: a Postgres restarted between two probes, a server that is starting up,
//! and what a probe storm costs the database in connections.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rocket::http::Status;
use sqlx::{Connection, Row};

use crate::helpers::*;

const LONG_MS: u64 = 5000;
const SLACK: Duration = Duration::from_millis(500);

/// vitals' connections to `cluster` right now.
async fn vitals_connections(monitor: &mut sqlx::PgConnection) -> i64 {
    sqlx::query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vitals'")
        .fetch_one(monitor)
        .await
        .unwrap()
        .get(0)
}

#[rocket::async_test]
async fn a_fast_restart_between_two_probes_is_not_an_outage() {
    let cluster = PgCluster::start(&[]).await;
    let app = spawn_app([
        ("databases.postgres.url", val(cluster.url())),
        ("health.timeout_ms", val(LONG_MS)),
    ])
    .await;
    assert_eq!(app.get("/health/ready/database").await.status, Status::Ok);
    // Postgres sends each client FATAL 57P01 before closing it, then comes back.
    cluster.pg_ctl(&["restart", "-m", "fast", "-w"]);
    let answer = app.get("/health/ready/database").await;
    assert_eq!(answer.status, Status::Ok, "{answer:?}");
}

#[rocket::async_test]
async fn a_terminated_backend_is_not_an_outage() {
    let cluster = PgCluster::start(&[]).await;
    let app = spawn_app([("databases.postgres.url", val(cluster.url()))]).await;
    assert_eq!(app.get("/health/ready/database").await.status, Status::Ok);
    let mut admin = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    let killed: i64 = sqlx::query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'vitals'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap()
    .get(0);
    assert_eq!(killed, 1, "vitals holds one connection");
    let answer = app.get("/health/ready/database").await;
    assert_eq!(answer.status, Status::Ok, "{answer:?}");
}

#[rocket::async_test]
async fn a_server_that_is_starting_up_is_unavailable_at_once() {
    // A standby with hot standby off stays in recovery, refusing clients with 57P03.
    let cluster = PgCluster::start(&[]).await;
    cluster.pg_ctl(&["stop", "-m", "fast", "-w"]);
    cluster.make_standby();
    let mut start = cluster.start_again("-c hot_standby=off");
    let starting = eventually(Duration::from_secs(10), || async {
        match sqlx::PgConnection::connect(&cluster.url()).await {
            Err(sqlx::Error::Database(e)) => e.code().as_deref() == Some("57P03"),
            _ => false,
        }
    })
    .await;
    assert!(starting, "the standby never refused with 57P03");
    for timeout_ms in [LONG_MS, 2000] {
        let app = spawn_app([
            ("databases.postgres.url", val(cluster.url())),
            ("health.timeout_ms", val(timeout_ms)),
        ])
        .await;
        let answer = app.get("/health/ready/database").await;
        assert_eq!(answer.check_status("database"), "error", "{answer:?}");
        assert_eq!(answer.check("database")["reason"], "unavailable");
        assert!(answer.elapsed < SLACK, "took {:?}", answer.elapsed);
    }
    let _ = start.wait(); // pg_ctl without -w returns at once
}

#[rocket::async_test]
async fn a_probe_storm_holds_one_connection_and_never_more_than_two() {
    let cluster = PgCluster::start(&[]).await;
    let app = spawn_app([
        ("databases.postgres.url", val(cluster.url())),
        ("health.cache_ms", val(0)),
    ])
    .await;
    let mut monitor = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    let (most, done) = (
        Arc::new(AtomicI64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let watcher = {
        let (most, done) = (most.clone(), done.clone());
        let url = cluster.url();
        tokio::spawn(async move {
            let mut monitor = sqlx::PgConnection::connect(&url).await.unwrap();
            while !done.load(Ordering::SeqCst) {
                let now = vitals_connections(&mut monitor).await;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for _ in 0..20 {
        let answers = futures::future::join_all((0..64).map(|_| app.get_ready())).await;
        assert!(answers.iter().all(|a| a.status == Status::Ok));
    }
    done.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    let most = most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} connections at most");
    assert_eq!(vitals_connections(&mut monitor).await, 1, "steady state");
}
