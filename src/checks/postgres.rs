//! The `postgres` kind: `SELECT 1` on a pooled connection of a sqlx `PgPool`, acquire and query
//! inside one deadline. A connection that failed or timed out is taken out of its pool rather
//! than handed back half-read; when every pooled connection is busy with the host's own work,
//! the check tests the server on a connection of its own.

use std::io;

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor, PgPool};
use tokio::time::{timeout_at, Instant};

use super::{with_one_retry, Attempt, Check, Failure, Run};

/// `SELECT 1` through `pool`.
pub(crate) struct PostgresCheck {
    pool: PgPool,
    secrets: Vec<String>,
}

impl PostgresCheck {
    /// A check on `pool`; `secrets` are texts (the URL's password) it must hide.
    pub fn new(pool: PgPool, secrets: Vec<String>) -> PostgresCheck {
        PostgresCheck { pool, secrets }
    }

    /// Every connection is checked out and the pool may open no more: waiting for one would
    /// measure the host's load, not the database.
    fn pool_is_busy(&self) -> bool {
        let max = self.pool.options().get_max_connections();
        self.pool.size() >= max && self.pool.num_idle() == 0
    }

    async fn on_pooled(&self, deadline: Instant) -> Result<(), Attempt> {
        let acquire = async {
            // NOTE: sqlx's pool retries a refused connection until its acquire timeout and
            // then reports a bare "pool timed out". Knocking first makes a refused port an
            // `error` at once; Postgres does not log a connection closed before its startup
            // packet. Only an empty pool knocks: one whose connection is still being returned
            // (sqlx pings it on release, in the background) would otherwise knock on nearly
            // every check.
            if self.pool.size() == 0 {
                knock(&self.pool.connect_options()).await?;
            }
            self.pool.acquire().await.map_err(failure)
        };
        let mut conn = timeout_at(deadline, acquire)
            .await
            .map_err(|_| Failure::Timeout)??;
        match timeout_at(deadline, select_one(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            // Dropping the detached connection closes its socket; returned to the pool it would
            // be pinged on release with no deadline.
            Ok(Err(e)) => {
                drop(conn.detach());
                Err(match e {
                    sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => Attempt::Stale(e.to_string()),
                    e => failure(e).into(),
                })
            }
            Err(_) => {
                drop(conn.detach());
                Err(Failure::Timeout.into())
            }
        }
    }

    async fn on_own_connection(&self, deadline: Instant) -> Result<(), Failure> {
        let options = self.pool.connect_options();
        let checked = async {
            let mut conn = PgConnection::connect_with(&options).await?;
            select_one(&mut conn).await?;
            conn.close().await
        };
        match timeout_at(deadline, checked).await {
            Ok(result) => result.map_err(failure),
            Err(_) => Err(Failure::Timeout),
        }
    }
}

#[rocket::async_trait]
impl Check for PostgresCheck {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        if self.pool_is_busy() {
            run.checked_beside_busy_pool();
            return self.on_own_connection(run.deadline()).await;
        }
        with_one_retry(|| self.on_pooled(run.deadline())).await
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }
}

fn failure(e: sqlx::Error) -> Failure {
    match e {
        sqlx::Error::PoolTimedOut => Failure::Timeout,
        e => Failure::Error(e.to_string()),
    }
}

/// One `SELECT 1` round trip. A query without arguments goes out as a simple query: no
/// prepare, one statement. (`sqlx::raw_sql` would say the same, but its generic future fails
/// the higher-ranked `Send` check of a spawned task; the trait method returns a boxed one.)
fn select_one(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move { conn.execute("SELECT 1").await.map(drop) })
}

/// Opens and closes a plain socket to where Postgres listens: fails at once when refused.
async fn knock(options: &PgConnectOptions) -> Result<(), Failure> {
    let refused = |e: io::Error, at: String| Failure::Error(format!("cannot connect to {at}: {e}"));
    match options.get_socket() {
        #[cfg(unix)]
        Some(dir) => {
            let path = dir.join(format!(".s.PGSQL.{}", options.get_port()));
            tokio::net::UnixStream::connect(&path)
                .await
                .map(drop)
                .map_err(|e| refused(e, path.display().to_string()))
        }
        _ => {
            let (host, port) = (options.get_host(), options.get_port());
            tokio::net::TcpStream::connect((host, port))
                .await
                .map(drop)
                .map_err(|e| refused(e, format!("{host}:{port}")))
        }
    }
}
