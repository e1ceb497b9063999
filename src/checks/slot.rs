//! One check's memory in the engine: the latest result, the run in flight, recent history, and
//! the counted state that the verdict follows.
//!
//! A run's own status can disagree with the check's counted state: with `fail_after = 3`, a
//! passing check counts as failing only after three failed runs in a row, and with
//! `pass_after = 2` a failing one counts as passing only after two ok runs. The first run sets
//! the counted state at once. Each run's outcome carries the counted state after it
//! (`passing`) and, while they disagree, how many more runs would change it (`held`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::RunOutcome;

/// Completed runs kept per check for the status page.
pub(crate) const HISTORY_LEN: usize = 60;

/// How far back the page counts a check's changes.
pub(crate) const CHANGES_WINDOW: Duration = Duration::from_secs(3600);

/// Changes kept for the page's count, however often a check flaps: at one change a second,
/// an hour's worth.
pub(crate) const CHANGES_KEPT: usize = 3600;

/// A run in flight, as its callers wait for it.
pub(crate) type InFlight = Shared<BoxFuture<'static, Arc<RunOutcome>>>;

/// Consecutive runs that change a check's counted state: `fail_after` failed runs make a
/// passing check failing, `pass_after` ok runs make a failing one passing. Both at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thresholds {
    pub fail_after: u32,
    pub pass_after: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            fail_after: 1,
            pass_after: 1,
        }
    }
}

/// A change of a check's counted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    /// The counted state after the change: passing or not.
    pub passing: bool,
    /// How long the state before it lasted.
    pub lasted: Duration,
}

/// The run in flight, as the slot keeps it.
pub(crate) struct Flight {
    /// The asking caller's deadline: callers stop waiting at it (plus slack).
    pub deadline: Instant,
    pub run: InFlight,
    /// When the run's task was first polled: its own deadline runs from there, so time spent
    /// waiting for a thread is never the dependency's. Unset while it waits.
    pub began: Arc<OnceLock<Instant>>,
    /// The deadlines this run has missed so far, each counted as a failed run.
    missed: u32,
}

impl Flight {
    pub fn new(deadline: Instant, run: InFlight, began: Arc<OnceLock<Instant>>) -> Flight {
        Flight {
            deadline,
            run,
            began,
            missed: 0,
        }
    }
}

/// A failed run the slot counted without the run having ended: a deadline the run in flight
/// missed, or a timer result that grew older than `max_age`.
#[derive(Debug)]
pub(crate) struct Missed {
    /// What a probe sees now.
    pub outcome: Arc<RunOutcome>,
    /// The change of the counted state it made, if any.
    pub transition: Option<Transition>,
    /// How many failed runs it counted just now (0: counted before, nothing new).
    pub counted: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Slot(Mutex<SlotState>);

#[derive(Default)]
pub(crate) struct SlotState {
    pub latest: Option<(Instant, Arc<RunOutcome>)>,
    /// The run in flight, if any.
    pub in_flight: Option<Flight>,
    /// Failed runs counted for the latest result's age (timer mode's `stale`).
    stale_counted: u32,
    history: VecDeque<Arc<RunOutcome>>,
    /// The counted state (passing or not) and since when; `None` before the first run.
    counted: Option<(bool, SystemTime)>,
    /// Consecutive runs that disagreed with the counted state.
    streak: u32,
    /// When the counted state changed, within [`CHANGES_WINDOW`].
    changes: VecDeque<SystemTime>,
    runs: u64,
    runs_ok: u64,
}

impl std::fmt::Debug for SlotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotState")
            .field("latest", &self.latest.as_ref().map(|(_, o)| o.status))
            .field("in_flight", &self.in_flight.is_some())
            .field("counted", &self.counted.map(|(p, _)| p))
            .field("history", &self.history.len())
            .finish()
    }
}

/// What the engine remembers of one check.
#[derive(Debug, Clone)]
pub(crate) struct History {
    /// When its counted state last changed (the first run counts as a change).
    pub changed_at: Option<SystemTime>,
    /// How often its counted state changed in the last hour (the first run does not count).
    pub changes_last_hour: usize,
    /// Up to 60 completed runs (`HISTORY_LEN`), oldest first.
    pub recent: Vec<Arc<RunOutcome>>,
    /// Completed runs since the process started.
    pub runs: u64,
    /// Of those, the ones that were `ok`.
    pub runs_ok: u64,
}

impl Slot {
    pub fn lock(&self) -> MutexGuard<'_, SlotState> {
        // A poisoned lock only means a panic elsewhere; the state itself is always whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a completed run: its outcome gains the counted state after it; the change of
    /// that state, if the run made one, comes back too. A run whose missed deadlines were
    /// counted already ([`miss`](Slot::miss)) is kept, not counted again.
    pub fn complete(
        &self,
        mut outcome: RunOutcome,
        thresholds: Thresholds,
    ) -> (Arc<RunOutcome>, Option<Transition>) {
        let mut state = self.lock();
        let ok = outcome.status.is_ok();
        let weight = match state.in_flight.take() {
            Some(flight) if flight.missed > 0 => 0,
            _ => 1,
        };
        let transition = state.count(ok, outcome.finished_at, thresholds, weight);
        (outcome.passing, outcome.held) = state.standing(thresholds, ok);
        let outcome = Arc::new(outcome);
        state.keep(outcome.clone());
        state.runs += 1;
        state.runs_ok += u64::from(ok);
        state.latest = Some((Instant::now(), outcome.clone()));
        state.stale_counted = 0;
        (outcome, transition)
    }

