//! Changes told: when a check's counted state or the overall verdict changes, one log line,
//! and each of a host app's subscribers (`Vitals::on_change`) called on a task of its own.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::{BoxFuture, FutureExt};

use super::engine::Health;
use super::slot::Transition;
use super::Verdict;

/// A host app's subscriber to changes (`Vitals::on_change`).
pub(crate) type Subscriber = Arc<dyn Fn(Change) -> BoxFuture<'static, ()> + Send + Sync>;

/// A change of a check's counted state (passing or failing) or of the overall verdict, as
/// subscribers are told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The check whose state changed; `None` for the overall verdict.
    pub check: Option<String>,
    /// The state before: `passing`/`failing` for a check, `ready`/`degraded`/`unavailable` for
    /// the verdict.
    pub from: &'static str,
    /// The state now.
    pub to: &'static str,
    /// How long the state before lasted.
    pub lasted: Duration,
}

/// What changes are told to: the log, the subscribers, and the overall verdict last told.
#[derive(Default)]
pub(super) struct Events {
    subscribers: Vec<Subscriber>,
    /// The verdict of the counted states as last told, and since when.
    verdict: Mutex<Option<(Verdict, SystemTime)>>,
}

impl Health {
    /// Tells `subscribers` of every change, each on a task of its own.
    pub fn telling(mut self, subscribers: Vec<Subscriber>) -> Health {
        self.events = Arc::new(Events {
            subscribers,
            verdict: Mutex::new(None),
        });
        self
    }

    /// Tells the log and the subscribers of a check's change, then of the verdict's, if the
    /// counted states now make another one.
    pub(super) fn tell(&self, index: usize, transition: Transition) {
        let name = &self.registry.checks[index].name;
        let (from, to) = match transition.passing {
            true => ("failing", "passing"),
            false => ("passing", "failing"),
        };
        let lasted = transition.lasted;
        if transition.passing {
            log::info!(
                target: "vitals::check",
                check = &**name, from = from, to = to, lasted_ms = lasted.as_millis() as u64;
                "check {name} is {to} again, after {from} for {}", human(lasted)
            );
        } else {
            log::warn!(
                target: "vitals::check",
                check = &**name, from = from, to = to, lasted_ms = lasted.as_millis() as u64;
                "check {name} is {to}, after {from} for {}", human(lasted)
            );
        }
        self.notify(Change {
            check: Some(name.to_string()),
            from,
            to,
            lasted,
        });
        self.tell_verdict();
    }

    /// Logs and tells a change of the verdict the counted states make.
    pub(super) fn tell_verdict(&self) {
        // No verdict until every check has run once: a check not yet run is no failure.
        let Some(passing) = self
            .slots
            .iter()
            .zip(&self.registry.checks)
            .map(|(slot, check)| Some((slot.counted()?, check.critical)))
            .collect::<Option<Vec<(bool, bool)>>>()
        else {
            return;
        };
        let verdict = match passing.iter().find(|(ok, _)| !ok) {
            None => Verdict::Ready,
            Some(_) if passing.iter().any(|(ok, critical)| !ok && *critical) => {
                Verdict::Unavailable
            }
            Some(_) => Verdict::Degraded,
        };
        let now = SystemTime::now();
        let before = {
            let mut last = self
                .events
                .verdict
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match *last {
                Some((v, _)) if v == verdict => return,
                before => {
                    *last = Some((verdict, now));
                    before
                }
            }
        };
        let Some((from, since)) = before else {
            return; // the first verdict is no change
        };
        let lasted = now.duration_since(since).unwrap_or_default();
        let (from, to) = (from.as_str(), verdict.as_str());
        match verdict.is_serving() {
            true => log::info!(
                target: "vitals::check",
                from = from, to = to, lasted_ms = lasted.as_millis() as u64;
                "readiness is {to}, after {from} for {}", human(lasted)
            ),
            false => log::warn!(
                target: "vitals::check",
                from = from, to = to, lasted_ms = lasted.as_millis() as u64;
                "readiness is {to}, after {from} for {}", human(lasted)
            ),
        }
        self.notify(Change {
            check: None,
            from,
            to,
            lasted,
        });
    }

    /// Hands `change` to each subscriber on a task of its own, on the subscribers' own thread
    /// in a service: a slow, blocking or panicking subscriber delays only the other
    /// subscribers and breaks nothing (a panic ends only its task).
    fn notify(&self, change: Change) {
        for subscriber in &self.events.subscribers {
            let (subscriber, change) = (subscriber.clone(), change.clone());
            // Called on the task too: even making the future may block.
            let told = async move {
                let told = AssertUnwindSafe(async move { subscriber(change).await });
                if told.catch_unwind().await.is_err() {
                    log::warn!(target: "vitals::check", "a change subscriber panicked");
                }
            };
            match self.events_runtime() {
                Some(runtime) => drop(runtime.spawn(told)),
                None => drop(tokio::spawn(told)),
            }
        }
    }
}

/// A duration as people read it: `950 ms`, `42 s`, `5 min`, `3 h`.
fn human(d: Duration) -> String {
    match d.as_secs() {
        0 => format!("{} ms", d.as_millis()),
        s @ 1..=119 => format!("{s} s"),
        s @ 120..=7199 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}
