//! The `postgres` kind: `SELECT 1` on a pooled connection of a sqlx `PgPool`, acquire and query
//! inside one deadline. A connection that failed or timed out is taken out of its pool rather
//! than handed back half-read. When every pooled connection is busy with the host's own work,
//! the check tests the server on a connection of its own. Errors map to reasons by their
//! SQLSTATE code or I/O kind.

use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor, PgPool, Postgres};
use tokio::time::{timeout_at, Instant};

use super::pooled::pool_timed_out;
use super::{Attempt, Failure, Pooled, PooledCheck, Reason};

/// `SELECT 1` through a sqlx pool.
pub(crate) type PostgresCheck = PooledCheck<PgPool>;

#[rocket::async_trait]
impl Pooled for PgPool {
    /// Every connection is checked out and the pool may open no more: waiting for one would
    /// measure the host's load, not the database.
    fn is_busy(&self) -> bool {
        self.size() >= self.options().get_max_connections() && self.num_idle() == 0
    }

    async fn on_pooled(&self, deadline: Instant, table: Option<&str>) -> Result<(), Attempt> {
        let acquire = async {
            // NOTE: sqlx's pool retries a failed connect (refused, too many clients, starting
            // up) until its own acquire timeout and then says only "pool timed out", so the
            // check's deadline would always fire first. An empty pool is about to connect:
            // one connection of our own first reports any refusal at once, with the server's
            // words. A pool that has a connection (even one being returned) skips this.
            let options = self.connect_options();
            if self.size() == 0 {
                connect_once(&options).await?;
            }
            // A pool with connections but none idle (the host's work holds them) opens one
            // of its own, with the same retries: the address tells a refusal at once.
            let acquiring = self.acquire();
            tokio::select! {
                biased;
                got = acquiring => got.map_err(|e| match e {
                    sqlx::Error::PoolTimedOut => {
                        pool_timed_out(Some(self.options().get_acquire_timeout()), table)
                    }
                    e => failure(e),
                }),
                found = refusal_behind(&options) => Err(found),
            }
        };
        let mut conn = timeout_at(deadline, acquire)
            .await
            .map_err(|_| Failure::timeout())??;
        match timeout_at(deadline, select_one(&mut conn)).await {
            Ok(Ok(())) => {
                release(conn, deadline);
                Ok(())
            }
            // Dropping the detached connection closes its socket; returned to the pool it would
            // be pinged on release with no deadline.
            Ok(Err(e)) => {
                drop(conn.detach());
                let dead = is_dead_connection(&e);
                let failure = failure(e);
                Err(match dead {
                    true => Attempt::Stale(failure),
                    false => failure.into(),
                })
            }
            Err(_) => {
                drop(conn.detach());
                Err(Failure::timeout().into())
            }
        }
    }

    async fn on_own_connection(&self, deadline: Instant) -> Result<(), Failure> {
        let options = self.connect_options();
        let checked = async {
            let mut conn = connect(&options).await?;
            select_one(&mut conn).await.map_err(failure)?;
            conn.close().await.map_err(failure)
        };
        timeout_at(deadline, checked)
            .await
            .unwrap_or_else(|_| Err(Failure::timeout()))
    }
}

// NOTE: a `PoolConnection` dropped goes back to its pool through a task of sqlx's that pings
// it first, with no deadline. A server that goes silent after answering `SELECT 1` keeps that
// ping, and with it the connection's place in the pool, forever: every later check waits for
// a connection in vain, and `Pool::close` at shutdown never returns. `return_to_pool` is that
// same drop path, public in sqlx 0.8 but hidden from its docs: recheck it when sqlx moves.
/// Hands `conn` back to its pool on a task of its own, so the check answers now, bounded by
/// `deadline`: past it, the connection is closed and the pool may open another.
fn release(mut conn: PoolConnection<Postgres>, deadline: Instant) {
    let returning = conn.return_to_pool();
    drop(conn);
    tokio::spawn(async move {
        if timeout_at(deadline, returning).await.is_err() {
            log::debug!(target: "vitals::check", "postgres: a pooled connection was not returned by the deadline; closed");
        }
    });
}

/// One connection outside the pool; a host name that does not resolve is reason `dns`.
async fn connect(options: &PgConnectOptions) -> Result<PgConnection, Failure> {
    if options.get_socket().is_none() {
        let (host, port) = (options.get_host(), options.get_port());
        let resolved = tokio::net::lookup_host((host, port)).await;
        drop(
            resolved
                .map_err(|e| Failure::new(Reason::Dns, format!("cannot resolve {host}: {e}")))?,
        );
    }
    PgConnection::connect_with(options).await.map_err(|e| {
        let failure = failure(e);
        match failure.reason() {
            // sqlx names neither host nor port in a refusal.
            Reason::Refused => Failure::new(
                Reason::Refused,
                format!(
                    "cannot connect to {}:{}: {failure}",
                    options.get_host(),
                    options.get_port()
                ),
            ),
            _ => failure,
        }
    })
}

