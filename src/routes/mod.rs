//! The HTTP surface: which handlers are mounted where, and the catchers behind them.
//!
//! `health` holds the probe endpoints, `forms` the three forms of their answers; the JSON
//! catchers come from `error`.

mod forms;
mod health;

pub(crate) use health::Service;

use rocket::fairing::AdHoc;

/// The probe routes, for the health listener's own Rocket.
pub(crate) fn probe_routes() -> Vec<rocket::Route> {
    health::routes()
}

/// Mounts the health routes at `base`, with JSON catchers there (at `/` only for the
/// standalone service: a host app keeps its own).
pub(crate) fn stage(base: &str, standalone: bool) -> AdHoc {
    let base = base.to_owned();
    AdHoc::on_ignite("Health Routes", move |rocket| async move {
        let rocket = rocket.mount(base.as_str(), health::routes());
        match standalone || base != "/" {
            true => rocket.register(base.as_str(), crate::error::catchers()),
            false => rocket,
        }
    })
}