    /// Counts the deadlines the run in flight has missed by `now` as failed runs, one per
    /// `timeout` past its own deadline (`timeout` plus `slack` after it began): a run that
    /// never ends makes the check failing after `fail_after` deadlines, as a failing
    /// dependency would. `make` words the outcome from how long the run has been going and
    /// how many deadlines it missed. `None` while no run is past its own deadline.
    pub fn miss(
        &self,
        now: Instant,
        timeout: Duration,
        slack: Duration,
        thresholds: Thresholds,
        make: impl FnOnce(Duration, u32) -> RunOutcome,
    ) -> Option<Missed> {
        let mut state = self.lock();
        let flight = state.in_flight.as_mut()?;
        let began = *flight.began.get()?;
        let over = now.checked_duration_since(began + timeout + slack)?;
        let due = missed_deadlines(over, timeout);
        let counted = due.saturating_sub(flight.missed);
        flight.missed = flight.missed.max(due);
        let mut outcome = make(now.duration_since(began), due);
        let transition = state.count(false, outcome.finished_at, thresholds, counted);
        (outcome.passing, outcome.held) = state.standing(thresholds, false);
        let outcome = Arc::new(outcome);
        if counted > 0 {
            state.keep(outcome.clone());
            state.latest = Some((Instant::now(), outcome.clone()));
        }
        Some(Missed {
            outcome,
            transition,
            counted,
        })
    }

    /// Counts a timer result older than `max_age` as failed runs, one per `max_age` of age,
    /// so `stale` is counted, told and shown like any failure. `make` words the outcome from
    /// the latest result and its age. `None` while the latest result is young enough (or
    /// there is none).
    pub fn stale(
        &self,
        max_age: Duration,
        thresholds: Thresholds,
        make: impl FnOnce(&RunOutcome, Duration) -> RunOutcome,
    ) -> Option<Missed> {
        let mut state = self.lock();
        let (at, latest) = state.latest.clone()?;
        let age = at.elapsed();
        if age <= max_age {
            return None;
        }
        let due = missed_deadlines(age - max_age, max_age);
        let counted = due.saturating_sub(state.stale_counted);
        state.stale_counted = state.stale_counted.max(due);
        let mut outcome = make(&latest, age);
        let transition = state.count(false, outcome.finished_at, thresholds, counted);
        (outcome.passing, outcome.held) = state.standing(thresholds, false);
        let outcome = Arc::new(outcome);
        if counted > 0 {
            state.keep(outcome.clone());
        }
        Some(Missed {
            outcome,
            transition,
            counted,
        })
    }

    /// Completed runs so far.
    pub fn runs(&self) -> u64 {
        self.lock().runs
    }

    /// Whether the check counts as passing now (before any run: not).
    pub fn passing(&self) -> bool {
        self.counted() == Some(true)
    }

    /// The counted state: passing or not; `None` before the first run.
    pub fn counted(&self) -> Option<bool> {
        self.lock().counted.map(|(passing, _)| passing)
    }

    /// Its history for the page.
    pub fn history(&self) -> History {
        let mut state = self.lock();
        state.forget_old_changes();
        History {
            changed_at: state.counted.map(|(_, since)| since),
            changes_last_hour: state.changes.len(),
            recent: state.history.iter().cloned().collect(),
            runs: state.runs,
            runs_ok: state.runs_ok,
        }
    }
}

/// How many deadlines of `every` fit in `over` past the first one: 1 at the first.
fn missed_deadlines(over: Duration, every: Duration) -> u32 {
    let every = every.as_nanos().max(1);
    u32::try_from(1 + over.as_nanos() / every).unwrap_or(u32::MAX)
}

impl SlotState {
    /// Counts `weight` runs whose own result was `ok` (or not) finished at `at` against the
    /// counted state; the change they make, if any.
    fn count(
        &mut self,
        ok: bool,
        at: SystemTime,
        thresholds: Thresholds,
        weight: u32,
    ) -> Option<Transition> {
        if weight == 0 {
            return None;
        }
        match self.counted {
            None => {
                self.counted = Some((ok, at));
                None
            }
            Some((passing, _)) if passing == ok => {
                self.streak = 0;
                None
            }
            Some((_, since)) => {
                self.streak = self.streak.saturating_add(weight);
                let needed = if ok {
                    thresholds.pass_after
                } else {
                    thresholds.fail_after
                };
                (self.streak >= needed).then(|| {
                    self.counted = Some((ok, at));
                    self.streak = 0;
                    self.changes.push_back(at);
                    // Pruned here too: nobody may ever open the page.
                    self.forget_old_changes();
                    Transition {
                        passing: ok,
                        lasted: at.duration_since(since).unwrap_or_default(),
                    }
                })
            }
        }
    }

