//! [`Health`]: the one place checks run and their results are kept.
//!
//! Per registered check, a slot holds the latest outcome, the run in flight (if any) and a
//! bounded history. Asking for a check reuses the latest outcome while it is younger than
//! `cache_ms`, else joins the run in flight, else starts one. So concurrent probes cost one run
//! per check, whatever their number. A run is a spawned task bounded by its deadline that
//! completes its own slot, logs its line and hands its outcome to the [`Recorder`] (metrics):
//! callers only wait for it, and one that gives up loses nothing.
//!
//! In a running service ([`Health::isolated`]) each check's runs happen on a thread of its own
//! (a [`Lane`]), and subscribers on another: neither the app's workers, nor the health
//! listener's thread, nor each other's. A check that blocks its thread stalls only itself, on
//! one CPU too. Each caller bounds its own wait by the run's deadline plus [`BACKSTOP`] and
//! [`CALLER_SLACK`], so no answer waits on a check that ignores its deadline; such a run stays
//! the one in flight (no second run starts beside it), shows as overdue, and each deadline it
//! misses counts as a failed run ([`Slot::miss`]), so a wedged check is failing after
//! `fail_after` deadlines. A run's own deadline starts when its task first runs: time spent
//! waiting for a thread is never counted against the dependency.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use futures::future::{join_all, FutureExt};
use tokio::runtime::Handle;
use tokio::time::Instant;

mod runtime;

pub(crate) use runtime::checks_runtime;
use runtime::Lane;

use super::events::Events;
use super::registry::{Registered, Registry};
use super::slot::{Flight, History, InFlight, Missed, Slot};
use super::timer::Timer;
use super::{Check, Entry, Failure, Reason, Report, Run, RunOutcome, RunStatus, Verdict};
use crate::redact::{panic_message, Sanitiser};

/// Slack past a check's deadline before the backstop timeout cancels the check outright; the
/// built-in kinds honour the deadline themselves so they can drop a half-used connection.
pub(super) const BACKSTOP: Duration = Duration::from_millis(20);

/// Slack past the backstop before a caller stops waiting for a run that its own task could
/// not end (a check that blocks its thread): the caller answers `timeout` itself.
pub(super) const CALLER_SLACK: Duration = Duration::from_millis(10);

/// Told of every completed run, and whether it changed the check's counted state, from the
/// run's own task (the metrics stage installs one).
pub(crate) type Recorder = Arc<dyn Fn(&str, &RunOutcome, bool) + Send + Sync>;

/// The readiness engine, in managed state. Runs checks when a probe asks, or on a timer
/// ([`Timer`]). Clones share everything (the health port's router holds one).
#[derive(Clone)]
pub(crate) struct Health {
    pub(super) registry: Arc<Registry>,
    pub(super) slots: Arc<[Arc<Slot>]>,
    cache_for: Duration,
    pub(super) timer: Option<Timer>,
    sanitiser: Sanitiser,
    recorder: Recorder,
    pub(super) events: Arc<Events>,
    started: Arc<AtomicBool>,
    booted_at: SystemTime,
    /// Where timers (and runs without a lane) are spawned; the asking request's runtime
    /// when `None`.
    pub(super) runs_on: Option<Handle>,
    /// A thread per check and one for subscribers, when isolated.
    lanes: Arc<Lanes>,
    /// Set once the timers must stop (Rocket shut down).
    pub(super) halt: Arc<tokio::sync::watch::Sender<bool>>,
}

/// The threads of an isolated engine: the check at index `i` runs on `checks[i]`.
#[derive(Debug, Default)]
struct Lanes {
    checks: Vec<Option<Lane>>,
    events: Option<Lane>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("registry", &self.registry)
            .field("cache_for", &self.cache_for)
            .field("timer", &self.timer)
            .finish()
    }
}

