//! The probe endpoints: `/health/live`, `/health/ready`, `/health/ready/<name>`,
//! `/health/startup` and `/health`. Handlers borrow the pools (`&Db`, `&Cache`) and hand them
//! to the engine, which acquires inside each check's deadline.

use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{get, routes, Route, State};
use serde::Serialize;

use crate::checks::{Check, CheckMap, Health, Report};
use crate::error::Error;
use crate::fairings::record_runs;
use crate::pools::{Cache, Db};
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
    db: &Db,
    cache: &Cache,
) -> Result<Report, Error> {
    // Parsed here rather than by a guard: a catcher could not say which name was wrong.
    let excluded = exclude
        .iter()
        .map(|name| {
            name.parse::<Check>()
                .map_err(|e| Error::UnknownExclude(e.0))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if lifecycle.is_draining() {
        return Ok(Report::draining());
    }
    let checks: Vec<Check> = Check::ALL
        .into_iter()
        .filter(|c| !excluded.contains(c))
        .collect();
    Ok(health.evaluate(&checks, db, cache).await)
}

/// Readiness of one named check.
#[get("/health/ready/<name>")]
async fn ready_one(
    name: &str,
    health: &State<Health>,
    lifecycle: &State<Lifecycle>,
    db: &Db,
    cache: &Cache,
) -> Result<Report, Error> {
    let check = name
        .parse::<Check>()
        .map_err(|e| Error::UnknownCheck(e.0))?;
    if lifecycle.is_draining() {
        return Ok(Report::draining());
    }
    Ok(health.evaluate(&[check], db, cache).await)
}

/// Startup: 503 until readiness has passed once, then 200 for the life of the process.
#[get("/health/startup")]
async fn startup(health: &State<Health>, db: &Db, cache: &Cache) -> Startup {
    if health.is_started() {
        return Startup(None);
    }
    Startup(Some(health.evaluate(&Check::ALL, db, cache).await))
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
        record_runs(req, &self);
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
        if let Some(report) = &self.0 {
            record_runs(req, report);
        }
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
pub fn routes() -> Vec<Route> {
    routes![live, ready, ready_one, startup, summary]
}
