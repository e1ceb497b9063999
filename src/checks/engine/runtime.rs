//! The runtime check runs are spawned on in a running service: vitals' own, made on first
//! use, never shut down, and a polite neighbour of the app's threads.

use std::sync::OnceLock;

use tokio::runtime::Handle;

/// Worker threads of [`checks_runtime`]: two, so one check that blocks a thread leaves the
/// others running, but never more than the CPUs the process may use (its affinity and cgroup
/// quota): on one CPU a second worker only competes with the app's for it (the benchmark:
/// readiness at 1.43x liveness's CPU per request with two there, 1.34x with one).
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

/// The runtime check runs are spawned on in a running service, made on first use. It is
/// never shut down: a connection a check opened may be reused by a host's handlers until the
/// process ends, and its I/O is driven here. `None` when it cannot be made (then runs are
/// spawned on the asking request's runtime, as the engine's tests do).
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
}
