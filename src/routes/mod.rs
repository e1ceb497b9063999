//! The HTTP surface: which handlers are mounted where, and the catchers behind them.
//!
//! `health` holds the probe endpoints as functions both front ends call (Rocket's routes
//! here, the health port's router in `listener`), `ask` what a request brings them, `forms`
//! the three forms of their answers and `uri` the reading of paths and queries. Every answer
//! is a `crate::reply::Reply`; the JSON catchers come from `error`.

mod ask;
mod forms;
mod health;
mod uri;

pub(crate) use ask::Ask;
pub(crate) use forms::Form;
pub(crate) use health::{live, ready, ready_one, startup, summary, Service};
pub(crate) use uri::{excluded, segments, verbose};

use rocket::fairing::AdHoc;

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
