//! The app runtime's heartbeat: proof that Rocket's runtime still runs tasks.
//!
//! A task on Rocket's runtime wakes every [`PERIOD`] and notes the time; how late each wake-up
//! came is the runtime's lag (`vitals_runtime_lag_seconds`), the first figure to look at when
//! an app is slow. With `health.port`, the health listener answers liveness from its own
//! thread, which would keep saying 200 for an app whose every worker is stuck; so there,
//! liveness answers 503 `stalled` once no beat came for `health.stall_ms`, and the listener
//! logs the start and the end of a stall once each. A busy runtime still beats, only late:
//! the default `stall_ms` sits far above the lag a saturated host shows (README, "Stall
//! detection").

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::fairing::AdHoc;

use crate::config::Settings;
use crate::metrics::Metrics;

/// How often the heartbeat task wakes.
pub(crate) const PERIOD: Duration = Duration::from_millis(100);

/// When Rocket's runtime last ran the heartbeat task, in managed state. Clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat(Arc<Beats>);

#[derive(Debug)]
struct Beats {
    origin: Instant,
    /// Milliseconds from `origin` to the latest beat.
    last_ms: AtomicU64,
    /// `health.stall_ms`.
    stall: Duration,
    /// Whether a stall is in progress, as last logged.
    logged_stall: AtomicBool,
    /// Set at shutdown: the runtime stops beating, and that is no stall.
    retired: AtomicBool,
}

impl Heartbeat {
    /// A heartbeat that beat just now and counts `stall` without a beat as a stall.
    pub fn new(stall: Duration) -> Heartbeat {
        Heartbeat(Arc::new(Beats {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            stall,
            logged_stall: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }))
    }

    fn now_ms(&self) -> u64 {
        self.0.origin.elapsed().as_millis() as u64
    }

    /// Notes a beat.
    pub fn beat(&self) {
        self.0.last_ms.store(self.now_ms(), Ordering::Release);
    }

    /// Stops counting stalls for good: Rocket is shutting down, and its runtime with it.
    pub fn retire(&self) {
        self.0.retired.store(true, Ordering::Release);
    }

    /// How long the runtime has gone without a beat, once that is `stall_ms` or more (and
    /// never after [`Heartbeat::retire`]).
    pub fn stalled_for(&self) -> Option<Duration> {
        if self.0.retired.load(Ordering::Acquire) {
            return None;
        }
        let since = self
            .now_ms()
            .saturating_sub(self.0.last_ms.load(Ordering::Acquire));
        let since = Duration::from_millis(since);
        (since >= self.0.stall).then_some(since)
    }

    /// Logs the start and the end of a stall, once each; the health listener calls it every
    /// period.
    pub fn log_changes(&self) {
        let stalled = self.stalled_for();
        let was = self
            .0
            .logged_stall
            .swap(stalled.is_some(), Ordering::AcqRel);
        match (was, stalled) {
            (false, Some(for_)) => log::warn!(
                target: "vitals::heartbeat",
                stalled_ms = for_.as_millis() as u64;
                "the app's runtime has run no task for {} ms: liveness on the health port \
                 answers 503 stalled", for_.as_millis()
            ),
            (true, None) => log::info!(
                target: "vitals::heartbeat",
                "the app's runtime runs tasks again: liveness on the health port answers 200"
            ),
            _ => {}
        }
    }
}

/// Beats on the runtime it runs on, every [`PERIOD`], recording how late each beat came.
async fn beat(heartbeat: Heartbeat, metrics: Option<Metrics>) {
    let mut next = tokio::time::Instant::now() + PERIOD;
    loop {
        tokio::time::sleep_until(next).await;
        let now = tokio::time::Instant::now();
        heartbeat.beat();
        if let Some(metrics) = &metrics {
            metrics.record_lag(now.saturating_duration_since(next));
        }
        next = now + PERIOD;
    }
}

/// Manages the [`Heartbeat`] at ignite and starts beating on Rocket's runtime at liftoff.
pub(crate) fn stage() -> AdHoc {
    AdHoc::on_ignite("Heartbeat", |rocket| async {
        let stall_ms = rocket.state::<Settings>().map_or(0, |s| s.health.stall_ms);
        let stall = Duration::from_millis(stall_ms);
        if let Some(metrics) = rocket.state::<Metrics>() {
            metrics.set_stall_threshold(stall);
        }
        rocket
            .manage(Heartbeat::new(stall))
            .attach(AdHoc::on_liftoff("Heartbeat Start", |rocket| {
                Box::pin(async move {
                    if let Some(heartbeat) = rocket.state::<Heartbeat>().cloned() {
                        heartbeat.beat();
                        let metrics = rocket.state::<Metrics>().cloned();
                        tokio::spawn(beat(heartbeat, metrics));
                    }
                })
            }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_that_beat_recently_is_not_stalled() {
        let heartbeat = Heartbeat::new(Duration::from_millis(50));
        heartbeat.beat();
        assert_eq!(heartbeat.stalled_for(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert!(heartbeat
            .stalled_for()
            .is_some_and(|d| d >= Duration::from_millis(50)));
        heartbeat.beat();
        assert_eq!(heartbeat.stalled_for(), None);
    }
}
