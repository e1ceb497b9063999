//! A check of the app's own, and a unit test of it without a server.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vitals::{Check, Failure, Reason, Run};

struct Backlog(Arc<AtomicUsize>);

#[rocket::async_trait]
impl Check for Backlog {
    async fn run(&self, _run: &Run) -> Result<(), Failure> {
        std::fs::metadata("/tmp")?; // any error: the reason comes from its kind
        match self.0.load(Ordering::Relaxed) {
            n if n > 100 => Err(Failure::new(
                Reason::Unavailable,
                format!("{n} jobs waiting (limit 100)"),
            )),
            _ => Ok(()),
        }
    }

    fn secrets(&self) -> Vec<String> {
        Vec::new() // e.g. the password of the URL this check connects to
    }
}

#[rocket::main]
async fn main() {
    // `check_once` runs the check as the engine would: deadline, cancellation, panics.
    let backlog = Backlog(Arc::new(AtomicUsize::new(150)));
    let failure = vitals::check_once(&backlog, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(failure.reason(), Reason::Unavailable);
    assert_eq!(failure.text(), "150 jobs waiting (limit 100)");
    println!("backlog check: {} ({})", failure.text(), failure.reason());
}
