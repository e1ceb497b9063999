//! The `redis` kind: `PING` on a pooled connection, acquire and command inside one deadline.
//! It works on vitals' own lazy pool (`pools::Cache`, whose checkouts send nothing, so this
//! PING is the only command a check costs) and on a host app's deadpool-redis pool. A
//! connection left with an unanswered command is taken out of its pool; when every pooled
//! connection is busy, the check pings on a connection of its own.
//!
//! Errors map to reasons by the driver's kinds and the server's error codes. Where the driver
//! can say only "an I/O error" (a name that does not resolve, a server that hangs up on a new
//! client), a pool that knows its address asks that address directly; see [`diagnose`].

use deadpool::managed::{self, Manager, Object, PoolError};
use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo};
use rocket_db_pools::deadpool_redis::{self, redis};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::pooled::pool_timed_out;
use super::{net, Attempt, Failure, Pooled, PooledCheck, Reason};
use crate::pools::RedisManager;

/// The pools the check can borrow from.
#[derive(Clone)]
pub(crate) enum RedisPool {
    /// vitals' own, from `[<profile>.databases.redis]`.
    Managed(managed::Pool<RedisManager>),
    /// A host app's deadpool-redis pool (its checkouts PING on recycle).
    Host(deadpool_redis::Pool),
    /// Either of those, with the address its URL names (see [`RedisPool::at`]). Neither
    /// pool's manager tells where it connects, so only a pool given its URL is diagnosed.
    At(Box<RedisPool>, Address),
}

/// Where a pool connects, as its URL says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Address {
    host: String,
    port: u16,
    /// `rediss://`: a bare PING would meet a TLS handshake, so only the name is looked up.
    tls: bool,
}

impl Address {
    /// The TCP address of a Redis URL, parsed as redis-rs parses it; `None` for a Unix socket
    /// or a URL redis-rs rejects.
    fn of(url: &str) -> Option<Address> {
        let (url, tls) = crate::pools::without_tls_scheme(url);
        let (host, port) = match url.as_str().into_connection_info().ok()?.addr {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                (host, port)
            }
            ConnectionAddr::Unix(_) => return None,
        };
        Some(Address { host, port, tls })
    }
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
    /// The same pool, known to connect where `url` (the URL it was built from) says, so that
    /// its failures can be diagnosed; unchanged when `url` names no TCP address.
    pub(crate) fn at(self, url: &str) -> RedisPool {
        match Address::of(url) {
            Some(address) => RedisPool::At(Box::new(self.unaddressed()), address),
            None => self,
        }
    }

    /// The pool itself, without its address.
    fn unaddressed(self) -> RedisPool {
        match self {
            RedisPool::At(pool, _) => pool.unaddressed(),
            pool => pool,
        }
    }

    /// The pool's own timeout of `kind`.
    fn timeout(&self, kind: managed::TimeoutType) -> Option<std::time::Duration> {
        let timeouts = match self {
            RedisPool::Managed(p) => p.timeouts(),
            RedisPool::Host(p) => p.timeouts(),
            RedisPool::At(p, _) => return p.timeout(kind),
        };
        match kind {
            managed::TimeoutType::Wait => timeouts.wait,
            managed::TimeoutType::Create => timeouts.create,
            managed::TimeoutType::Recycle => timeouts.recycle,
        }
    }

    fn address(&self) -> Option<&Address> {
        match self {
            RedisPool::At(_, address) => Some(address),
            _ => None,
        }
    }

    async fn get(&self) -> Result<Checkout, RedisPoolError> {
        match self {
            RedisPool::Managed(p) => p.get().await.map(Checkout::Managed),
            RedisPool::Host(p) => p.get().await.map(Checkout::Host),
            RedisPool::At(p, _) => Box::pin(p.get()).await,
        }
    }

    /// A new connection made the way the pool makes them, never pooled.
    async fn own(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        match self {
            RedisPool::Managed(p) => p.manager().create().await,
            RedisPool::Host(p) => p.manager().create().await,
            RedisPool::At(p, _) => Box::pin(p.own()).await,
        }
    }

    /// What `e` means, diagnosed at the pool's address when the driver's kind says too little.
    async fn explain(&self, e: redis::RedisError, deadline: Instant) -> Failure {
        match self.diagnose(&e, deadline).await {
            Some(found) => found,
            None => failure(e),
        }
    }

    /// The failure the pool's address shows behind `e`, an I/O error that is neither a refusal
    /// nor a timeout; `None` when the pool knows no address or the address shows nothing more.
    async fn diagnose(&self, e: &redis::RedisError, deadline: Instant) -> Option<Failure> {
        let address = self.address()?;
        if !e.is_io_error() || e.is_connection_refusal() || e.is_timeout() {
            return None;
        }
        timeout_at(deadline, diagnose(address)).await.ok().flatten()
    }
}