impl Health {
    /// An engine over `registry` with no results yet.
    pub fn new(registry: Registry, cache_ms: u64, recorder: Recorder) -> Health {
        Health {
            sanitiser: Sanitiser::new(registry.secrets()),
            slots: registry.checks.iter().map(|_| Arc::default()).collect(),
            registry: Arc::new(registry),
            cache_for: Duration::from_millis(cache_ms),
            timer: None,
            recorder,
            events: Arc::default(),
            started: Arc::new(AtomicBool::new(false)),
            booted_at: SystemTime::now(),
            runs_on: None,
            lanes: Arc::default(),
            halt: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Gives each check a thread of its own for its runs, and the subscribers one more, all
    /// beside `runtime` (in a service, [`checks_runtime`]), which runs the timers: the running
    /// service's way (see the module's documentation).
    pub fn isolated(mut self, runtime: Option<Handle>) -> Health {
        self.runs_on = runtime;
        self.lanes = Arc::new(Lanes {
            checks: self
                .slots
                .iter()
                .map(|_| Lane::new("vitals-check"))
                .collect(),
            events: Lane::new("vitals-events"),
        });
        self
    }

    /// Where the subscribers' tasks go: their lane, else the shared runtime.
    pub(super) fn events_runtime(&self) -> Option<&Handle> {
        match &self.lanes.events {
            Some(lane) => Some(lane.handle()),
            None => self.runs_on.as_ref(),
        }
    }

    /// Stops the timers for good (Rocket shut down): their runs end, and with the last
    /// clone of the engine go its lanes and pools.
    pub fn halt(&self) {
        self.halt.send_replace(true);
    }

    /// Spawns every run on `runtime` instead of the asking request's runtime, no lanes.
    #[cfg(test)]
    pub fn spawning_on(mut self, runtime: Option<Handle>) -> Health {
        self.runs_on = runtime;
        self
    }

    /// The names of the checks whose run in flight has outlived its deadline (and the
    /// backstop): a check that ignores its deadline, typically by blocking its thread.
    pub fn overdue(&self) -> Vec<Arc<str>> {
        let now = Instant::now();
        self.slots
            .iter()
            .zip(&self.registry.checks)
            .filter(|(slot, _)| {
                slot.lock()
                    .in_flight
                    .as_ref()
                    .is_some_and(|flight| now > flight.deadline + BACKSTOP)
            })
            .map(|(_, check)| check.name.clone())
            .collect()
    }

    /// The registered checks.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether a full readiness evaluation has passed since the process started.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// When the engine was created (process start, for uptime).
    pub fn booted_at(&self) -> SystemTime {
        self.booted_at
    }

    /// The last change and recent runs of the check at `index`.
    pub fn history(&self, index: usize) -> History {
        self.slots[index].history()
    }

    /// What a probe would see of each check that has run, without running anything: the
    /// latest result, or, for a run past its deadline or a timer result past `max_age`, that
    /// failure, counted ([`Health::now`]).
    pub fn latest_entries(&self) -> Vec<Entry> {
        (0..self.slots.len())
            .filter_map(|index| Some(self.entry(index, self.now(index)?)))
            .collect()
    }

    /// The verdict a probe would get now, without running anything; `None` until each check
    /// has run once.
    #[cfg(test)]
    pub fn latest_verdict(&self) -> Option<Verdict> {
        let entries = self.latest_entries();
        (entries.len() == self.slots.len()).then(|| Verdict::of(&entries))
    }

    /// What a probe would see of the check at `index` now without running it: its missed
    /// deadlines or its staleness counted and told first. `None` before its first result.
    pub fn now(&self, index: usize) -> Option<Arc<RunOutcome>> {
        if let Some(missed) = self.count_missed(index) {
            return Some(missed);
        }
        if let Some(stale) = self.count_stale(index) {
            return Some(stale);
        }
        // Only the latest result: `history` would copy the whole run list.
        Some(self.slots[index].lock().latest.as_ref()?.1.clone())
    }

    /// Counts the deadlines the check's run in flight has missed (see [`Slot::miss`]) and
    /// tells of them like of any run: log line, metrics, change. What a probe sees of it;
    /// `None` while no run is past its own deadline.
    fn count_missed(&self, index: usize) -> Option<Arc<RunOutcome>> {
        let check = &self.registry.checks[index];
        let timeout = check.timeout;
        let missed = self.slots[index].miss(
            Instant::now(),
            timeout,
            BACKSTOP,
            check.thresholds,
            |going, deadlines| overdue(timeout, going, deadlines, check.thresholds),
        )?;
        Some(self.told(index, missed))
    }

    /// Counts a timer result older than `max_age` as failed runs (see [`Slot::stale`]), told
    /// like any run. `None` outside timer mode or while the result is young enough.
    fn count_stale(&self, index: usize) -> Option<Arc<RunOutcome>> {
        let timer = self.timer?;
        let check = &self.registry.checks[index];
        let missed = self.slots[index].stale(timer.max_age, check.thresholds, |latest, age| {
            stale(latest, age, timer.max_age)
        })?;
        Some(self.told(index, missed))
    }

    /// Logs, records and tells a failure counted without a run ending, if it counted now.
    fn told(&self, index: usize, missed: Missed) -> Arc<RunOutcome> {
        if missed.counted > 0 {
            let name = &self.registry.checks[index].name;
            log_run(name, &missed.outcome);
            (self.recorder)(name, &missed.outcome, missed.transition.is_some());
            if let Some(transition) = missed.transition {
                self.tell(index, transition);
            }
        }
        missed.outcome
    }

    /// Evaluates every check.
    pub async fn evaluate_all(&self) -> Report {
        let all: Vec<usize> = (0..self.slots.len()).collect();
        self.evaluate(&all).await
    }

    /// Evaluates the checks at `indices` concurrently and aggregates a [`Report`]. Answers
    /// within the largest deadline among them (plus scheduling slack); in timer mode at once,
    /// from the latest results.
    pub async fn evaluate(&self, indices: &[usize]) -> Report {
        let entries = join_all(
            indices
                .iter()
                .map(|&index| async move { self.entry(index, self.outcome(index).await) }),
        )
        .await;
        let verdict = Verdict::of(&entries);
        if verdict.is_serving() && indices.len() == self.slots.len() {
            self.started.store(true, Ordering::Release);
        }
        Report { verdict, entries }
    }

    fn entry(&self, index: usize, outcome: Arc<RunOutcome>) -> Entry {
        let check = &self.registry.checks[index];
        Entry {
            index,
            name: check.name.clone(),
            component: check.check.component_type(),
            critical: check.critical,
            outcome,
        }
    }

    /// The outcome for the check at `index`: cached, shared or fresh, and never later than
    /// the run's deadline plus the backstop and [`CALLER_SLACK`]. In timer mode, the latest
    /// result (or `stale`) once there is one.
    async fn outcome(&self, index: usize) -> Arc<RunOutcome> {
        if self.timer.is_some() {
            if let Some(now) = self.now(index) {
                return now;
            }
        }
        let slot = &self.slots[index];
        let (deadline, run) = {
            let mut state = slot.lock();
            match (&state.latest, &state.in_flight) {
                (Some((at, outcome)), None) if at.elapsed() < self.cache_for => {
                    return outcome.clone();
                }
                (_, Some(flight)) => (flight.deadline, flight.run.clone()),
                _ => {
                    let flight = self.start(index);
                    let joined = (flight.deadline, flight.run.clone());
                    state.in_flight = Some(flight);
                    joined
                }
            }
        };
        match tokio::time::timeout_at(deadline + BACKSTOP + CALLER_SLACK, run).await {
            Ok(outcome) => outcome,
            // The run's own task could not end it (its thread is blocked, or it has not had
            // one yet): it stays in flight, so no second run starts beside it, and this
            // caller answers without it.
            Err(_) => self.unfinished(index),
        }
    }

    /// What a caller that stopped waiting answers for the check at `index`: the missed
    /// deadline, counted, when the run is past its own; else a timeout that is not the
    /// dependency's (the run waited for its thread), which counts nothing.
    pub(super) fn unfinished(&self, index: usize) -> Arc<RunOutcome> {
        if let Some(missed) = self.count_missed(index) {
            return missed;
        }
        let slot = &self.slots[index];
        let timeout = self.registry.checks[index].timeout;
        let (passing, held) = (slot.passing(), None);
        Arc::new(RunOutcome {
            status: RunStatus::Timeout,
            duration_ms: timeout.as_millis() as f64,
            reason: Some(Reason::Timeout),
            error: Some(format!(
                "no answer within {} ms: the run waited for a thread and is still going \
                 (not counted against the check)",
                timeout.as_millis()
            )),
            busy_pool: false,
            certificate_expires: None,
            passing,
            held,
            finished_at: SystemTime::now(),
        })
    }

    /// Spawns one run of the check at `index`. The task records the run wherever it is kept;
    /// the returned future only waits for it.
    pub(super) fn start(&self, index: usize) -> Flight {
        let Registered { check, timeout, .. } = &self.registry.checks[index];
        let (check, timeout) = (check.clone(), *timeout);
        // Callers wait from the request that asked; the run's own deadline starts when its
        // task first runs, so waiting for a thread is never the dependency's failure.
        let asked = Instant::now();
        let began = Arc::new(OnceLock::new());
        let mut completion = Completion {
            health: self.clone(),
            index,
            started: asked,
            done: false,
        };
        let sanitiser = self.sanitiser.clone();
        let beginning = began.clone();
        let task = async move {
            let started = Instant::now();
            let _ = beginning.set(started);
            completion.started = started;
            let deadline = started + timeout;
            let run = Run::new(deadline);
            // A panicking check is a failed run, not a slot stuck "in flight".
            let checked = AssertUnwindSafe(check.run(&run)).catch_unwind();
            let result = match tokio::time::timeout_at(deadline + BACKSTOP, checked).await {
                // A check that blocked its thread past the deadline answered too late to count.
                Ok(_) if Instant::now() > deadline + BACKSTOP => Err(Failure::timeout()),
                Ok(Ok(result)) => result,
                Ok(Err(payload)) => Err(Failure::error(format!(
                    "the check panicked: {}",
                    panic_message(&*payload)
                ))),
                Err(_) => Err(Failure::timeout()),
            };
            let mut outcome = outcome(
                result,
                started.elapsed(),
                timeout,
                run.was_beside_busy_pool(),
                &sanitiser,
            );
            outcome.certificate_expires = run.certificate_expiry();
            completion.complete(outcome)
        };
        let lane = self.lanes.checks.get(index).and_then(Option::as_ref);
        let task = match (lane, &self.runs_on) {
            (Some(lane), _) => lane.handle().spawn(task),
            (None, Some(runtime)) => runtime.spawn(task),
            (None, None) => tokio::spawn(task),
        };
        let in_flight: InFlight = async move {
            // A cancelled task has completed its slot already (see `Completion`).
            task.await
                .unwrap_or_else(|e| Arc::new(cancelled(format!("the check run ended: {e}"))))
        }
        .boxed()
        .shared();
        Flight::new(asked + timeout, in_flight, began)
    }
}

/// Completes a run's slot, logs its line, records it and tells of a change, exactly once:
/// with the run's outcome, or, when the task is dropped before that (its runtime went away),
/// with an error, so that the next probe starts a fresh run instead of joining a dead one.
struct Completion {
    health: Health,
    index: usize,
    started: Instant,
    done: bool,
}

impl Completion {
    fn complete(&mut self, outcome: RunOutcome) -> Arc<RunOutcome> {
        self.done = true;
        let health = &self.health;
        let check = &health.registry.checks[self.index];
        let (outcome, transition) = health.slots[self.index].complete(outcome, check.thresholds);
        log_run(&check.name, &outcome);
        (health.recorder)(&check.name, &outcome, transition.is_some());
        match transition {
            Some(transition) => health.tell(self.index, transition),
            // A check's first run may complete the first verdict; other runs change nothing.
            None if health.slots[self.index].runs() == 1 => health.tell_verdict(),
            None => {}
        }
        outcome
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.done {
            let mut outcome = cancelled("the check run was cancelled".into());
            outcome.duration_ms = self.started.elapsed().as_secs_f64() * 1e3;
            self.complete(outcome);
        }
    }
}

/// What a probe sees of a check whose run has been `going` past its deadline (`deadlines`
/// of them missed, each counted as a failed run).
fn overdue(
    timeout: Duration,
    going: Duration,
    deadlines: u32,
    thresholds: super::slot::Thresholds,
) -> RunOutcome {
    let counted = match deadlines.min(thresholds.fail_after) {
        n if thresholds.fail_after > 1 => {
            format!(
                "; counted as {n} of the {} failed runs",
                thresholds.fail_after
            )
        }
        _ => String::new(),
    };
    RunOutcome {
        status: RunStatus::Timeout,
        duration_ms: (going.as_secs_f64() * 1e6).round() / 1e3,
        reason: Some(Reason::Timeout),
        error: Some(format!(
            "no answer within {} ms (the run is still going after {} ms{counted})",
            timeout.as_millis(),
            going.as_millis()
        )),
        busy_pool: false,
        certificate_expires: None,
        // Set by the slot, which knows the counted state.
        passing: false,
        held: None,
        finished_at: SystemTime::now(),
    }
}

/// What a probe sees of a check whose latest result is older than `max_age` (timer mode):
/// failing, reason `stale`, whatever that result said.
fn stale(latest: &RunOutcome, age: Duration, max_age: Duration) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Error,
        duration_ms: latest.duration_ms,
        reason: Some(Reason::Stale),
        error: Some(format!(
            "no result for {} ms (health.max_age_ms = {}); the last one said {}",
            age.as_millis(),
            max_age.as_millis(),
            latest.status.as_str()
        )),
        busy_pool: false,
        certificate_expires: latest.certificate_expires,
        passing: false,
        held: None,
        finished_at: latest.finished_at,
    }
}

