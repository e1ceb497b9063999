//! The pooled kinds' machinery (`postgres`, `redis`): one retry when a pooled connection
//! turns out dead, and, on a pool shared with a host app's work, a connection of the check's
//! own while the whole pool is busy.

use std::future::Future;

use tokio::time::Instant;

use super::{Check, Failure, Run};

/// Runs `attempt` once more when the first try found a dead pooled connection, so a dependency
/// restart is not reported as an outage.
async fn with_one_retry<F, Fut>(mut attempt: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Attempt>>,
{
    match attempt().await {
        Ok(()) => Ok(()),
        Err(Attempt::Stale(_)) => attempt().await.map_err(Attempt::into_failure),
        Err(other) => Err(other.into_failure()),
    }
}

/// What the pooled kinds (`postgres`, `redis`) do; [`PooledCheck`] turns one into a check.
#[rocket::async_trait]
pub(crate) trait Pooled: Send + Sync + 'static {
    /// Every connection is checked out and the pool may open no more.
    fn is_busy(&self) -> bool;
    /// One try on a pooled connection, acquire included, by `deadline`; `table` is the
    /// pool's `databases.<name>` when it has one, for a pool timeout's words.
    async fn on_pooled(&self, deadline: Instant, table: Option<&str>) -> Result<(), Attempt>;
    /// The same on a connection of the check's own, outside the pool.
    async fn on_own_connection(&self, deadline: Instant) -> Result<(), Failure>;
    /// The `notAfter` of the certificate the pool's latest TLS handshake saw.
    fn certificate_expires(&self) -> Option<i64> {
        None
    }
}

/// A check on a pool: one retry when a pooled connection turns out dead, and, on a pool
/// shared with a host app's work, a connection of its own while the pool is all busy.
pub(crate) struct PooledCheck<P> {
    pool: P,
    secrets: Vec<String>,
    shared: bool,
    table: Option<String>,
}

impl<P: Pooled> PooledCheck<P> {
    /// A check on `pool`; `secrets` are texts (the URL's password) it must hide.
    pub fn new(pool: P, secrets: Vec<String>) -> PooledCheck<P> {
        PooledCheck {
            pool,
            secrets,
            shared: false,
            table: None,
        }
    }

    /// The pool is configured by `[<profile>.databases.<table>]`: its own timeouts are named
    /// by that key.
    pub fn table(mut self, table: &str) -> PooledCheck<P> {
        self.table = Some(table.to_owned());
        self
    }

    /// The pool is shared with a host app's own work: when all of it is busy, test the server
    /// on a connection of the check's own instead of waiting in the queue. (vitals' own pools
    /// need not: their only user is the check, one run at a time.)
    pub fn shared(mut self) -> PooledCheck<P> {
        self.shared = true;
        self
    }
}

#[rocket::async_trait]
impl<P: Pooled> Check for PooledCheck<P> {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        let result = if self.shared && self.pool.is_busy() {
            run.checked_beside_busy_pool();
            self.pool.on_own_connection(run.deadline()).await
        } else {
            let table = self.table.as_deref();
            with_one_retry(|| self.pool.on_pooled(run.deadline(), table)).await
        };
        if let Some(not_after) = self.pool.certificate_expires() {
            run.certificate_expires(not_after);
        }
        result
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }

    fn component_type(&self) -> &'static str {
        "datastore"
    }
}

/// A pool that gave up on its own timeout (`timeout`, the pool's `connect_timeout`), before the
/// check's deadline: worded as the pool's, not as the check's.
pub(crate) fn pool_timed_out(timeout: Option<std::time::Duration>, table: Option<&str>) -> Failure {
    let within = match timeout {
        Some(t) if t.subsec_millis() == 0 => format!("{} s", t.as_secs()),
        Some(t) => format!("{} ms", t.as_millis()),
        None => "its timeout".to_owned(),
    };
    let key = match table {
        Some(table) => format!("databases.{table}.connect_timeout"),
        None => "its acquire timeout".to_owned(),
    };
    Failure::new(
        super::Reason::Timeout,
        format!("the pool opened no connection within {within} ({key})"),
    )
}

/// How one try on one connection failed, for the built-in kinds.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// A final failure.
    Failed(Failure),
    /// A pooled connection turned out dead (its server went away since it was last used):
    /// worth one more try on a new connection; the failure to report if that is not possible.
    Stale(Failure),
}

impl Attempt {
    fn into_failure(self) -> Failure {
        match self {
            Attempt::Failed(f) | Attempt::Stale(f) => f,
        }
    }
}

impl From<Failure> for Attempt {
    fn from(f: Failure) -> Self {
        Attempt::Failed(f)
    }
}
