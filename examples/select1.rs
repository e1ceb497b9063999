//! Times raw `SELECT 1` round trips on one Postgres connection: the benchmark's yardstick for
//! what a readiness probe must at least cost.
//!
//! usage: select1 URL [N]; prints its backend's PID, waits for a line on stdin (the benchmark
//! pins that backend to a CPU meanwhile, as it pins the server's), then prints the median
//! round trip in microseconds.

use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: select1 URL [N]");
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let mut conn = PgConnection::connect(&url).await.expect("Postgres answers");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("a backend PID");
    println!("{pid}");
    let mut go = String::new();
    let _ = std::io::stdin().read_line(&mut go);
    let mut micros = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let started = Instant::now();
        conn.execute("SELECT 1").await.expect("SELECT 1");
        if i >= 100 {
            micros.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    micros.sort_by(f64::total_cmp);
    println!("{:.1}", micros[n / 2]);
}
