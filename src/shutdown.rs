//! The process lifecycle as probes see it: serving, then draining before shutdown.
//!
//! Readiness reads [`Lifecycle`] to withdraw the service while it drains; liveness and startup
//! ignore it. What starts a drain (signals) is added on top of this state.

use std::sync::atomic::{AtomicBool, Ordering};

use rocket::fairing::AdHoc;

/// Whether the service is draining, in managed state.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
}

impl Lifecycle {
    /// True once a drain has begun; it never goes back.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the service as draining: readiness answers 503 `draining` from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// Manages the [`Lifecycle`] state.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Lifecycle", |rocket| async {
        rocket.manage(Lifecycle::default())
    })
}
