//! The health endpoints' own listener, `[<profile>.health] port`: the probes, `/status` and
//! `/metrics` on a port served by a thread and a Tokio runtime of their own, so no handler of
//! a host app (CPU-bound, blocking, or just many) can hold a probe up.
//!
//! Rocket 0.5 turns hyper's header read timeout off and offers no second port, so this
//! listener is hyper's HTTP/1 server directly, with a small router ([`Router`]) over the same
//! endpoint functions Rocket's routes call: each returns a finished `Reply`, which both ports
//! carry unchanged, so their answers are the same byte for byte (Rocket adds its `Server` and
//! Shield headers around them). Check runs never run here: they live on the engine's own
//! runtime, so a check that blocks cannot stall this thread. The listener bounds what slow
//! clients can hold: a request head must arrive within [`HEAD_TIMEOUT`], a body is never read
//! (no health endpoint takes one), and an accept that fails for want of file descriptors backs
//! off instead of spinning. With the port set, the process's soft open-file limit is raised to
//! its hard limit at ignite ([`raise_open_files`]): the one process-wide change vitals makes,
//! logged, and only when this setting asks for it.
//!
//! The port answers until the app's Rocket is dropped (for a service: until the process ends),
//! through Rocket's whole shutdown: readiness `draining`, liveness 200.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Method;
use hyper_util::rt::{TokioIo, TokioTimer};
use rocket::fairing::AdHoc;
use rocket::http::Status;
use rocket::{Orbit, Rocket};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access::Policy;
use crate::checks::Health;
use crate::heartbeat::{Heartbeat, PERIOD};
use crate::metrics::{self, Metrics};
use crate::reply::{self, Reply};
use crate::routes::{self, Form, Service};
use crate::shutdown::Lifecycle;
use crate::status_page::{self, Links};

/// How long a connection may take to deliver a complete request head; then it is closed.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after an accept fails (out of file descriptors): the failure repeats until a
/// connection closes, and retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Binds the health port at ignite, so a port in use (or Rocket's own) stops launch naming the
/// key, then starts the listener's thread at liftoff. The thread serves until the Rocket is
/// dropped: its managed state holds the only sender of the stop channel ([`Running`]).
pub(crate) fn stage(port: u16, base: String, standalone: bool) -> AdHoc {
    AdHoc::try_on_ignite("Health Listener", move |rocket| async move {
        raise_open_files();
        // `rocket::Config::from` would panic on a bad value; Rocket reports it at launch.
        let address = rocket
            .figment()
            .extract_inner::<std::net::IpAddr>("address")
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        if rocket.figment().extract_inner::<u16>("port").ok() == Some(port) {
            log::error!(
                target: "vitals::config",
                "invalid configuration: health.port = {port} is Rocket's own port (port): give \
                 the health endpoints another"
            );
            return Err(rocket);
        }
        let socket = match std::net::TcpListener::bind((address, port)) {
            Ok(socket) => socket,
            Err(e) => {
                log::error!(
                    target: "vitals::config",
                    "invalid configuration: health.port = {port}: cannot listen on {address}: {e}"
                );
                return Err(rocket);
            }
        };
        let (stop, stopped) = watch::channel(());
        let started = std::sync::Mutex::new(Some((socket, stopped)));
        Ok(rocket
            .manage(Running(stop))
            .attach(AdHoc::on_liftoff("Health Listener Start", move |rocket| {
                let taken = started.lock().ok().and_then(|mut s| s.take());
                Box::pin(async move {
                    if let Some((socket, stopped)) = taken {
                        start(rocket, socket, stopped, &base, standalone);
                    }
                })
            }))
            .attach(AdHoc::on_shutdown("Health Listener Shutdown", |rocket| {
                Box::pin(async move {
                    // The port outlives Rocket's runtime: readiness says the app is going,
                    // and liveness stops reading the heartbeat that runtime no longer beats.
                    if let Some(lifecycle) = rocket.state::<Lifecycle>() {
                        lifecycle.begin_drain();
                    }
                    if let Some(heartbeat) = rocket.state::<Heartbeat>() {
                        heartbeat.retire();
                    }
                })
            })))
    })
}