/// The outcome of a run that never finished.
fn cancelled(error: String) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Error,
        duration_ms: 0.0,
        reason: Some(Reason::Other),
        error: Some(error),
        busy_pool: false,
        certificate_expires: None,
        passing: false,
        held: None,
        finished_at: SystemTime::now(),
    }
}

/// Runs `check` once as the engine would (its deadline `timeout` from now, cancelled a few
/// milliseconds later, a panic reported as a failure), without a server or a registry: for a
/// host app's unit tests of its own checks. The text is the check's own, not yet sanitised
/// (a panic's message is, as in the engine).
///
/// ```
/// use std::time::Duration;
/// use vitals::{Check, Failure, Run};
///
/// struct AlwaysDown;
///
/// #[rocket::async_trait]
/// impl Check for AlwaysDown {
///     async fn run(&self, _: &Run) -> Result<(), Failure> {
///         Err(Failure::error("down for maintenance"))
///     }
/// }
///
/// # rocket::async_test(async {
/// let result = vitals::check_once(&AlwaysDown, Duration::from_millis(100)).await;
/// assert_eq!(result.unwrap_err().text(), "down for maintenance");
/// # });
/// ```
pub async fn check_once<C: Check + ?Sized>(check: &C, timeout: Duration) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let run = Run::new(deadline);
    let checked = AssertUnwindSafe(check.run(&run)).catch_unwind();
    match tokio::time::timeout_at(deadline + BACKSTOP, checked).await {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => Err(Failure::error(format!(
            "the check panicked: {}",
            panic_message(&*payload)
        ))),
        Err(_) => Err(Failure::timeout()),
    }
}

