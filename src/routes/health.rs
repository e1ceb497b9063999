//! The probe endpoints: `/health/live`, `/health/ready`, `/health/ready/<name>`,
//! `/health/startup` and `/health`. Handlers name the checks to run; the engine runs them, each
//! check holding its own pool handle and acquiring inside its deadline. The answer takes the
//! form the request asked for (`forms`) and shows details only to whom `access` allows.

use std::time::Duration;

use rocket::http::Status;
use rocket::{routes, Route};
use serde::Serialize;

use super::ask::Ask;
use super::forms::{Answer, Form, Probe};
use crate::access::Viewer;
use crate::checks::Report;
use crate::error::Error;
use crate::reply::{Body, Reply, JSON};

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

/// `{"status":"ok"}`: liveness in its default form, the endpoint probed most often, built
/// from constants.
const LIVE: &str = r#"{"status":"ok"}"#;

/// Liveness: the process answers. Never touches a dependency. It has no details to show, so
/// it does not look at the token.
///
/// On the health port it answers for the app's runtime too: 503 `stalled` once that runtime has
/// run no task for `health.stall_ms` (see `heartbeat`); `stalled` is always `None` elsewhere.
pub(crate) fn live(form: Form, stalled: Option<Duration>, service: &Service) -> Reply {
    match (form, stalled) {
        (Form::Json, None) => {
            Reply::new(Status::Ok, JSON, Body::Static(LIVE)).with("Vary", "Accept")
        }
        (form, stalled) => {
            let nobody = Viewer { details: false };
            let mut answer = answer(Probe::Live, None, nobody, form, service);
            answer.stalled = stalled;
            answer.reply()
        }
    }
}

/// Readiness: every check not `exclude`d, 200 when the critical ones pass, else 503; 400 for
/// an excluded name that is no check.
pub(crate) async fn ready(ask: &Ask<'_>, exclude: &[String]) -> Result<Answer, Error> {
    let registry = ask.health.registry();
    // Checked here rather than by a guard: a catcher could not say which name was wrong.
    let excluded = exclude
        .iter()
        .map(|name| {
            registry
                .index_of(name)
                .ok_or_else(|| Error::UnknownExclude(name.clone(), registry.names()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let checks: Vec<usize> = (0..registry.checks.len())
        .filter(|i| !excluded.contains(i))
        .collect();
    let mut answer = readiness(ask, &checks).await;
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

/// Readiness of the check `name`; 404 when there is none.
pub(crate) async fn ready_one(ask: &Ask<'_>, name: &str) -> Result<Answer, Error> {
    let registry = ask.health.registry();
    let check = registry
        .index_of(name)
        .ok_or_else(|| Error::UnknownCheck(name.to_owned(), registry.names()))?;
    Ok(readiness(ask, &[check]).await)
}

/// Readiness of `checks`, or `draining` without running any.
async fn readiness(ask: &Ask<'_>, checks: &[usize]) -> Answer {
    let report = match ask.lifecycle.is_draining() {
        true => Report::draining(),
        false => ask.health.evaluate(checks).await,
    };
    answer(
        Probe::Ready,
        Some(report),
        ask.viewer,
        ask.form,
        ask.service,
    )
}

/// Startup: 503 with the checks until a full readiness evaluation has passed once, then 200
/// `started` for the life of the process, from the answer of the evaluation that passed on;
/// 503 `draining` when first asked during a drain.
pub(crate) async fn startup(ask: &Ask<'_>) -> Answer {
    let report = match (ask.health.is_started(), ask.lifecycle.is_draining()) {
        (true, _) => None,
        // A process that never started does not start while it drains.
        (false, true) => Some(Report::draining()),
        (false, false) => Some(ask.health.evaluate_all().await).filter(|r| !r.verdict.is_serving()),
    };
    answer(Probe::Startup, report, ask.viewer, ask.form, ask.service)
}

/// The service summary, kept for older clients.
pub(crate) fn summary(service: &Service) -> Reply {
    #[derive(Serialize)]
    struct Summary {
        status: &'static str,
        service: &'static str,
        version: &'static str,
    }
    let summary = Summary {
        status: "ok",
        service: service.id,
        version: service.version,
    };
    match serde_json::to_string(&summary) {
        Ok(body) => Reply::new(Status::Ok, JSON, Body::Owned(body)),
        Err(e) => Reply::failed(false, &e),
    }
}

/// Rocket's front end: each handler takes its request apart with guards and calls the
/// function of its name above, as the health port's router does (the names label logs and
/// metrics on both ports).
mod on_rocket {
    use rocket::{get, State};

    use super::{Answer, Ask, Error, Form, Reply, Service};

    /// Rocket's port runs on the app's runtime, whose stall it cannot see.
    #[get("/health/live")]
    pub fn live(form: Form, service: &State<Service>) -> Reply {
        super::live(form, None, service)
    }

    #[get("/health/ready")]
    pub async fn ready(ask: Ask<'_>, exclude: Excluded) -> Result<Answer, Error> {
        super::ready(&ask, &exclude.0).await
    }

    /// `?exclude=` values, read as the health port reads them.
    pub struct Excluded(Vec<String>);

    #[rocket::async_trait]
    impl<'r> rocket::request::FromRequest<'r> for Excluded {
        type Error = std::convert::Infallible;

        async fn from_request(
            req: &'r rocket::Request<'_>,
        ) -> rocket::request::Outcome<Self, Self::Error> {
            let query = req.uri().query().map(|q| q.as_str());
            rocket::request::Outcome::Success(Excluded(crate::routes::excluded(query)))
        }
    }

    #[get("/health/ready/<name>")]
    pub async fn ready_one(name: &str, ask: Ask<'_>) -> Result<Answer, Error> {
        super::ready_one(&ask, name).await
    }

    #[get("/health/startup")]
    pub async fn startup(ask: Ask<'_>) -> Answer {
        super::startup(&ask).await
    }

    #[get("/health")]
    pub fn summary(service: &State<Service>) -> Reply {
        super::summary(service)
    }
}

/// The routes of this module.
pub(super) fn routes() -> Vec<Route> {
    crate::fairings::own(routes![
        on_rocket::live,
        on_rocket::ready,
        on_rocket::ready_one,
        on_rocket::startup,
        on_rocket::summary
    ])
}
