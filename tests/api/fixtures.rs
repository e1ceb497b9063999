//! Fault fixtures: a closed port, a listener that never answers, a counting proxy, a private
//! Redis that can be paused, and the real binary as a child process.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::helpers::eventually;

/// The real Postgres, as the app sees it by default.
pub fn postgres_addr() -> SocketAddr {
    "127.0.0.1:5432".parse().unwrap()
}

/// The shared Redis.
pub fn redis_addr() -> SocketAddr {
    "127.0.0.1:6379".parse().unwrap()
}

/// A port nothing listens on: bound, read, released.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener that accepts connections and never sends a byte.
pub struct Silent {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Silent {
    pub async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Silent {
            port,
            accepted,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a [`Proxy`] counts in the client-to-server stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Postgres simple and extended queries (`Q` and `P` messages).
    Postgres,
    /// Redis commands (RESP arrays).
    Redis,
}

/// A TCP proxy in front of a real dependency that counts the commands passing through and can
/// slow every answer down. It declines a Postgres client's request for TLS itself (as a server
/// without TLS does), so that what it counts stays readable.
pub struct Proxy {
    pub port: u16,
    commands: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a fresh port.
    pub async fn start(target: SocketAddr, protocol: Protocol, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, target, protocol, delay)
    }

    /// A proxy on `port` (one that was closed until now).
    pub async fn start_on(port: u16, target: SocketAddr, protocol: Protocol) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Self::serve(listener, target, protocol, Duration::ZERO)
    }

    fn serve(
        listener: TcpListener,
        target: SocketAddr,
        protocol: Protocol,
        delay: Duration,
    ) -> Proxy {
        let port = listener.local_addr().unwrap().port();
        let commands = Arc::new(AtomicUsize::new(0));
        let counter = commands.clone();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting the proxy drops every pipe and closes its sockets.
            let mut pipes = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                pipes.spawn(pipe(client, server, protocol, delay, counter.clone()));
            }
        });
        Proxy {
            port,
            commands,
            task,
        }
    }

    /// Closes the listener and every connection through it, and waits until they are gone.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Commands seen so far.
    pub fn commands(&self) -> usize {
        self.commands.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    protocol: Protocol,
    delay: Duration,
    commands: Arc<AtomicUsize>,
) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let mut counter = Counter::new(protocol);
    if protocol == Protocol::Postgres {
        // An SSLRequest (length 8, code 80877103) is answered `N`; anything else goes on.
        let mut first = [0u8; 8];
        if client_rx.read_exact(&mut first).await.is_err() {
            return;
        }
        let sent = if first == [0, 0, 0, 8, 4, 210, 22, 47] {
            client_tx.write_all(b"N").await
        } else {
            commands.fetch_add(counter.feed(&first), Ordering::SeqCst);
            server_tx.write_all(&first).await
        };
        if sent.is_err() {
            return;
        }
    }
    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            commands.fetch_add(counter.feed(&buf[..n]), Ordering::SeqCst);
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_tx.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            tokio::time::sleep(delay).await;
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Splits a client's byte stream into protocol messages and counts the commands among them.
struct Counter {
    protocol: Protocol,
    buf: Vec<u8>,
    /// Postgres: the startup message has no type byte.
    started: bool,
}