/// How long an acquire may take before the pool's address is asked whether it refuses: far
/// more than a healthy pool takes to hand out or open a connection.
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// The refusal (or unresolvable name) at the pool's address, asked once an acquire has taken
/// [`PATIENCE`]; pending for ever when the address accepts, the acquire's business then. A
/// TCP connection that sends nothing leaves no line in the server's log.
async fn refusal_behind(options: &PgConnectOptions) -> Failure {
    tokio::time::sleep(PATIENCE).await;
    if options.get_socket().is_none() {
        if let Err(found) = super::net::connect(options.get_host(), options.get_port()).await {
            if matches!(found.reason(), Reason::Refused | Reason::Dns) {
                return Failure::new(found.reason(), format!("postgres: {found}"));
            }
        }
    }
    std::future::pending().await
}

/// Connects once and closes: the server's answer to a new client, in milliseconds.
async fn connect_once(options: &PgConnectOptions) -> Result<(), Failure> {
    let conn = connect(options).await?;
    // Closing politely costs a round trip the check does not need; dropping closes the socket.
    drop(conn);
    Ok(())
}

/// Whether `e`, on an established pooled connection, means that connection is dead (its
/// server restarted, shut down or dropped it) rather than that the server refuses service.
fn is_dead_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 57P01 admin shutdown (a fast shutdown or pg_terminate_backend), 57P02 crash
            // shutdown, 57P03 cannot connect now; class 08, connection exceptions.
            matches!(&*code, "57P01" | "57P02" | "57P03") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// The failure an sqlx error means, with its reason by error kind or SQLSTATE.
fn failure(e: sqlx::Error) -> Failure {
    if let Some(tls) = crate::tls::rustls_error(&e) {
        let why = crate::tls::describe(tls);
        return Failure::new(Reason::Tls, format!("postgres: TLS: {why}"));
    }
    match reason_of(&e) {
        Reason::Timeout => Failure::timeout(),
        reason => Failure::new(reason, e),
    }
}

/// The reason an sqlx error means, by error kind or SQLSTATE.
pub(super) fn reason_of(e: &sqlx::Error) -> Reason {
    if crate::tls::rustls_error(e).is_some() {
        return Reason::Tls;
    }
    match e {
        sqlx::Error::PoolTimedOut => Reason::Timeout,
        // The handshake failed, or `sslmode=require` met a server without TLS.
        sqlx::Error::Tls(_) => Reason::Tls,
        sqlx::Error::Io(io) => Reason::of_io(io),
        sqlx::Error::Protocol(_) => Reason::Protocol,
        sqlx::Error::PoolClosed => Reason::Unavailable,
        sqlx::Error::Database(db) => db.code().map_or(Reason::Other, |c| reason_of_sqlstate(&c)),
        _ => Reason::Other,
    }
}

/// The reason a SQLSTATE code means.
fn reason_of_sqlstate(code: &str) -> Reason {
    match code {
        // Credentials or role (class 28), a database that does not exist, no privilege.
        "3D000" | "42501" => Reason::Auth,
        c if c.starts_with("28") => Reason::Auth,
        // Insufficient resources (class 53: too many connections, out of memory, disk full)
        // and operator intervention (57P01 shutting down, 57P03 starting up, ...).
        c if c.starts_with("53") || c.starts_with("57P") => Reason::Unavailable,
        c if c.starts_with("08") => Reason::ConnectionLost,
        _ => Reason::Other,
    }
}

/// One `SELECT 1` round trip. A query without arguments goes out as a simple query: no
/// prepare, one statement. (`sqlx::raw_sql` would say the same, but its generic future fails
/// the higher-ranked `Send` check of a spawned task; the trait method returns a boxed one.)
fn select_one(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move { conn.execute("SELECT 1").await.map(drop) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_reasons() {
        for (code, reason) in [
            ("28P01", Reason::Auth),
            ("28000", Reason::Auth),
            ("3D000", Reason::Auth),
            ("53300", Reason::Unavailable),
            ("57P01", Reason::Unavailable),
            ("57P03", Reason::Unavailable),
            ("08006", Reason::ConnectionLost),
            ("42P01", Reason::Other),
        ] {
            assert_eq!(reason_of_sqlstate(code), reason, "{code}");
        }
    }
}