    /// Keeps `outcome` among the recent runs.
    fn keep(&mut self, outcome: Arc<RunOutcome>) {
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(outcome);
    }

    /// Drops the changes older than [`CHANGES_WINDOW`], and any beyond [`CHANGES_KEPT`].
    fn forget_old_changes(&mut self) {
        let now = SystemTime::now();
        while self
            .changes
            .front()
            .is_some_and(|at| now.duration_since(*at).unwrap_or_default() > CHANGES_WINDOW)
            || self.changes.len() > CHANGES_KEPT
        {
            self.changes.pop_front();
        }
    }

    /// The counted state, and, while a run whose own result was `ok` disagrees with it, how
    /// many more such runs would change it.
    fn standing(&self, thresholds: Thresholds, ok: bool) -> (bool, Option<u32>) {
        let passing = self.counted.is_some_and(|(p, _)| p);
        if passing == ok {
            return (passing, None);
        }
        let needed = if ok {
            thresholds.pass_after
        } else {
            thresholds.fail_after
        };
        (passing, Some(needed.saturating_sub(self.streak)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::RunStatus;

    fn run(status: RunStatus, secs: u64) -> RunOutcome {
        RunOutcome {
            status,
            duration_ms: 1.0,
            reason: None,
            error: None,
            busy_pool: false,
            certificate_expires: None,
            passing: false,
            held: None,
            finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    const THREE_TWO: Thresholds = Thresholds {
        fail_after: 3,
        pass_after: 2,
    };

    #[test]
    fn the_first_run_sets_the_counted_state_at_once() {
        let slot = Slot::default();
        let (o, t) = slot.complete(run(RunStatus::Error, 1), THREE_TWO);
        assert_eq!((o.passing, o.held, t), (false, None, None));
    }

    #[test]
    fn a_passing_check_fails_only_after_fail_after_failed_runs_in_a_row() {
        let slot = Slot::default();
        slot.complete(run(RunStatus::Ok, 1), THREE_TWO);
        let (o, t) = slot.complete(run(RunStatus::Error, 2), THREE_TWO);
        assert_eq!((o.passing, o.held, t), (true, Some(2), None));
        let (o, _) = slot.complete(run(RunStatus::Timeout, 3), THREE_TWO);
        assert_eq!((o.passing, o.held), (true, Some(1)));
        // An ok run in between starts the count again.
        let (o, _) = slot.complete(run(RunStatus::Ok, 4), THREE_TWO);
        assert_eq!((o.passing, o.held), (true, None));
        for secs in 5..7 {
            assert!(
                slot.complete(run(RunStatus::Error, secs), THREE_TWO)
                    .0
                    .passing
            );
        }
        let (o, t) = slot.complete(run(RunStatus::Error, 7), THREE_TWO);
        assert!(!o.passing);
        assert_eq!(
            t,
            Some(Transition {
                passing: false,
                lasted: Duration::from_secs(6)
            })
        );
        assert_eq!(
            slot.history().changes_last_hour,
            0,
            "1970 is more than an hour ago"
        );
    }

    #[test]
    fn a_failing_check_passes_again_after_pass_after_ok_runs() {
        let slot = Slot::default();
        slot.complete(run(RunStatus::Error, 1), THREE_TWO);
        let (o, t) = slot.complete(run(RunStatus::Ok, 2), THREE_TWO);
        assert_eq!((o.passing, o.held, t.is_some()), (false, Some(1), false));
        let (o, t) = slot.complete(run(RunStatus::Ok, 3), THREE_TWO);
        assert_eq!((o.passing, o.held), (true, None));
        assert!(t.is_some_and(|t| t.passing));
        assert!(slot.passing());
    }

    #[test]
    fn history_keeps_the_latest_runs_and_the_time_of_change() {
        let slot = Slot::default();
        let t = Thresholds::default();
        slot.complete(run(RunStatus::Ok, 1), t);
        slot.complete(run(RunStatus::Ok, 2), t);
        slot.complete(run(RunStatus::Error, 3), t);
        for i in 0..HISTORY_LEN as u64 {
            slot.complete(run(RunStatus::Error, 4 + i), t);
        }
        let history = slot.history();
        assert_eq!(history.recent.len(), HISTORY_LEN);
        assert_eq!((history.runs, history.runs_ok), (HISTORY_LEN as u64 + 3, 2));
        assert_eq!(
            history.changed_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(3))
        );
    }

    #[test]
    fn with_the_defaults_every_run_counts() {
        let slot = Slot::default();
        let t = Thresholds::default();
        slot.complete(run(RunStatus::Ok, 1), t);
        let (o, change) = slot.complete(run(RunStatus::Error, 2), t);
        assert_eq!((o.passing, o.held), (false, None));
        assert!(change.is_some());
    }
}