/// The stop channel's only sender, in the app's managed state: dropped with the Rocket, which
/// ends the listener.
struct Running(#[allow(dead_code)] watch::Sender<()>);

/// Starts the listener's thread with a router over `app`'s state.
fn start(
    app: &Rocket<Orbit>,
    socket: std::net::TcpListener,
    stopped: watch::Receiver<()>,
    base: &str,
    standalone: bool,
) {
    let Some(router) = Router::of(app, base, standalone) else {
        log::error!(target: "vitals::listener", "the health listener found no engine to serve");
        return;
    };
    let at = socket.local_addr().ok();
    let spawned = std::thread::Builder::new()
        .name("vitals-health".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(serve(router, socket, stopped)),
                Err(e) => log::error!(target: "vitals::listener", "no runtime: {e}"),
            }
        });
    match (spawned, at) {
        (Ok(_), Some(at)) => log::info!(
            target: "vitals::listener",
            "health endpoints also on http://{at} (own thread and runtime)"
        ),
        (Err(e), _) => log::error!(target: "vitals::listener", "cannot start its thread: {e}"),
        _ => {}
    }
}

/// Accepts until the app's Rocket is gone; each connection is served on its own task.
async fn serve(router: Router, socket: std::net::TcpListener, mut stopped: watch::Receiver<()>) {
    let listener = match socket
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(socket))
    {
        Ok(listener) => listener,
        Err(e) => {
            log::error!(target: "vitals::listener", "cannot listen: {e}");
            return;
        }
    };
    // Says once when the app's runtime stalls and once when it runs again.
    let heartbeat = router.heartbeat.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PERIOD);
        loop {
            every.tick().await;
            heartbeat.log_changes();
        }
    });
    let router = std::sync::Arc::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let router = router.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let router = router.clone();
                        async move { Ok::<_, Infallible>(router.answer(request).await) }
                    });
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    tokio::spawn(async move {
                        // A timeout or a client gone mid-request ends only that connection.
                        let _ = connection.await;
                    });
                }
                Err(e) => {
                    log::warn!(target: "vitals::listener", "accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Only an error ever comes: the sender is dropped with the app's Rocket.
            _ = stopped.changed() => break,
        }
    }
}

/// The health port's router: the app's shared state, and the base its endpoints sit under.
struct Router {
    health: Health,
    metrics: Metrics,
    lifecycle: Lifecycle,
    policy: Policy,
    links: Links,
    service: Service,
    heartbeat: Heartbeat,
    /// The base's segments (none for `/`).
    base: Vec<String>,
    /// The standalone service, whose `/` sends people to the page.
    standalone: bool,
}

/// What the router takes from a request: the parts its endpoints read.
struct Asked<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    accept: Option<&'a str>,
    authorization: Option<&'a str>,
}

impl Router {
    fn of(app: &Rocket<Orbit>, base: &str, standalone: bool) -> Option<Router> {
        Some(Router {
            health: app.state::<Health>()?.clone(),
            metrics: app.state::<Metrics>()?.clone(),
            lifecycle: app.state::<Lifecycle>()?.clone(),
            policy: app.state::<Policy>()?.clone(),
            links: app.state::<Links>()?.clone(),
            service: *app.state::<Service>()?,
            heartbeat: app.state::<Heartbeat>()?.clone(),
            base: routes::segments(base).map(|s| s.into_owned()).collect(),
            standalone,
        })
    }

    /// Answers one request as Rocket's port would, and logs and counts it as Rocket's
    /// fairings do there.
    async fn answer(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let began = Instant::now();
        // The body is never read: no health endpoint takes one, and a client that announces
        // one and never sends it must not hold its answer up.
        let (head, _body) = request.into_parts();
        // Header values as Rocket reads them: any UTF-8, else absent.
        let header = |name: HeaderName| {
            head.headers
                .get(name)
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        };
        let asked = Asked {
            method: head.method.as_str(),
            path: head.uri.path(),
            query: head.uri.query(),
            accept: header(hyper::header::ACCEPT),
            authorization: header(hyper::header::AUTHORIZATION),
        };
        if !rocket_knows(&head.method) {
            // Rocket refuses a method it cannot name before any route or fairing sees it.
            return carry(crate::error::refusal(Status::BadRequest), false);
        }
        let (route, reply) = match head.method {
            Method::GET | Method::HEAD => self.route(&asked).await,
            _ => (None, crate::error::refusal(Status::NotFound)),
        };
        let route = route.unwrap_or("unmatched");
        let status = reply.status.code;
        self.metrics.record_request(route, status);
        let took_ms = began.elapsed().as_secs_f64() * 1e3;
        log::info!(
            target: "vitals::http",
            method = asked.method,
            path = asked.path,
            route = route,
            status = status,
            duration_ms = took_ms;
            "{} {} {} in {:.3} ms", asked.method, asked.path, status, took_ms
        );
        carry(reply, true)
    }

