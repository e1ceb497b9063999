//! The probe endpoints: `/health/live`, `/health/ready`, `/health/ready/<name>`,
//! `/health/startup` and `/health`. Handlers name the checks to run; the engine runs them, each
//! check holding its own pool handle and acquiring inside its deadline. The answer takes the
//! form the request asked for (`forms`) and shows details only to whom `access` allows.

use rocket::http::ContentType;
use rocket::serde::json::Json;
use rocket::{get, routes, Route, State};
use serde::Serialize;

use super::forms::{Answer, Form, Probe};
use crate::access::Viewer;
use crate::checks::{Health, Report};
use crate::error::Error;
use crate::heartbeat::Stall;
use crate::shutdown::Lifecycle;

/// What `serviceId` and `version` say, in managed state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    pub id: &'static str,
    pub version: &'static str,
}

fn answer(
    probe: Probe,
    report: Option<Report>,
    viewer: Viewer,
    form: Form,
    service: &Service,
) -> Answer {
    Answer {
        probe,
        report,
        stalled: None,
        excluded: Vec::new(),
        viewer,
        form,
        service: *service,
    }
}

/// Liveness: the process answers. Never touches a dependency; the default form is a constant
/// body, since this is the endpoint probed most often. It has no details to show, so it
/// does not look at the token.
///
/// On the health port it answers for the app's runtime too: 503 `stalled` once that runtime has
/// run no task for `health.stall_ms` (see `heartbeat`).
#[get("/health/live")]
fn live(form: Form, service: &State<Service>, stall: Stall) -> Result<Constant, Answer> {
    let nobody = Viewer { details: false };
    match (form, stall.0) {
        (Form::Json, None) => Ok(Constant),
        (form, stalled) => {
            let mut answer = answer(Probe::Live, None, nobody, form, service);
            answer.stalled = stalled;
            Err(answer)
        }
    }
}

/// `{"status":"ok"}` with `Vary: Accept`, without building anything.
struct Constant;

impl<'r> rocket::response::Responder<'r, 'static> for Constant {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        rocket::Response::build_from((ContentType::JSON, r#"{"status":"ok"}"#).respond_to(req)?)
            .raw_header("Vary", "Accept")
            .ok()
    }
}

/// Readiness: every check not excluded, 200 when the critical ones pass, else 503.
#[get("/health/ready?<exclude>")]
async fn ready(
    exclude: Vec<String>,
    health: &State<Health>,
    lifecycle: &State<Lifecycle>,
    viewer: Viewer,
    form: Form,
    service: &State<Service>,
) -> Result<Answer, Error> {
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
    let report = match lifecycle.is_draining() {
        true => Report::draining(),
        false => {
            let checks: Vec<usize> = (0..registry.checks.len())
                .filter(|i| !excluded.contains(i))
                .collect();
            health.evaluate(&checks).await
        }
    };
    let mut answer = answer(Probe::Ready, Some(report), viewer, form, service);
    let mut skipped = excluded;
    skipped.sort_unstable();
    skipped.dedup();
    answer.excluded = skipped
        .into_iter()
        .map(|i| {
            let c = &registry.checks[i];
            (c.name.clone(), c.check.component_type())
        })
        .collect();
    Ok(answer)
}

/// Readiness of one named check.
#[get("/health/ready/<name>")]
async fn ready_one(
    name: &str,
    health: &State<Health>,
    lifecycle: &State<Lifecycle>,
    viewer: Viewer,
    form: Form,
    service: &State<Service>,
) -> Result<Answer, Error> {
    let registry = health.registry();
    let check = registry
        .index_of(name)
        .ok_or_else(|| Error::UnknownCheck(name.to_owned(), registry.names()))?;
    let report = match lifecycle.is_draining() {
        true => Report::draining(),
        false => health.evaluate(&[check]).await,
    };
    Ok(answer(Probe::Ready, Some(report), viewer, form, service))
}

/// Startup: 503 until a full readiness evaluation has passed once, then 200 for the life of
/// the process.
#[get("/health/startup")]
async fn startup(
    health: &State<Health>,
    viewer: Viewer,
    form: Form,
    service: &State<Service>,
) -> Answer {
    let report = match health.is_started() {
        true => None,
        false => Some(health.evaluate_all().await),
    };
    answer(Probe::Startup, report, viewer, form, service)
}

/// Service summary, kept for older clients.
#[get("/health")]
fn summary(service: &State<Service>) -> Json<Summary> {
    Json(Summary {
        status: "ok",
        service: service.id,
        version: service.version,
    })
}

#[derive(Debug, Serialize)]
struct Summary {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

/// The routes of this module.
pub(super) fn routes() -> Vec<Route> {
    crate::fairings::own(routes![live, ready, ready_one, startup, summary])
}