/// One line per completed run, at the normal level.
fn log_run(name: &str, o: &RunOutcome) {
    let error = o.error.as_deref().unwrap_or("");
    log::info!(
        target: "vitals::check",
        check = name,
        status = o.status.as_str(),
        duration_ms = o.duration_ms,
        busy_pool = o.busy_pool,
        error = error;
        "check {name} {} in {:.3} ms{}{}",
        o.status.as_str(), o.duration_ms,
        if error.is_empty() { "" } else { ": " }, error
    );
}

/// Turns a check's result into an [`RunOutcome`], sanitising any text.
fn outcome(
    result: Result<(), Failure>,
    took: Duration,
    timeout: Duration,
    busy_pool: bool,
    sanitiser: &Sanitiser,
) -> RunOutcome {
    let (status, reason, error) = match result {
        Ok(()) => (RunStatus::Ok, None, None),
        // The engine words a bare timeout; a check's own words are kept.
        Err(f) if f.reason() == Reason::Timeout => (
            RunStatus::Timeout,
            Some(Reason::Timeout),
            Some(match f.text() {
                "" => format!("no answer within {} ms", timeout.as_millis()),
                text => sanitiser.clean(text),
            }),
        ),
        Err(f) => (
            RunStatus::Error,
            Some(f.reason()),
            Some(sanitiser.clean(f.text())),
        ),
    };
    RunOutcome {
        status,
        reason,
        // Rounded to the microsecond: finer digits are noise.
        duration_ms: (took.as_secs_f64() * 1e6).round() / 1e3,
        error,
        busy_pool,
        certificate_expires: None,
        // Set by the slot, which knows the counted state.
        passing: false,
        held: None,
        finished_at: SystemTime::now(),
    }
}

#[cfg(test)]
mod tests;
