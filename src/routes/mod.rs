//! The HTTP surface: which handlers are mounted where, and the catchers behind them.
//!
//! `health` holds the probe endpoints; the JSON catchers come from `error`.

mod health;

use rocket::fairing::AdHoc;

/// Mounts the health routes and the JSON catchers at `/`.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Health Routes", |rocket| async {
        rocket
            .mount("/", health::routes())
            .register("/", crate::error::catchers())
    })
}
