//! The timer mode (`health.interval_ms`): each check runs on a fixed-rate, jittered timer and
//! probes answer from the latest result; the timers stop when the drain begins or Rocket
//! shuts down.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, MissedTickBehavior};

use super::engine::{Health, BACKSTOP, CALLER_SLACK};

/// The timer mode: every check runs every `interval` (with jitter), probes answer from the
/// latest result, and one older than `max_age` counts as failing (`stale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timer {
    pub interval: Duration,
    pub max_age: Duration,
}

impl Health {
    /// Runs the checks on a timer (see [`Timer`]); [`start_timers`](Health::start_timers)
    /// starts them.
    pub fn on_timer(mut self, timer: Option<Timer>) -> Health {
        self.timer = timer;
        self
    }

    /// The timer mode, if on.
    pub fn timer(&self) -> Option<Timer> {
        self.timer
    }

    /// Starts one timer per check on the engine's runtime: each runs its check at once, then
    /// at a fixed rate of one run per interval, counted from a start jittered by up to a tenth
    /// either way (so a fleet does not check in lockstep), whatever each run takes: results
    /// are never more than an interval plus a deadline apart. Runs until `stop` says so (the
    /// drain) or [`halt`](Health::halt) (Rocket shut down). Does nothing outside timer mode.
    pub fn start_timers(&self, stop: Arc<dyn Fn() -> bool + Send + Sync>) {
        let Some(timer) = self.timer else {
            return;
        };
        for index in 0..self.slots.len() {
            let (health, stop) = (self.clone(), stop.clone());
            let mut halted = self.halt.subscribe();
            let ticking = async move {
                let phase = Jitter::seeded(index).around(timer.interval);
                let mut ticks = tokio::time::interval_at(Instant::now() + phase, timer.interval);
                // A run longer than the interval skips ticks rather than bunching them.
                ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
                loop {
                    if stop() {
                        log::info!(target: "vitals::check", "check timers stopped: draining");
                        return;
                    }
                    if *halted.borrow() {
                        log::debug!(target: "vitals::check", "check timers stopped: shut down");
                        return;
                    }
                    health.run_now(index).await;
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = halted.changed() => {}
                    }
                }
            };
            match &self.runs_on {
                Some(runtime) => drop(runtime.spawn(ticking)),
                None => drop(tokio::spawn(ticking)),
            }
        }
    }

    /// [`run_now`](Health::run_now), for the engine's tests.
    #[cfg(test)]
    pub(super) async fn run_now_for_tests(&self, index: usize) {
        self.run_now(index).await
    }

    /// Runs the check at `index` now (or joins its run in flight) and waits for it, bounded;
    /// a run past its deadline has that deadline counted as missed.
    async fn run_now(&self, index: usize) {
        let (deadline, run) = {
            let mut state = self.slots[index].lock();
            match &state.in_flight {
                Some(flight) => (flight.deadline, flight.run.clone()),
                None => {
                    let flight = self.start(index);
                    let joined = (flight.deadline, flight.run.clone());
                    state.in_flight = Some(flight);
                    joined
                }
            }
        };
        if tokio::time::timeout_at(deadline + BACKSTOP + CALLER_SLACK, run)
            .await
            .is_err()
        {
            self.unfinished(index);
        }
    }
}

/// A small generator of jitter (xorshift), seeded per timer: no randomness crate needed.
pub(super) struct Jitter(u64);

impl Jitter {
    pub(super) fn seeded(index: usize) -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        Jitter((nanos ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    /// `interval` give or take up to a tenth of it.
    pub(super) fn around(&mut self, interval: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let spread = interval / 5;
        let offset = spread.mul_f64((self.0 % 1000) as f64 / 1000.0);
        interval - interval / 10 + offset
    }
}