/// `PING` through a Redis pool.
pub(crate) type RedisCheck = PooledCheck<RedisPool>;

#[rocket::async_trait]
impl Pooled for RedisPool {
    fn certificate_expires(&self) -> Option<i64> {
        match self {
            RedisPool::Managed(p) => p.manager().certificate_expires(),
            RedisPool::Host(_) => None,
            RedisPool::At(p, _) => p.certificate_expires(),
        }
    }

    fn is_busy(&self) -> bool {
        let status = match self {
            RedisPool::Managed(p) => p.status(),
            RedisPool::Host(p) => p.status(),
            RedisPool::At(p, _) => return p.is_busy(),
        };
        status.size >= status.max_size && status.available == 0
    }

    async fn on_pooled(&self, deadline: Instant, table: Option<&str>) -> Result<(), Attempt> {
        // redis-rs has no response timeout: only this deadline bounds a paused or silent Redis.
        let mut pooled = match timeout_at(deadline, self.get()).await {
            Err(_) => return Err(Failure::timeout().into()),
            Ok(Err(PoolError::Timeout(kind))) => {
                return Err(pool_timed_out(self.timeout(kind), table).into())
            }
            // The driver's own words ("Connection refused (os error 111)"), not deadpool's.
            // A name that does not resolve and a server refusing new clients end here.
            Ok(Err(PoolError::Backend(e))) => return Err(self.explain(e, deadline).await.into()),
            Ok(Err(e)) => return Err(Failure::error(e).into()),
            Ok(Ok(conn)) => conn,
        };
        let pong = match timeout_at(deadline, ping(pooled.conn())).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(pong)) => pong,
            Err(_) => {
                pooled.discard();
                return Err(Failure::timeout().into());
            }
        };
        pooled.discard();
        Err(match pong {
            // A dead pooled connection is worth a retry, unless its server now refuses every
            // new client (a refused client can get as far as its first PING, when the refusal
            // arrives after redis-rs finished its connection setup).
            Pong::Driver(e) if e.is_io_error() || e.is_connection_dropped() => {
                match self.diagnose(&e, deadline).await {
                    Some(found) => found.into(),
                    None => Attempt::Stale(failure(e)),
                }
            }
            pong => pong.into_failure().into(),
        })
    }

    async fn on_own_connection(&self, deadline: Instant) -> Result<(), Failure> {
        let checked = async {
            let mut conn = self.own().await.map_err(Pong::Driver)?;
            ping(&mut conn).await
        };
        match timeout_at(deadline, checked).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Pong::Driver(e))) => Err(self.explain(e, deadline).await),
            Ok(Err(pong)) => Err(pong.into_failure()),
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

/// What the pool's address shows behind an I/O error the driver cannot tell apart.
///
/// redis-rs 0.25 gives two failures no kind or code of their own (both seen with this
/// version): a failed name lookup is `ErrorKind::IoError` around tokio's `lookup_host` error,
/// an `io::Error` of kind `Uncategorized` with no OS code (and `RedisError::source()` is
/// `None`: only the deprecated `cause()` reaches it), while a server at its `maxclients` limit
/// answers a new client "-ERR max number of clients reached" and closes, which redis-rs reads
/// as the answer to its own `CLIENT SETINFO` (whose result it ignores) and then reports
/// `IoError` "Multiplexed connection driver unexpectedly terminated", without the server's
/// words. So, as the `tcp` kind does, resolution is its own step (a name that does not
/// resolve is `dns`); then one bare PING on a plain connection: a server that refuses a new
/// client has written its refusal before reading anything, so that is its first reply.
async fn diagnose(address: &Address) -> Option<Failure> {
    let mut stream = match net::connect(&address.host, address.port).await {
        Ok(stream) => stream,
        Err(f) if f.reason() == Reason::Dns => {
            return Some(Failure::new(Reason::Dns, format!("redis: {f}")));
        }
        Err(_) => return None,
    };
    if address.tls {
        return None;
    }
    match first_reply_to_ping(&mut stream).await {
        Some(reply) => refusal(&reply),
        // Hung up on a plain PING without a word: perhaps a TLS port.
        None if crate::tls::speaks_tls(&address.host, address.port).await => Some(Failure::new(
            Reason::Tls,
            format!(
                "redis: {}:{} speaks TLS: use rediss://",
                address.host, address.port
            ),
        )),
        None => None,
    }
}

