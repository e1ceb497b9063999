//! The panic hook for vitals' own threads: a check (or an `on_change` subscriber) that panics
//! is a failed run, and its message, which may name a URL with its password, reaches stderr
//! only sanitised. Panics on every other thread go to the hook that was there before.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write as _;
use std::panic::PanicHookInfo;
use std::sync::Once;

/// Whether a thread called `name` is one of vitals' check threads (`vitals-check`, a lane;
/// `vitals-checks`, the shared runtime) or its subscribers' (`vitals-events`).
fn is_ours(name: &str) -> bool {
    name.starts_with("vitals-check") || name == "vitals-events"
}

/// Installs the hook once per process, in front of the one the host (or std) set.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            let thread = std::thread::current();
            match thread.name().filter(|name| is_ours(name)) {
                Some(name) => report(name, info),
                None => previous(info),
            }
        }));
    });
}

/// What std's own hook prints, with the message sanitised.
fn report(thread: &str, info: &PanicHookInfo<'_>) {
    let message = crate::redact::panic_message(info.payload());
    let at = info
        .location()
        .map_or_else(String::new, |l| format!(" at {l}"));
    let mut text = format!("\nthread '{thread}' panicked{at}:\n{message}\n");
    let backtrace = Backtrace::capture();
    if backtrace.status() == BacktraceStatus::Captured {
        text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
    }
    // A closed stderr must not turn a check's panic into an abort.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_subscriber_threads_are_ours_and_others_are_not() {
        for name in ["vitals-check", "vitals-checks", "vitals-events"] {
            assert!(is_ours(name), "{name}");
        }
        for name in [
            "main",
            "rocket-worker-thread",
            "vitals-health",
            "tokio-runtime-worker",
        ] {
            assert!(!is_ours(name), "{name}");
        }
    }
}