impl Counter {
    fn new(protocol: Protocol) -> Counter {
        Counter {
            protocol,
            buf: Vec::new(),
            started: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> usize {
        self.buf.extend_from_slice(bytes);
        let mut count = 0;
        loop {
            let taken = match self.protocol {
                Protocol::Postgres => self.postgres_message(&mut count),
                Protocol::Redis => self.redis_command(&mut count),
            };
            match taken {
                Some(n) => {
                    self.buf.drain(..n);
                }
                None => return count,
            }
        }
    }

    fn postgres_message(&mut self, count: &mut usize) -> Option<usize> {
        let len_at = |at: usize| -> Option<usize> {
            let b = self.buf.get(at..at + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        if !self.started {
            let len = len_at(0)?;
            if self.buf.len() < len {
                return None;
            }
            // An SSLRequest (code 80877103) comes before the real startup message.
            let code = len_at(4)?;
            self.started = code != 80877103;
            return Some(len);
        }
        let kind = *self.buf.first()?;
        let len = len_at(1)? + 1;
        if self.buf.len() < len {
            return None;
        }
        if kind == b'Q' || kind == b'P' {
            *count += 1;
        }
        Some(len)
    }

    fn redis_command(&mut self, count: &mut usize) -> Option<usize> {
        // `*<n>\r\n` then n bulk strings `$<len>\r\n<bytes>\r\n`.
        let line = |from: usize| -> Option<(usize, usize)> {
            let end = from
                + self
                    .buf
                    .get(from..)?
                    .windows(2)
                    .position(|w| w == b"\r\n")?;
            let n = std::str::from_utf8(&self.buf[from + 1..end])
                .ok()?
                .parse()
                .ok()?;
            Some((n, end + 2))
        };
        let (items, mut at) = line(0)?;
        for _ in 0..items {
            let (len, next) = line(at)?;
            at = next + len + 2;
            if self.buf.len() < at {
                return None;
            }
        }
        *count += 1;
        Some(at)
    }
}

/// A private `redis-server` on a spare port, for faults that would stall the shared one.
pub struct RedisServer {
    pub port: u16,
    child: tokio::process::Child,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        Self::start_on(closed_port().await).await
    }

    /// A private `redis-server` on `port`.
    pub async fn start_on(port: u16) -> RedisServer {
        Self::spawn(port, &[]).await
    }

    /// A private `redis-server` with extra arguments (`--requirepass X`).
    pub async fn start_with(args: &[&str]) -> RedisServer {
        Self::spawn(closed_port().await, args).await
    }

    async fn spawn(port: u16, args: &[&str]) -> RedisServer {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        let server = RedisServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        // With a password, PING answers -NOAUTH: still an answer.
        while !server
            .command(&["PING"])
            .await
            .is_some_and(|a| a == "+PONG" || a.starts_with("-NOAUTH"))
        {
            assert!(
                Instant::now() < deadline,
                "private redis-server did not answer"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    /// A client connection the server has counted (it answered PING), open until dropped.
    /// Tried again while the server still counts a client that just left (`start`'s probe).
    pub async fn hold_client(&self) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await {
                let mut buf = [0u8; 64];
                let sent = stream.write_all(b"*1\r\n$4\r\nPING\r\n").await.is_ok();
                if sent
                    && matches!(stream.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"+PONG"))
                {
                    return stream;
                }
            }
            assert!(
                Instant::now() < deadline,
                "private redis-server took no client"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends one command and returns the first line of the answer.
    pub async fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut buf = vec![0u8; 512];
        let n = stream.read(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf[..n]);
        Some(text.lines().next().unwrap_or("").to_owned())
    }

    /// Stops the server and waits until it has exited (its port is free again).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Pauses every client command for `ms` milliseconds.
    pub async fn pause(&self, ms: u64) {
        let answer = self
            .command(&["CLIENT", "PAUSE", &ms.to_string(), "ALL"])
            .await;
        assert_eq!(answer.as_deref(), Some("+OK"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

pub const BIN: &str = env!("CARGO_BIN_EXE_vitals");

/// The real binary serving on a spare port, with `envs` set.
pub struct Server {
    pub port: u16,
    child: Child,
}

impl Server {
    pub async fn start(envs: &[(&str, String)]) -> Server {
        let port = closed_port().await;
        let child = Command::new(BIN)
            .env("ROCKET_PORT", port.to_string())
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the vitals binary runs");
        let server = Server { port, child };
        let up = eventually(Duration::from_secs(10), || async {
            server
                .get("/health/live")
                .await
                .is_some_and(|(s, _)| s == 200)
        })
        .await;
        assert!(up, "vitals did not start serving");
        server
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        vitals::healthcheck::get(&url).await.ok()
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit (at most `limit`); the exit status and everything written to stdout.
    pub async fn exit(self, limit: Duration) -> (std::process::ExitStatus, String) {
        exit_of(self.child, limit).await
    }
}

/// Waits for `child` to exit (at most `limit`); its exit status and everything it wrote to
/// stdout.
pub async fn exit_of(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .expect("the process exits in time")
        .unwrap();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out).await;
    }
    (status, out)
}

/// A local HTTP server that answers every request with one status, counting requests.
pub struct HttpServer {
    pub port: u16,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl HttpServer {
    pub async fn start(status: u16) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                conns.spawn(async move {
                    // Read up to the end of the request head; a GET has no body.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = format!("{{\"answer\":{status}}}");
                    let answer = format!(
                        "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        HttpServer {
            port,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port whose listener never accepts and whose accept queue is full: the kernel drops
/// further handshakes, so a connect hangs until its caller gives up.
pub struct FullBacklog {
    pub port: u16,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    pub async fn start() -> FullBacklog {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut queued = Vec::new();
        // Fill the queue until a handshake no longer completes.
        for _ in 0..16 {
            let connect = TcpStream::connect(("127.0.0.1", port));
            match tokio::time::timeout(Duration::from_millis(200), connect).await {
                Ok(Ok(stream)) => queued.push(stream),
                _ => break,
            }
        }
        FullBacklog {
            port,
            _listener: listener,
            _queued: queued,
        }
    }
}

/// A private Postgres cluster on a spare port, made with `initdb` as user `postgres`, for
/// faults the shared server must never see (a full connection table, a shutdown). Stopped
/// and removed on drop.
pub struct PgCluster {
    pub port: u16,
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    options: String,
}

impl PgCluster {
    /// A running cluster with `settings` (`-c name=value` pairs) on top of trust auth.
    pub async fn start(settings: &[(&str, &str)]) -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Postgres server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|p| p.join("initdb").is_file())
            .expect("an initdb");
        let port = closed_port().await;
        let dir = std::env::temp_dir().join(format!("vitals-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        run_as_postgres(
            &["chown", "-R", "postgres", &dir.display().to_string()],
            true,
        );
        let data = dir.join("data").display().to_string();
        let initdb = bin.join("initdb").display().to_string();
        run_as_postgres(
            &[
                &initdb,
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            false,
        );
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        );
        for (name, value) in settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let cluster = PgCluster {
            port,
            dir,
            bin,
            options,
        };
        cluster.pg_ctl(&["start", "-w", "-o", &cluster.options]);
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `pg_ctl` on this cluster with `args`.
    pub fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let data = self.dir.join("data").display().to_string();
        let log = self.dir.join("log").display().to_string();
        let mut all = vec![pg_ctl.as_str(), "-D", &data, "-l", &log];
        all.extend_from_slice(args);
        run_as_postgres(&all, false);
    }

    /// Makes the (stopped) cluster a standby of a primary that does not exist: it then stays
    /// in recovery when started.
    pub fn make_standby(&self) {
        let signal = self
            .dir
            .join("data")
            .join("standby.signal")
            .display()
            .to_string();
        run_as_postgres(&["touch", &signal], false);
    }

    /// Starts the stopped cluster again with `extra` settings, without waiting for it.
    pub fn start_again(&self, extra: &str) -> std::process::Child {
        let log = self.dir.join("log").display().to_string();
        let options = format!("{} {extra}", self.options);
        self.pg_ctl_background(&["start", "-l", &log, "-o", &options])
    }

    /// `pg_ctl` in the background (for a stop that waits on open sessions).
    pub fn pg_ctl_background(&self, args: &[&str]) -> std::process::Child {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let data = self.dir.join("data").display().to_string();
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &pg_ctl, "-D", &data])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("runuser runs")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let data = self.dir.join("data").display().to_string();
        let _ = std::process::Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &pg_ctl,
                "-D",
                &data,
                "stop",
                "-m",
                "immediate",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `args` as user `postgres` (or as this user, for `as_self`), panicking on failure.
fn run_as_postgres(args: &[&str], as_self: bool) {
    let status = match as_self {
        true => std::process::Command::new(args[0])
            .args(&args[1..])
            .status(),
        false => std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
    };
    assert!(status.is_ok_and(|s| s.success()), "{args:?} failed");
}
