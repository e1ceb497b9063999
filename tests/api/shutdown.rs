//! The real binary's shutdown is bounded whatever its dependencies do: SIGTERM with Postgres
//! gone silent under a pooled connection, Redis black-holed and probes still arriving.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// Rocket's `shutdown.grace` and `mercy` defaults (vitals leaves them to the app), in seconds.
const GRACE_AND_MERCY: Duration = Duration::from_secs(2 + 3);

/// A proxy to the shared Postgres that forwards each connection's startup and first query,
/// then swallows whatever the client sends: the server answers one `SELECT 1` and then goes
/// silent, as one behind a broken network path does.
pub struct GoesSilent {
    port: u16,
    task: JoinHandle<()>,
}

impl GoesSilent {
    pub async fn start() -> GoesSilent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward_one_query(client));
            }
        });
        GoesSilent { port, task }
    }

    /// Without TLS, so the proxy can read the messages.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }
}

impl Drop for GoesSilent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward_one_query(mut client: TcpStream) {
    let Ok(mut server) = TcpStream::connect(postgres_addr()).await else {
        return;
    };
    let (mut from_server, mut to_server) = server.split();
    let (mut from_client, mut to_client) = client.split();
    let answers = tokio::io::copy(&mut from_server, &mut to_client);
    let requests = async {
        // The startup message (length-prefixed, no type byte), then typed messages.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut started = false;
        loop {
            let n = from_client.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            loop {
                let (offset, kind) = if started {
                    (1, buf.first().copied())
                } else {
                    (0, None)
                };
                if buf.len() < offset + 4 {
                    break;
                }
                let len = u32::from_be_bytes(buf[offset..offset + 4].try_into().unwrap()) as usize;
                if buf.len() < offset + len {
                    break;
                }
                let message: Vec<u8> = buf.drain(..offset + len).collect();
                if to_server.write_all(&message).await.is_err() {
                    return;
                }
                started = true;
                if kind == Some(b'Q') {
                    // Silent from now on: read and drop everything, never close.
                    while from_client.read(&mut chunk).await.is_ok_and(|n| n > 0) {}
                    return;
                }
            }
        }
    };
    tokio::select! {
        _ = answers => {}
        _ = requests => {}
    }
}

/// A child that keeps one CPU busy until dropped.
fn burn_a_cpu() -> tokio::process::Child {
    tokio::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sh runs")
}

#[tokio::test]
async fn sigterm_exits_0_within_drain_grace_and_mercy_with_postgres_silent_under_a_pooled_connection(
) {
    let drain = Duration::from_millis(1000);
    let postgres = GoesSilent::start().await;
    let redis = Silent::start().await;
    let _busy = [burn_a_cpu(), burn_a_cpu()];
    for round in 1..=5 {
        let server = Server::start(&[
            ("DATABASE_URL", postgres.url()),
            ("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port)),
            ("ROCKET_HEALTH", "{drain_ms=1000}".into()),
        ])
        .await;
        // The first probe's SELECT 1 is answered; the pool's connection then goes silent.
        let first = server.get("/health/ready/database").await.unwrap();
        assert_eq!(first.0, 200, "round {round}: {first:?}");
        let base = format!("http://127.0.0.1:{}", server.port);
        let probes = tokio::spawn(async move {
            loop {
                for path in ["/health/ready", "/health/startup", "/status"] {
                    let url = format!("{base}{path}");
                    tokio::spawn(async move { vitals::healthcheck::get(&url).await });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        // Probes are waiting on the black-holed Redis when the signal lands.
        let before = redis.accepted();
        let waiting = eventually(Duration::from_secs(5), || async {
            redis.accepted() > before
        })
        .await;
        assert!(waiting, "round {round}: no probe reached Redis");
        let sent = Instant::now();
        server.signal("TERM");
        let (status, log) = server.exit(Duration::from_secs(30)).await;
        let took = sent.elapsed();
        probes.abort();
        assert!(status.success(), "round {round}: {status}\n{log}");
        assert!(
            took < drain + GRACE_AND_MERCY,
            "round {round}: exited {took:?} after SIGTERM\n{log}"
        );
    }
}
