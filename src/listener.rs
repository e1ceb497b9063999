//! The health endpoints' own listener, `[<profile>.health] port`: the probes, `/status` and
//! `/metrics` on a port served by a thread and a Tokio runtime of their own, so no handler of
//! a host app (CPU-bound, blocking, or just many) can hold a probe up.
//!
//! Rocket 0.5 turns hyper's header read timeout off and offers no second port, so this
//! listener is hyper's HTTP/1 server directly. Check runs never run here: they live on the
//! engine's own runtime, so a check that blocks cannot stall this thread. Each request goes through
//! a second Rocket instance that shares the engine, metrics and lifecycle with the app's and
//! mounts only the health routes, dispatched in process by Rocket's local client. The listener
//! bounds what slow clients can hold: a request head must arrive within [`HEAD_TIMEOUT`], a
//! body is never read (no health endpoint takes one), and an accept that fails for want of
//! file descriptors backs off instead of spinning. With the port set, the process's soft
//! open-file limit is raised to its hard limit at ignite ([`raise_open_files`]): the one
//! process-wide change vitals makes, logged, and only when this setting asks for it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use rocket::fairing::AdHoc;
use rocket::http::{Header, Method};
use rocket::local::asynchronous::Client;
use rocket::{Build, Orbit, Rocket};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access::Policy;
use crate::checks::Health;
use crate::config::Settings;
use crate::fairings::Scope;
use crate::heartbeat::{Heartbeat, StallWatch, PERIOD};
use crate::metrics::Metrics;
use crate::routes::Service;
use crate::shutdown::Lifecycle;
use crate::status_page::Links;

/// How long a connection may take to deliver a complete request head; then it is closed.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after an accept fails (out of file descriptors): the failure repeats until a
/// connection closes, and retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Binds the health port at ignite, so a port in use stops launch naming the key, then starts
/// the listener's thread at liftoff and stops it at shutdown.
pub(crate) fn stage(port: u16, base: String) -> AdHoc {
    AdHoc::try_on_ignite("Health Listener", move |rocket| async move {
        raise_open_files();
        // `rocket::Config::from` would panic on a bad value; Rocket reports it at launch.
        let address = rocket
            .figment()
            .extract_inner::<std::net::IpAddr>("address")
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
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
        let (stop, stopped) = watch::channel(false);
        let started = std::sync::Mutex::new(Some((socket, stopped)));
        Ok(rocket
            .attach(AdHoc::on_liftoff("Health Listener Start", move |rocket| {
                let taken = started.lock().ok().and_then(|mut s| s.take());
                Box::pin(async move {
                    if let Some((socket, stopped)) = taken {
                        start(rocket, socket, stopped, base);
                    }
                })
            }))
            .attach(AdHoc::on_shutdown("Health Listener Stop", move |_| {
                Box::pin(async move {
                    let _ = stop.send(true);
                })
            })))
    })
}

/// Starts the listener's thread with a Rocket that shares `app`'s state.
fn start(
    app: &Rocket<Orbit>,
    socket: std::net::TcpListener,
    stopped: watch::Receiver<bool>,
    base: String,
) {
    let Some(health_rocket) = health_rocket(app, &base) else {
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
                Ok(runtime) => runtime.block_on(serve(health_rocket, socket, stopped)),
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

/// Every answer of the health Rocket is vitals' own.
const EVERY_ANSWER: Scope = Scope {
    everything: true,
    standalone: true,
};

/// A Rocket with only the health routes and the app's shared state.
fn health_rocket(app: &Rocket<Orbit>, base: &str) -> Option<Rocket<Build>> {
    let figment = app.figment().clone().merge(("port", 0));
    let rocket = rocket::custom(figment)
        .manage(app.state::<Health>()?.clone())
        .manage(app.state::<Metrics>()?.clone())
        .manage(app.state::<Lifecycle>()?.clone())
        .manage(app.state::<Policy>()?.clone())
        .manage(app.state::<Links>()?.clone())
        .manage(*app.state::<Service>()?)
        .manage(app.state::<Settings>()?.clone())
        .manage(StallWatch(app.state::<Heartbeat>()?.clone()))
        .mount(base, crate::routes::probe_routes())
        .mount(base, crate::status_page::page_routes())
        .mount(base, crate::metrics::metrics_routes())
        .register(base, crate::error::catchers())
        .attach(crate::fairings::RequestLogger(EVERY_ANSWER))
        .attach(crate::fairings::NoStore(EVERY_ANSWER, base.to_owned()))
        .attach(crate::metrics::RequestCounter(EVERY_ANSWER));
    Some(rocket)
}

/// Accepts until told to stop; each connection is served on its own task.
async fn serve(
    rocket: Rocket<Build>,
    socket: std::net::TcpListener,
    mut stopped: watch::Receiver<bool>,
) {
    let client = match Client::untracked(rocket).await {
        Ok(client) => Arc::new(client),
        Err(e) => {
            log::error!(target: "vitals::listener", "the health routes did not ignite: {e}");
            return;
        }
    };
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
    if let Some(StallWatch(heartbeat)) = rocket_state_watch(&client) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PERIOD);
            loop {
                every.tick().await;
                heartbeat.log_changes();
            }
        });
    }
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = http.serve_connection(
                        TokioIo::new(stream),
                        Dispatch { client: client.clone(), peer },
                    );
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
            _ = stopped.changed() => break,
        }
    }
}

fn rocket_state_watch(client: &Client) -> Option<StallWatch> {
    client.rocket().state::<StallWatch>().cloned()
}

/// Hands one hyper request to the health Rocket and its answer back to hyper.
#[derive(Clone)]
struct Dispatch {
    client: Arc<Client>,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Dispatch {
    type Response = hyper::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.answer(request).await) })
    }
}

impl Dispatch {
    async fn answer(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let method = Method::from_str(request.method().as_str()).unwrap_or(Method::Get);
        let uri = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut local = self.client.req(method, uri).remote(self.peer);
        for (name, value) in request.headers() {
            if let Ok(value) = value.to_str() {
                local.add_header(Header::new(name.as_str().to_owned(), value.to_owned()));
            }
        }
        // The body is never read: no health endpoint takes one, and a client that announces
        // one and never sends it must not hold its answer up.
        drop(request);
        let response = local.dispatch().await;
        let mut answer = hyper::Response::builder().status(response.status().code);
        for header in response.headers().iter() {
            answer = answer.header(header.name().as_str(), header.value());
        }
        let body = response.into_bytes().await.unwrap_or_default();
        answer
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
    }
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
