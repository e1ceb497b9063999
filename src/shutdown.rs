//! The process lifecycle as probes see it: serving, then draining, then shut down.
//!
//! On SIGTERM or SIGINT the signal task marks [`Lifecycle`] draining (readiness answers 503
//! `draining` at once; liveness and startup stay 200), keeps serving for `health.drain_ms` so
//! load balancers notice, then asks Rocket for its graceful shutdown (grace, then mercy). A
//! second signal during the drain cuts it short. With the drain on, Rocket's own signal
//! handling is turned off in [`take_signals`] (it would stop accepting connections at the first
//! signal, leaving no window) and that is logged once; Rocket's `grace` and `mercy` stay the
//! app's. With the drain off, Rocket's signal handling is left exactly as the app set it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::{Build, Rocket, Shutdown};

use crate::config::Settings;

/// Whether the service is draining, in managed state. Clones share one flag. A host app can
/// read it (`&State<Lifecycle>`) to stop taking new work while the drain runs.
///
/// ```
/// use rocket::{post, State};
/// use vitals::Lifecycle;
///
/// #[post("/jobs")]
/// fn enqueue(lifecycle: &State<Lifecycle>) -> Result<&'static str, &'static str> {
///     match lifecycle.is_draining() {
///         true => Err("shutting down: send it elsewhere"),
///         false => Ok("queued"),
///     }
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
}

impl Lifecycle {
    /// True once a drain has begun; it never goes back.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the service as draining: readiness answers 503 `draining` from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// Turns off Rocket's own `ctrlc` and signal handling, which the signal task takes over, and
/// says so once. Must run in an ignite fairing: Rocket reads its configuration after them.
pub(crate) fn take_signals(rocket: Rocket<Build>, drain_ms: u64) -> Rocket<Build> {
    let figment = rocket.figment();
    let grace: u32 = figment.extract_inner("shutdown.grace").unwrap_or(2);
    let mercy: u32 = figment.extract_inner("shutdown.mercy").unwrap_or(3);
    log::info!(
        target: "vitals::shutdown",
        "vitals handles SIGTERM and SIGINT: readiness drains for {drain_ms} ms, then Rocket shuts \
         down gracefully (grace {grace} s, mercy {mercy} s, the app's own); Rocket's \
         shutdown.ctrlc and shutdown.signals are turned off (Vitals::drain_on_signal(false) \
         leaves them to Rocket)"
    );
    let figment = figment
        .clone()
        .merge(("shutdown.ctrlc", false))
        .merge(("shutdown.signals", Vec::<String>::new()));
    rocket.configure(figment)
}

/// Drains: readiness withdraws now, Rocket is told to shut down after `window`, or at once when
/// `cut_short` resolves first (a second signal).
pub(crate) async fn drain(
    lifecycle: &Lifecycle,
    window: Duration,
    shutdown: Shutdown,
    cut_short: impl std::future::Future<Output = ()>,
) {
    lifecycle.begin_drain();
    log::info!(
        target: "vitals::shutdown",
        drain_ms = window.as_millis() as u64;
        "draining: readiness is 503 for {} ms, then graceful shutdown", window.as_millis()
    );
    tokio::select! {
        _ = tokio::time::sleep(window) => {}
        _ = cut_short => {
            log::info!(target: "vitals::shutdown", "second signal: shutting down now");
        }
    }
    log::info!(target: "vitals::shutdown", "drain over: graceful shutdown");
    shutdown.notify();
}

/// Resolves at the next SIGTERM or SIGINT.
#[cfg(unix)]
async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        _ => {
            log::error!(target: "vitals::shutdown", "cannot listen for signals; drain disabled");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Manages the [`Lifecycle`].
pub(crate) fn stage() -> AdHoc {
    AdHoc::on_ignite("Lifecycle", |rocket| async {
        rocket.manage(Lifecycle::default())
    })
}

/// Starts the signal task at liftoff. Attached unless `Vitals::drain_on_signal(false)`: a
/// signal handler, once installed, stays for the life of the process, and a test binary
/// should still stop on Ctrl-C.
pub(crate) fn signals() -> AdHoc {
    AdHoc::on_liftoff("Signal Drain", |rocket| {
        Box::pin(async move {
            let lifecycle = rocket.state::<Lifecycle>().cloned().unwrap_or_default();
            let window = rocket.state::<Settings>().map_or(0, |s| s.health.drain_ms);
            let shutdown = rocket.shutdown();
            tokio::spawn(async move {
                signal().await;
                drain(
                    &lifecycle,
                    Duration::from_millis(window),
                    shutdown,
                    signal(),
                )
                .await;
            });
        })
    })
}
