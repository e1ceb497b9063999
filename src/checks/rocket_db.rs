//! Any rocket_db_pools [`Database`] as a check, for `Vitals::database::<D>(name)`: the pool is
//! fetched from the app's managed state after ignite. Pools whose driver vitals knows get that
//! kind's check, busy-pool rule and retry included: vitals' own lazy sqlx 0.8 pool
//! ([`PgLazy`]: `SELECT 1`) and deadpool-redis (`PING`). Any other pool is checked by a
//! checkout under the deadline, which for sqlx pools (they test a connection before handing it
//! out) is a round trip too; its reason comes from the error's source chain.

use std::any::Any;
use std::sync::Arc;

use rocket::{Build, Rocket};
use rocket_db_pools::deadpool_redis;
use rocket_db_pools::{Database, Pool};
use tokio::time::timeout_at;

use super::postgres::PostgresCheck;
use super::redis::{RedisCheck, RedisPool};
use super::{Check, Failure, Run};
use crate::pools::{PgLazy, RedisLazy};
use crate::redact::url_secrets;

/// Fetches `D`'s pool from `rocket` and makes its check; the error says which pool is missing.
pub(crate) fn fetch<D>(rocket: &Rocket<Build>) -> Result<Arc<dyn Check>, String>
where
    D: Database,
    D::Pool: Clone,
{
    let Some(db) = D::fetch(rocket) else {
        let is_pg_lazy = std::any::TypeId::of::<D::Pool>() == std::any::TypeId::of::<PgLazy>();
        let named = is_pg_lazy
            .then(|| crate::pools::table_error(rocket.figment(), D::NAME))
            .flatten();
        if let Some(why) = named {
            return Err(why);
        }
        return Err(format!(
            "the database pool '{}' did not start: attach {}::init() to the app (when it is \
             attached, its own error is logged above)",
            D::NAME,
            std::any::type_name::<D>()
                .rsplit("::")
                .next()
                .unwrap_or("Db"),
        ));
    };
    let url: String = rocket
        .figment()
        .extract_inner(&format!("databases.{}.url", D::NAME))
        .unwrap_or_default();
    Ok(for_pool((**db).clone(), D::NAME, &url))
}

/// The check for `pool` (configured by `databases.<table>`, whose URL is `url`): the kind
/// vitals knows for its type, else a checkout.
fn for_pool<P: Pool + Clone>(pool: P, table: &str, url: &str) -> Arc<dyn Check> {
    let secrets = url_secrets(url);
    let any: &dyn Any = &pool;
    if let Some(pg) = any.downcast_ref::<PgLazy>() {
        let check = PostgresCheck::new(pg.pool.clone(), secrets).table(table);
        return Arc::new(check.shared());
    }
    // The URL lets a failed Redis connect tell a name that does not resolve, or a refusal.
    if let Some(redis) = any.downcast_ref::<deadpool_redis::Pool>() {
        let pool = RedisPool::Host(redis.clone()).at(url);
        return Arc::new(RedisCheck::new(pool, secrets).table(table).shared());
    }
    if let Some(redis) = any.downcast_ref::<RedisLazy>() {
        let pool = RedisPool::Managed(redis.pool.clone()).at(url);
        return Arc::new(RedisCheck::new(pool, secrets).table(table).shared());
    }
    Arc::new(Checkout { pool, secrets })
}

/// A checkout from a pool of a driver vitals does not know, under the deadline.
struct Checkout<P> {
    pool: P,
    secrets: Vec<String>,
}

#[rocket::async_trait]
impl<P: Pool> Check for Checkout<P> {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        match timeout_at(run.deadline(), self.pool.get()).await {
            Ok(Ok(_connection)) => Ok(()),
            Ok(Err(e)) => Err(Failure::of(&e)),
            Err(_) => Err(Failure::timeout()),
        }
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }

    fn component_type(&self) -> &'static str {
        "datastore"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Reason;
    use std::time::Duration;
    use tokio::time::Instant;

    /// A pool of a driver vitals does not know, failing or hanging as told.
    #[derive(Clone)]
    struct Fake(Option<std::io::ErrorKind>, bool);

    #[derive(Debug, thiserror::Error)]
    #[error("fake pool: {0}")]
    struct FakeError(#[source] std::io::Error);

    #[rocket::async_trait]
    impl Pool for Fake {
        type Connection = ();
        type Error = FakeError;

        async fn init(_: &figment::Figment) -> Result<Self, Self::Error> {
            Ok(Fake(None, false))
        }

        async fn get(&self) -> Result<(), FakeError> {
            if self.1 {
                std::future::pending::<()>().await;
            }
            match self.0 {
                Some(kind) => Err(FakeError(std::io::Error::new(kind, "no"))),
                None => Ok(()),
            }
        }

        async fn close(&self) {}
    }

    async fn run(pool: Fake) -> Result<(), Failure> {
        let check = for_pool(pool, "fake", "");
        let run = Run::new(Instant::now() + Duration::from_millis(50));
        check.run(&run).await
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_pool_is_checked_by_a_checkout() {
        assert_eq!(run(Fake(None, false)).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_pools_error_takes_its_reason_from_the_source_chain() {
        let failure = run(Fake(Some(std::io::ErrorKind::ConnectionRefused), false))
            .await
            .unwrap_err();
        assert_eq!(failure.reason(), Reason::Refused);
        assert_eq!(failure.text(), "fake pool: no");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_checkout_is_a_timeout() {
        let failure = run(Fake(None, true)).await.unwrap_err();
        assert_eq!(failure.reason(), Reason::Timeout);
    }
}