    /// The endpoint `asked` names, and its answer; `None` and 404 when there is none.
    async fn route(&self, asked: &Asked<'_>) -> (Option<&'static str>, Reply) {
        let path: Vec<_> = routes::segments(asked.path).collect();
        let under_base = path.len() >= self.base.len()
            && path.iter().zip(&self.base).all(|(p, b)| p == b.as_str());
        if !under_base {
            return (None, crate::error::refusal(Status::NotFound));
        }
        let rest: Vec<&str> = path[self.base.len()..].iter().map(|s| s.as_ref()).collect();
        let form = || Form::negotiate(routes::verbose(asked.query), asked.accept);
        // Made only where an endpoint reads it, as Rocket's guards are: a wrong token is
        // logged where it could have shown details, not on liveness.
        let ask = || routes::Ask {
            health: &self.health,
            lifecycle: &self.lifecycle,
            service: &self.service,
            policy: &self.policy,
            viewer: self
                .policy
                .viewer(asked.authorization, asked.method, asked.path),
            form: form(),
        };
        let refused = |e: crate::error::Error| e.reply(asked.method, asked.path);
        let stalled = || self.heartbeat.stalled_for();
        let (route, reply) = match rest.as_slice() {
            ["health", "live"] => ("live", routes::live(form(), stalled(), &self.service)),
            ["health", "ready"] => {
                let exclude = routes::excluded(asked.query);
                let answer = routes::ready(&ask(), &exclude).await;
                ("ready", answer.map_or_else(refused, |a| a.reply()))
            }
            ["health", "ready", name] => {
                let answer = routes::ready_one(&ask(), name).await;
                ("ready_one", answer.map_or_else(refused, |a| a.reply()))
            }
            ["health", "startup"] => ("startup", routes::startup(&ask()).await.reply()),
            ["health"] => ("summary", routes::summary(&self.service)),
            ["status"] => ("status", status_page::status(&ask(), &self.links).await),
            ["status", "login"] => ("login", status_page::login(&ask(), &self.links).await),
            ["static", "status.css"] => ("stylesheet", status_page::stylesheet()),
            [] if self.standalone => ("index", status_page::index()),
            ["metrics"] => {
                let metrics = &self.metrics;
                (
                    "metrics",
                    metrics::exposition(metrics, &self.health, &self.lifecycle),
                )
            }
            _ => return (None, crate::error::refusal(Status::NotFound)),
        };
        (Some(route), reply)
    }
}

/// Whether Rocket 0.5 can name `method`; it answers any other with 400.
fn rocket_knows(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::PUT
            | Method::POST
            | Method::DELETE
            | Method::OPTIONS
            | Method::HEAD
            | Method::TRACE
            | Method::CONNECT
            | Method::PATCH
    )
}

/// `reply` as hyper's response: its status, its headers, `Cache-Control: no-store` where
/// Rocket's `NoStore` would set it (`fresh`: the answer went through Rocket's fairings there),
/// and its body, whose length hyper sends as `Content-Length` (for HEAD too, without the
/// body). A reply that hyper cannot carry becomes a 500 with a JSON body, never an empty 200.
fn carry(reply: Reply, fresh: bool) -> hyper::Response<Full<Bytes>> {
    let body = match reply.body {
        reply::Body::Static(text) => Bytes::from_static(text.as_bytes()),
        reply::Body::Owned(text) => Bytes::from(text),
    };
    let mut response = hyper::Response::new(Full::new(body));
    let carried = (|| {
        *response.status_mut() = hyper::StatusCode::from_u16(reply.status.code).ok()?;
        let headers = response.headers_mut();
        if let Some(content_type) = reply.content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).ok()?);
        }
        for (name, value) in reply.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            headers.append(name, HeaderValue::from_str(value).ok()?);
        }
        if fresh && reply.content_type.is_some_and(reply::fresh_only) {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Some(())
    })();
    match carried {
        Some(()) => response,
        None => failed(),
    }
}

/// 500 with a JSON body, the answer when hyper could not carry the one made.
fn failed() -> hyper::Response<Full<Bytes>> {
    log::error!(target: "vitals::http", "an answer could not be carried");
    let body = Bytes::from_static(reply::FAILED.as_bytes());
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply::JSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Raises the soft limit on open files to the hard limit, once, and logs the figure: each
/// connection costs a descriptor, and at the limit the accept loop fails.
pub(crate) fn raise_open_files() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
            let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
            if !got {
                return;
            }
            let before = limit.rlim_cur;
            if limit.rlim_cur < limit.rlim_max {
                limit.rlim_cur = limit.rlim_max;
                // SAFETY: as above.
                if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
                    limit.rlim_cur = before;
                }
            }
            log::info!(
                target: "vitals::listener",
                open_files = limit.rlim_cur;
                "open files: soft limit {} (was {before}, hard limit {})",
                limit.rlim_cur, limit.rlim_max
            );
        }
    });
}
