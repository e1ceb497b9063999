//! The `redis` kind: `PING` on a pooled connection, acquire and command inside one deadline.
//! It works on vitals' own lazy pool (`pools::Cache`, whose checkouts send nothing, so this
//! PING is the only command a check costs) and on a host app's deadpool-redis pool. A
//! connection left with an unanswered command is taken out of its pool; when every pooled
//! connection is busy, the check pings on a connection of its own.

use deadpool::managed::{self, Manager, Object, PoolError};
use redis::aio::MultiplexedConnection;
use rocket_db_pools::deadpool_redis::{self, redis};
use tokio::time::{timeout_at, Instant};

use super::{Attempt, Failure, Pooled, PooledCheck, Reason};
use crate::pools::RedisManager;

/// The pools the check can borrow from.
#[derive(Clone)]
pub(crate) enum RedisPool {
    /// vitals' own, from `[<profile>.databases.redis]`.
    Managed(managed::Pool<RedisManager>),
    /// A host app's deadpool-redis pool (its checkouts PING on recycle).
    Host(deadpool_redis::Pool),
}

/// A connection checked out of a [`RedisPool`].
enum Checkout {
    Managed(Object<RedisManager>),
    Host(deadpool_redis::Connection),
}

impl Checkout {
    fn conn(&mut self) -> &mut MultiplexedConnection {
        match self {
            Checkout::Managed(o) => o,
            Checkout::Host(c) => c,
        }
    }

    /// Out of the pool: a connection with an unanswered command must not serve the next check.
    fn discard(self) {
        match self {
            Checkout::Managed(o) => drop(Object::take(o)),
            Checkout::Host(c) => drop(deadpool_redis::Connection::take(c)),
        }
    }
}

type RedisPoolError = PoolError<redis::RedisError>;

impl RedisPool {
    async fn get(&self) -> Result<Checkout, RedisPoolError> {
        match self {
            RedisPool::Managed(p) => p.get().await.map(Checkout::Managed),
            RedisPool::Host(p) => p.get().await.map(Checkout::Host),
        }
    }

    /// A new connection made the way the pool makes them, never pooled.
    async fn own(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        match self {
            RedisPool::Managed(p) => p.manager().create().await,
            RedisPool::Host(p) => p.manager().create().await,
        }
    }
}

/// `PING` through a Redis pool.
pub(crate) type RedisCheck = PooledCheck<RedisPool>;

#[rocket::async_trait]
impl Pooled for RedisPool {
    fn is_busy(&self) -> bool {
        let status = match self {
            RedisPool::Managed(p) => p.status(),
            RedisPool::Host(p) => p.status(),
        };
        status.size >= status.max_size && status.available == 0
    }

    async fn on_pooled(&self, deadline: Instant) -> Result<(), Attempt> {
        // redis-rs has no response timeout: only this deadline bounds a paused or silent Redis.
        let mut pooled = match timeout_at(deadline, self.get()).await {
            Err(_) | Ok(Err(PoolError::Timeout(_))) => return Err(Failure::timeout().into()),
            // The driver's own words ("Connection refused (os error 111)"), not deadpool's.
            Ok(Err(PoolError::Backend(e))) => return Err(failure(e).into()),
            Ok(Err(e)) => return Err(Failure::error(e).into()),
            Ok(Ok(conn)) => conn,
        };
        let attempt = match timeout_at(deadline, ping(pooled.conn())).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(Pong::Driver(e))) if e.is_io_error() || e.is_connection_dropped() => {
                Attempt::Stale(failure(e))
            }
            Ok(Err(pong)) => pong.into_failure().into(),
            Err(_) => Failure::timeout().into(),
        };
        pooled.discard();
        Err(attempt)
    }

    async fn on_own_connection(&self, deadline: Instant) -> Result<(), Failure> {
        let checked = async {
            let mut conn = self.own().await.map_err(Pong::Driver)?;
            ping(&mut conn).await
        };
        match timeout_at(deadline, checked).await {
            Ok(result) => result.map_err(Pong::into_failure),
            Err(_) => Err(Failure::timeout()),
        }
    }
}

/// Why a PING did not pass.
enum Pong {
    Driver(redis::RedisError),
    Unexpected(String),
}

impl Pong {
    fn into_failure(self) -> Failure {
        match self {
            Pong::Driver(e) => failure(e),
            Pong::Unexpected(answer) => Failure::new(
                Reason::Protocol,
                format!("redis: unexpected answer to PING: {answer}"),
            ),
        }
    }
}

async fn ping(conn: &mut MultiplexedConnection) -> Result<(), Pong> {
    let pong: String = redis::cmd("PING")
        .query_async(conn)
        .await
        .map_err(Pong::Driver)?;
    match pong == "PONG" {
        true => Ok(()),
        false => Err(Pong::Unexpected(pong)),
    }
}

/// The failure a driver error means, with its reason by error kind or server error code.
fn failure(e: redis::RedisError) -> Failure {
    use redis::ErrorKind as K;
    let reason = if e.is_connection_refusal() {
        Reason::Refused
    } else if e.is_timeout() {
        Reason::Timeout
    } else if e.is_connection_dropped() {
        Reason::ConnectionLost
    } else {
        match (e.kind(), e.code()) {
            (K::AuthenticationFailed, _) | (_, Some("NOAUTH" | "WRONGPASS" | "NOPERM")) => {
                Reason::Auth
            }
            (K::BusyLoadingError | K::MasterDown | K::TryAgain | K::ClusterDown, _) => {
                Reason::Unavailable
            }
            (K::TypeError | K::ParseError, _) => Reason::Protocol,
            _ => Reason::Other,
        }
    };
    // The driver's own words ("Connection refused (os error 111)"), not deadpool's.
    Failure::new(reason, format!("redis: {e}"))
}
