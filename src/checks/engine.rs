//! [`Health`]: the one place checks run and their results are kept.
//!
//! Per check, a slot holds the latest outcome, the run in flight (if any) and a bounded
//! history. Asking for a check reuses the latest outcome while it is younger than `cache_ms`,
//! else joins the run in flight, else starts one. So concurrent probes cost one run per check,
//! whatever their number. A run is a spawned task bounded by its deadline: callers that give
//! up do not cancel it for the others, and its I/O ends when the deadline does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use tokio::time::Instant;

use super::probe::{self, Failure};
use super::{Check, Entry, Outcome, Report, Sanitiser, Status, Verdict};
use crate::config::{HealthSettings, Settings};
use crate::pools::{Cache, Db};

/// Completed runs kept per check for the status page.
pub const HISTORY_LEN: usize = 60;

/// Slack past a check's deadline before the backstop timeout cancels the probe outright; the
/// probes honour the deadline themselves so they can drop a half-used connection.
const BACKSTOP: Duration = Duration::from_millis(20);

type Run = Shared<BoxFuture<'static, Arc<Outcome>>>;

/// The readiness engine, in managed state. Runs checks on request; nothing runs on a timer.
#[derive(Debug)]
pub struct Health {
    settings: HealthSettings,
    sanitiser: Sanitiser,
    slots: [Arc<Slot>; Check::ALL.len()],
    started: AtomicBool,
    booted_at: SystemTime,
}

#[derive(Debug, Default)]
struct Slot(Mutex<SlotState>);

#[derive(Default)]
struct SlotState {
    latest: Option<(Instant, Arc<Outcome>)>,
    in_flight: Option<Run>,
    history: VecDeque<Arc<Outcome>>,
    changed_at: Option<SystemTime>,
    runs: u64,
    runs_ok: u64,
}

impl std::fmt::Debug for SlotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotState")
            .field("latest", &self.latest.as_ref().map(|(_, o)| o.status))
            .field("in_flight", &self.in_flight.is_some())
            .field("history", &self.history.len())
            .finish()
    }
}

/// What the engine remembers of one check.
#[derive(Debug, Clone)]
pub struct History {
    /// The latest completed run, if any.
    pub latest: Option<Arc<Outcome>>,
    /// When its status last changed (first run counts as a change).
    pub changed_at: Option<SystemTime>,
    /// Up to 60 completed runs (`HISTORY_LEN`), oldest first.
    pub recent: Vec<Arc<Outcome>>,
    /// Completed runs since the process started.
    pub runs: u64,
    /// Of those, the ones that were `ok`.
    pub runs_ok: u64,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // A poisoned lock only means a panic elsewhere; the state itself is always whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn complete(&self, outcome: Arc<Outcome>) {
        let mut state = self.lock();
        let changed = state.latest.as_ref().map(|(_, o)| o.status) != Some(outcome.status);
        if changed {
            state.changed_at = Some(outcome.finished_at);
        }
        if state.history.len() == HISTORY_LEN {
            state.history.pop_front();
        }
        state.history.push_back(outcome.clone());
        state.runs += 1;
        state.runs_ok += u64::from(outcome.status == Status::Ok);
        state.latest = Some((Instant::now(), outcome));
        state.in_flight = None;
    }
}

impl Health {
    /// An engine with no results yet; `urls` are the pool URLs whose passwords it hides.
    pub fn new<'a>(settings: HealthSettings, urls: impl IntoIterator<Item = &'a str>) -> Health {
        Health {
            settings,
            sanitiser: Sanitiser::new(urls),
            slots: Default::default(),
            started: AtomicBool::new(false),
            booted_at: SystemTime::now(),
        }
    }

    /// Whether a full readiness evaluation has passed since the process started.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// When the engine was created (process start, for uptime).
    pub fn booted_at(&self) -> SystemTime {
        self.booted_at
    }

    /// The latest outcome, last change and recent runs of `check`.
    pub fn history(&self, check: Check) -> History {
        let state = self.slots[check.index()].lock();
        History {
            latest: state.latest.as_ref().map(|(_, o)| o.clone()),
            changed_at: state.changed_at,
            recent: state.history.iter().cloned().collect(),
            runs: state.runs,
            runs_ok: state.runs_ok,
        }
    }

    /// The latest result of each check that has run, without running anything.
    pub fn latest_entries(&self) -> Vec<Entry> {
        Check::ALL
            .into_iter()
            .filter_map(|check| {
                Some(Entry {
                    check,
                    critical: self.settings.is_critical(check),
                    // Only the latest result: `history` would copy the whole run list.
                    outcome: self.slots[check.index()].lock().latest.as_ref()?.1.clone(),
                    fresh: false,
                })
            })
            .collect()
    }

    /// The verdict of every check's latest result, without running anything; `None` until
    /// each check has run once.
    pub fn latest_verdict(&self) -> Option<Verdict> {
        let entries = self.latest_entries();
        (entries.len() == Check::ALL.len()).then(|| Verdict::of(&entries))
    }

    /// Evaluates `checks` concurrently against the pools and aggregates a [`Report`].
    /// Answers within the largest deadline among them (plus scheduling slack).
    pub async fn evaluate(&self, checks: &[Check], db: &Db, cache: &Cache) -> Report {
        let entries = join_all(checks.iter().map(|&check| async move {
            let (outcome, fresh) = self.outcome(check, db, cache).await;
            Entry {
                check,
                critical: self.settings.is_critical(check),
                outcome,
                fresh,
            }
        }))
        .await;
        let verdict = Verdict::of(&entries);
        if verdict.is_serving() && checks.len() == Check::ALL.len() {
            self.started.store(true, Ordering::Release);
        }
        Report { verdict, entries }
    }

    /// The outcome for `check`, and whether this call started the run that produced it.
    async fn outcome(&self, check: Check, db: &Db, cache: &Cache) -> (Arc<Outcome>, bool) {
        let slot = &self.slots[check.index()];
        let (run, fresh) = {
            let mut state = slot.lock();
            let cache_for = Duration::from_millis(self.settings.cache_ms);
            match (&state.latest, &state.in_flight) {
                (Some((at, outcome)), _) if at.elapsed() < cache_for => {
                    return (outcome.clone(), false);
                }
                (_, Some(run)) => (run.clone(), false),
                _ => {
                    let run = self.start(check, db, cache, slot.clone());
                    state.in_flight = Some(run.clone());
                    (run, true)
                }
            }
        };
        (run.await, fresh)
    }

    /// Spawns one run of `check`; the returned future records its outcome in `slot`.
    fn start(&self, check: Check, db: &Db, cache: &Cache, slot: Arc<Slot>) -> Run {
        let timeout = Duration::from_millis(self.settings.timeout_ms(check));
        let probe = Probe::new(check, db, cache);
        let sanitiser = self.sanitiser.clone();
        // The deadline runs from the request that asked, not from when the task first runs:
        // on a busy runtime a spawned task can wait its turn for milliseconds.
        let started = Instant::now();
        let deadline = started + timeout;
        let task = tokio::spawn(async move {
            let result = tokio::time::timeout_at(deadline + BACKSTOP, probe.run(deadline))
                .await
                .unwrap_or(Err(Failure::Timeout));
            outcome(result, started.elapsed(), timeout, &sanitiser)
        });
        async move {
            let outcome = Arc::new(task.await.unwrap_or_else(|e| Outcome {
                status: Status::Error,
                duration_ms: 0.0,
                error: Some(format!("check task failed: {e}")),
                finished_at: SystemTime::now(),
            }));
            slot.complete(outcome.clone());
            outcome
        }
        .boxed()
        .shared()
    }
}

