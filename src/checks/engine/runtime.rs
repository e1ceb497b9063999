//! Where check runs happen in a running service, away from the app's threads: a thread of
//! its own per check (a [`Lane`]), one for `on_change` subscribers, and vitals' shared runtime
//! for the timers. All are polite neighbours of the app's threads.
//!
//! A lane per check is what makes a check that blocks its thread (a synchronous call in async
//! code, a hard NFS mount) harmless to the others on any number of CPUs: it blocks only its
//! own lane, whose deadlines the callers count as missed ([`super::Health`]). Each lane is a
//! current-thread runtime parked in `block_on` until its engine is dropped, so the I/O of the
//! connections its check opened stays driven as long as anything can use them.

use std::sync::OnceLock;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A thread of its own running a current-thread runtime, until the lane is dropped.
pub(crate) struct Lane {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lane")
    }
}

impl Lane {
    /// A lane on a new thread named `name`; `None` (logged) when the system refuses one, and
    /// then the caller falls back to the shared runtime.
    pub fn new(name: &str) -> Option<Lane> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| log::error!(target: "vitals::check", "no runtime for {name}: {e}"))
            .ok()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                yield_to_the_app();
                // Ends when the sender is dropped: the tasks left are cancelled then.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| log::error!(target: "vitals::check", "no thread for {name}: {e}"))
            .ok()?;
        Some(Lane {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Worker threads of [`checks_runtime`] (the timers, and runs when lanes are not used): never
/// more than two, nor than the CPUs the process may use (its affinity and cgroup quota): on
/// one CPU a second worker only competes with the app's for it.
fn check_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// Each check thread asks Linux for `SCHED_BATCH`: the same share of CPU as any thread, but
/// its wake-ups (a reply from a dependency) do not preempt the thread that is running, which
/// on a busy CPU is the app serving a request. Runs end a scheduler tick later under load,
/// more probes join each, and the app's requests are not cut into. The benchmark, one CPU:
/// readiness with `cache_ms = 0` at 1.34x liveness's CPU per request, from 1.65x.
fn yield_to_the_app() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sets the calling thread's own policy (pid 0); only reads `param`.
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if set != 0 {
            log::debug!(
                target: "vitals::check",
                "check thread keeps its scheduling policy: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// vitals' shared runtime in a running service, made on first use: the timers run here. It is
/// never shut down. `None` when it cannot be made (then tasks are spawned on the asking
/// request's runtime, as the engine's tests do).
pub(crate) fn checks_runtime() -> Option<Handle> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(check_workers())
                .thread_name("vitals-checks")
                .on_thread_start(yield_to_the_app)
                .enable_all()
                .build()
                .map_err(|e| log::error!(target: "vitals::check", "no runtime for checks: {e}"))
                .ok()
        })
        .as_ref()
        .map(|runtime| runtime.handle().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn check_threads_run_as_batch_and_no_more_than_the_cpus() {
        let runtime = checks_runtime().expect("a runtime for checks");
        // The task runs on a check thread; this thread only waits for it.
        let policy = runtime.block_on(async {
            tokio::spawn(async {
                // SAFETY: reads the calling thread's own policy.
                unsafe { libc::sched_getscheduler(0) }
            })
            .await
            .unwrap()
        });
        assert_eq!(policy, libc::SCHED_BATCH);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(runtime.metrics().num_workers(), cpus.min(2));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_lane_runs_on_a_thread_of_its_own_until_dropped() {
        let lane = Lane::new("vitals-check").expect("a lane");
        let asking = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let name = asking.block_on(async {
            lane.handle()
                .spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .unwrap()
        });
        assert_eq!(name.as_deref(), Some("vitals-check"));
        let handle = lane.handle().clone();
        drop(lane);
        // Once its thread has left `block_on`, the runtime refuses or cancels new work.
        let after = asking.block_on(async {
            loop {
                match handle.spawn(async {}).await {
                    Ok(()) => tokio::task::yield_now().await,
                    Err(e) => break e,
                }
            }
        });
        assert!(after.is_cancelled());
    }
}