/// The failure a first reply to a bare PING on a new connection means, if it is a refusal:
/// any error reply (whose code the driver's parser reads) except those about credentials,
/// which this connection does not present. PING itself cannot fail, so an error answering it
/// is the server refusing the client (`ERR` at `maxclients`, `DENIED` in protected mode).
fn refusal(reply: &[u8]) -> Option<Failure> {
    let e = redis::parse_redis_value(reply).err()?;
    let code = e.code()?;
    if failure_reason(&e) == Reason::Auth {
        return None;
    }
    let words = e.detail().unwrap_or_default();
    let text = format!("redis: the server refused a new connection: {code} {words}");
    Some(Failure::new(Reason::Unavailable, text.trim_end()))
}

/// The first line the server sends on `stream` after a PING; `None` without a whole line.
/// (Readiness and `try_*` calls: tokio's `io-util` is not among this crate's features.)
async fn first_reply_to_ping(stream: &mut TcpStream) -> Option<Vec<u8>> {
    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
    // A write error is not the end: a refusing server may have closed already, and its
    // refusal is still waiting to be read. A new socket's buffer takes these bytes at once.
    if stream.writable().await.is_ok() {
        let _ = stream.try_write(PING);
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.windows(2).any(|w| w == b"\r\n") && reply.len() <= 4096 {
        stream.readable().await.ok()?;
        match stream.try_read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
    }
    Some(reply)
}

/// The failure a driver error means, with its reason by error kind or server error code.
fn failure(e: redis::RedisError) -> Failure {
    if is_tls_failure(&e) {
        let why = e.detail().unwrap_or_default();
        return Failure::new(Reason::Tls, format!("redis: TLS: {why}"));
    }
    // The driver's own words ("Connection refused (os error 111)"), not deadpool's.
    Failure::new(failure_reason(&e), format!("redis: {e}"))
}

/// Whether `e` is a failed TLS handshake of vitals' own (see `pools::RedisTls`), which gives
/// it a code of its own: redis-rs 0.25 lends the I/O error it wraps only without `'static`,
/// so a rustls error could not be reached behind it.
fn is_tls_failure(e: &redis::RedisError) -> bool {
    e.code() == Some(crate::pools::TLS_FAILURE)
}

/// The reason a driver error means, by error kind or server error code.
fn failure_reason(e: &redis::RedisError) -> Reason {
    use redis::ErrorKind as K;
    if is_tls_failure(e) {
        Reason::Tls
    } else if e.is_connection_refusal() {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answering_a_bare_ping_is_a_refusal_in_the_servers_words() {
        let found = refusal(b"-ERR max number of clients reached\r\n").unwrap();
        assert_eq!(found.reason(), Reason::Unavailable);
        assert_eq!(
            found.text(),
            "redis: the server refused a new connection: ERR max number of clients reached"
        );
        let denied = refusal(b"-DENIED Redis is running in protected mode\r\n").unwrap();
        assert_eq!(denied.reason(), Reason::Unavailable);
    }

    #[test]
    fn a_pong_or_a_demand_for_credentials_is_no_refusal() {
        assert_eq!(refusal(b"+PONG\r\n"), None);
        // The diagnosis presents no password: NOAUTH says nothing about the failure.
        assert_eq!(refusal(b"-NOAUTH Authentication required.\r\n"), None);
        assert_eq!(refusal(b"-ERR max number of cli"), None);
    }

    #[test]
    fn the_address_is_read_as_redis_rs_reads_the_url() {
        let at = |host: &str, port| Address {
            host: host.into(),
            port,
            tls: false,
        };
        assert_eq!(
            Address::of("redis://no-such..host:6379"),
            Some(at("no-such..host", 6379))
        );
        assert_eq!(Address::of("redis://:pw@[::1]/2"), Some(at("::1", 6379)));
        assert_eq!(Address::of("redis+unix:///run/redis.sock"), None);
        assert_eq!(Address::of("not a url"), None);
    }
}
