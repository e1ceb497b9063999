//! One probe per dependency. Each acquires a pooled connection and sends one trivial command,
//! both inside one deadline; a connection that failed or timed out is taken out of its pool
//! rather than handed back half-read.

use std::io;

use deadpool::managed::{Object, PoolError};
use futures::future::BoxFuture;
use rocket_db_pools::deadpool_redis::redis;
use sqlx::postgres::PgConnectOptions;
use sqlx::Executor;
use tokio::time::{timeout_at, Instant};

use crate::pools::{PgLazy, RedisLazy};

/// Why a probe failed, before sanitising.
#[derive(Debug)]
pub enum Failure {
    /// The dependency answered with an error or refused the connection.
    Error(String),
    /// A pooled connection broke mid-command (its server went away since it was last used):
    /// worth one more try on a new connection before calling it an error.
    Stale(String),
    /// No answer before the deadline.
    Timeout,
}

/// Runs `attempt` once more when the first try found a broken pooled connection, so a
/// dependency restart is not reported as an outage.
async fn with_one_retry<F, Fut>(mut attempt: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    match attempt().await {
        Err(Failure::Stale(_)) => attempt().await,
        result => result,
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => Failure::Timeout,
            e => Failure::Error(e.to_string()),
        }
    }
}

/// `SELECT 1` on a pooled Postgres connection, by `deadline`.
pub async fn database(db: PgLazy, deadline: Instant) -> Result<(), Failure> {
    with_one_retry(|| select_one(&db, deadline)).await
}

async fn select_one(db: &PgLazy, deadline: Instant) -> Result<(), Failure> {
    let acquire = async {
        // NOTE: sqlx's pool retries a refused connection until its acquire timeout and then
        // reports a bare "pool timed out". Knocking first makes a refused port an `error` at
        // once; Postgres does not log a connection closed before its startup packet. Only an
        // empty pool knocks: one whose connection is still being returned (sqlx pings it on
        // release, in the background) would otherwise knock on nearly every check.
        if db.pool.size() == 0 {
            knock(&db.options).await?;
        }
        db.pool.acquire().await.map_err(Failure::from)
    };
    let mut conn = timeout_at(deadline, acquire)
        .await
        .map_err(|_| Failure::Timeout)??;
    let result = timeout_at(deadline, select_one_on(&mut conn)).await;
    match result {
        Ok(Ok(_)) => Ok(()),
        // Dropping the detached connection closes its socket; returned to the pool it would be
        // pinged on release with no deadline.
        Ok(Err(e)) => {
            drop(conn.detach());
            Err(match e {
                sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => Failure::Stale(e.to_string()),
                e => e.into(),
            })
        }
        Err(_) => {
            drop(conn.detach());
            Err(Failure::Timeout)
        }
    }
}

/// One `SELECT 1` round trip. A query without arguments goes out as a simple query: no
/// prepare, one statement. (`sqlx::raw_sql` would say the same, but its generic future fails
/// the higher-ranked `Send` check of a spawned task; the trait method returns a boxed one.)
fn select_one_on(conn: &mut sqlx::PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
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

/// `PING` on a pooled Redis connection, by `deadline`. Checkouts are not tested (see
/// `pools::RedisManager`): this PING is the test.
pub async fn redis(redis: RedisLazy, deadline: Instant) -> Result<(), Failure> {
    with_one_retry(|| ping(&redis, deadline)).await
}

async fn ping(redis: &RedisLazy, deadline: Instant) -> Result<(), Failure> {
    // redis-rs has no response timeout: only this deadline bounds a paused or silent Redis.
    let mut conn = match timeout_at(deadline, redis.pool.get()).await {
        Err(_) | Ok(Err(PoolError::Timeout(_))) => return Err(Failure::Timeout),
        // The driver's own words ("Connection refused (os error 111)"), not deadpool's wrapper.
        Ok(Err(PoolError::Backend(e))) => return Err(Failure::Error(format!("redis: {e}"))),
        Ok(Err(e)) => return Err(Failure::Error(e.to_string())),
        Ok(Ok(conn)) => conn,
    };
    let ping = redis::cmd("PING");
    let failure = match timeout_at(deadline, ping.query_async::<_, String>(&mut *conn)).await {
        Ok(Ok(pong)) if pong == "PONG" => return Ok(()),
        Ok(Ok(other)) => Failure::Error(format!("unexpected answer to PING: {other}")),
        Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => {
            Failure::Stale(format!("redis: {e}"))
        }
        Ok(Err(e)) => Failure::Error(format!("redis: {e}")),
        Err(_) => Failure::Timeout,
    };
    // Out of the pool: a connection with an unanswered command must not serve the next check.
    drop(Object::take(conn));
    Err(failure)
}
