//! The `redis` kind: `PING` on a pooled connection, acquire and command inside one deadline.
//! It works on vitals' own lazy pool (`pools::Cache`, whose checkouts send nothing, so this
//! PING is the only command a check costs) and on a host app's deadpool-redis pool. A
//! connection left with an unanswered command is taken out of its pool; when every pooled
//! connection is busy, the check pings on a connection of its own.

use deadpool::managed::{self, Manager, Object, PoolError};
use redis::aio::MultiplexedConnection;
use rocket_db_pools::deadpool_redis::{self, redis};
use tokio::time::{timeout_at, Instant};

use super::{with_one_retry, Attempt, Check, Failure, Run};
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
enum Pooled {
    Managed(Object<RedisManager>),
    Host(deadpool_redis::Connection),
}

impl Pooled {
    fn conn(&mut self) -> &mut MultiplexedConnection {
        match self {
            Pooled::Managed(o) => o,
            Pooled::Host(c) => c,
        }
    }

    /// Out of the pool: a connection with an unanswered command must not serve the next check.
    fn discard(self) {
        match self {
            Pooled::Managed(o) => drop(Object::take(o)),
            Pooled::Host(c) => drop(deadpool_redis::Connection::take(c)),
        }
    }
}

type RedisPoolError = PoolError<redis::RedisError>;

impl RedisPool {
    async fn get(&self) -> Result<Pooled, RedisPoolError> {
        match self {
            RedisPool::Managed(p) => p.get().await.map(Pooled::Managed),
            RedisPool::Host(p) => p.get().await.map(Pooled::Host),
        }
    }

    fn is_busy(&self) -> bool {
        let status = match self {
            RedisPool::Managed(p) => p.status(),
            RedisPool::Host(p) => p.status(),
        };
        status.size >= status.max_size && status.available == 0
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
pub(crate) struct RedisCheck {
    pool: RedisPool,
    secrets: Vec<String>,
}

impl RedisCheck {
    /// A check on `pool`; `secrets` are texts (the URL's password) it must hide.
    pub fn new(pool: RedisPool, secrets: Vec<String>) -> RedisCheck {
        RedisCheck { pool, secrets }
    }

    async fn on_pooled(&self, deadline: Instant) -> Result<(), Attempt> {
        // redis-rs has no response timeout: only this deadline bounds a paused or silent Redis.
        let mut pooled = match timeout_at(deadline, self.pool.get()).await {
            Err(_) | Ok(Err(PoolError::Timeout(_))) => return Err(Failure::Timeout.into()),
            // The driver's own words ("Connection refused (os error 111)"), not deadpool's.
            Ok(Err(PoolError::Backend(e))) => {
                return Err(Failure::error(format!("redis: {e}")).into())
            }
            Ok(Err(e)) => return Err(Failure::error(e).into()),
            Ok(Ok(conn)) => conn,
        };
        let failure = match timeout_at(deadline, ping(pooled.conn())).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => {
                Attempt::Stale(format!("redis: {e}"))
            }
            Ok(Err(e)) => Failure::error(format!("redis: {e}")).into(),
            Err(_) => Failure::Timeout.into(),
        };
        pooled.discard();
        Err(failure)
    }

    async fn on_own_connection(&self, deadline: Instant) -> Result<(), Failure> {
        let checked = async {
            let mut conn = self.pool.own().await?;
            ping(&mut conn).await
        };
        match timeout_at(deadline, checked).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::error(format!("redis: {e}"))),
            Err(_) => Err(Failure::Timeout),
        }
    }
}

#[rocket::async_trait]
impl Check for RedisCheck {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        if self.pool.is_busy() {
            run.checked_beside_busy_pool();
            return self.on_own_connection(run.deadline()).await;
        }
        with_one_retry(|| self.on_pooled(run.deadline())).await
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }
}

async fn ping(conn: &mut MultiplexedConnection) -> Result<(), redis::RedisError> {
    let pong: String = redis::cmd("PING").query_async(conn).await?;
    if pong == "PONG" {
        Ok(())
    } else {
        let detail = format!("unexpected answer to PING: {pong}");
        Err((redis::ErrorKind::ResponseError, "protocol", detail).into())
    }
}