/// Owned pool handles for one run, so it can outlive the request that started it.
enum Probe {
    Database(crate::pools::PgLazy),
    Redis(crate::pools::RedisLazy),
}

impl Probe {
    fn new(check: Check, db: &Db, cache: &Cache) -> Probe {
        match check {
            Check::Database => Probe::Database((**db).clone()),
            Check::Redis => Probe::Redis((**cache).clone()),
        }
    }

    async fn run(self, deadline: Instant) -> Result<(), Failure> {
        match self {
            Probe::Database(db) => probe::database(db, deadline).await,
            Probe::Redis(pool) => probe::redis(pool, deadline).await,
        }
    }
}

/// Turns a probe's result into an [`Outcome`], sanitising any text.
fn outcome(
    result: Result<(), Failure>,
    took: Duration,
    timeout: Duration,
    sanitiser: &Sanitiser,
) -> Outcome {
    let (status, error) = match result {
        Ok(()) => (Status::Ok, None),
        Err(Failure::Error(text) | Failure::Stale(text)) => {
            (Status::Error, Some(sanitiser.clean(&text)))
        }
        Err(Failure::Timeout) => (
            Status::Timeout,
            Some(format!("no answer within {} ms", timeout.as_millis())),
        ),
    };
    Outcome {
        status,
        // Rounded to the microsecond: finer digits are noise.
        duration_ms: (took.as_secs_f64() * 1e6).round() / 1e3,
        error,
        finished_at: SystemTime::now(),
    }
}

/// Builds [`Health`] from the loaded [`Settings`] and the pool URLs.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Health Checks", |rocket| async {
        let settings = rocket
            .state::<Settings>()
            .map(|s| s.health.clone())
            .unwrap_or_default();
        let health = Health::new(
            settings,
            pool_urls(rocket.figment()).iter().map(String::as_str),
        );
        rocket.manage(health)
    })
}

fn pool_urls(figment: &Figment) -> Vec<String> {
    ["databases.postgres.url", "databases.redis.url"]
        .iter()
        .filter_map(|key| figment.extract_inner::<String>(key).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_deadline() {
        let o = outcome(
            Err(Failure::Timeout),
            Duration::from_millis(101),
            Duration::from_millis(100),
            &Sanitiser::default(),
        );
        assert_eq!(o.status, Status::Timeout);
        assert_eq!(o.error.as_deref(), Some("no answer within 100 ms"));
    }

    #[test]
    fn an_error_is_sanitised() {
        let s = Sanitiser::new(["postgres://u:pw@h/d"]);
        let o = outcome(
            Err(Failure::Error("bad pw\nat postgres://u:pw@h/d".into())),
            Duration::from_micros(1234),
            Duration::from_secs(1),
            &s,
        );
        assert_eq!(o.status, Status::Error);
        assert_eq!(o.error.as_deref(), Some("bad *** at postgres://u:***@h/d"));
        assert_eq!(o.duration_ms, 1.234);
    }

    #[test]
    fn history_keeps_the_latest_runs_and_the_time_of_change() {
        let slot = Slot::default();
        let run = |status, secs| {
            Arc::new(Outcome {
                status,
                duration_ms: 1.0,
                error: None,
                finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            })
        };
        slot.complete(run(Status::Ok, 1));
        slot.complete(run(Status::Ok, 2));
        slot.complete(run(Status::Error, 3));
        for i in 0..HISTORY_LEN as u64 {
            slot.complete(run(Status::Error, 4 + i));
        }
        let state = slot.lock();
        assert_eq!(state.history.len(), HISTORY_LEN);
        assert_eq!((state.runs, state.runs_ok), (HISTORY_LEN as u64 + 3, 2));
        assert_eq!(
            state.changed_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(3))
        );
    }
}
