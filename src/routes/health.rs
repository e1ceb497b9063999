//! The probe endpoints: `/health/live`, `/health/ready`, `/health/ready/<name>`,
//! `/health/startup` and `/health`. Handlers name the checks to run; the engine runs them, each
//! check holding its own pool handle and acquiring inside its deadline.

use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{get, routes, Route, State};
use serde::Serialize;

use crate::checks::{CheckMap, Health, Report};
use crate::error::Error;
use crate::shutdown::Lifecycle;

/// Liveness: the process answers. Never touches a dependency; a constant body, since this is
/// the endpoint probed most often.
#[get("/health/live")]
fn live() -> (ContentType, &'static str) {
    (ContentType::JSON, r#"{"status":"ok"}"#)
}

/// Readiness: every check not excluded, 200 when the critical ones pass, else 503.
#[get("/health/ready?<exclude>")]
async fn ready(
    exclude: Vec<String>,
    health: &State<Health>,
    lifecycle: &State<Lifecycle>,
) -> Result<Report, Error> {
    let registry = health.registry();
    // Parsed here rather than by a guard: a catcher could not say which name was wrong.
    let excluded = exclude
        .iter()
        .map(|name| {
            registry
                .index_of(name)
                .ok_or_else(|| Error::UnknownExclude(name.clone(), registry.names()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if lifecycle.is_draining() {
        return Ok(Report::draining());
    }
    let checks: Vec<usize> = (0..registry.checks.len())
        .filter(|i| !excluded.contains(i))
        .collect();
    Ok(health.evaluate(&checks).await)
}

/// Readiness of one named check.
#[get("/health/ready/<name>")]
async fn ready_one(
    name: &str,
    health: &State<Health>,
    lifecycle: &State<Lifecycle>,
) -> Result<Report, Error> {
    let registry = health.registry();
    let check = registry
        .index_of(name)
        .ok_or_else(|| Error::UnknownCheck(name.to_owned(), registry.names()))?;
    if lifecycle.is_draining() {
        return Ok(Report::draining());
    }
    Ok(health.evaluate(&[check]).await)
}

/// Startup: 503 until readiness has passed once, then 200 for the life of the process.
#[get("/health/startup")]
async fn startup(health: &State<Health>) -> Startup {
    if health.is_started() {
        return Startup(None);
    }
    Startup(Some(health.evaluate_all().await))
}

/// Service summary, kept for older clients.
#[get("/health")]
fn summary() -> Json<Summary> {
    Json(Summary {
        status: "ok",
        service: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Debug, Serialize)]
struct Summary {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

impl<'r> Responder<'r, 'static> for Report {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = if self.verdict.is_serving() {
            Status::Ok
        } else {
            Status::ServiceUnavailable
        };
        (status, Json(self)).respond_to(req)
    }
}

/// The startup answer: `None` when startup passed before, else the report just made.
struct Startup(Option<Report>);

impl<'r> Responder<'r, 'static> for Startup {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        #[derive(Serialize)]
        struct Body<'a> {
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            checks: Option<CheckMap<'a>>,
        }
        let started = self.0.as_ref().is_none_or(|r| r.verdict.is_serving());
        let (status, word) = match started {
            true => (Status::Ok, "started"),
            false => (Status::ServiceUnavailable, "starting"),
        };
        let body = Body {
            status: word,
            checks: self.0.as_ref().map(|r| CheckMap(&r.entries)),
        };
        (status, Json(body)).respond_to(req)
    }
}

/// The routes of this module.
pub(super) fn routes() -> Vec<Route> {
    routes![live, ready, ready_one, startup, summary]
}
