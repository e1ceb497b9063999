//! [`Error`]: what a handler can refuse, and the JSON catchers for everything Rocket refuses.
//!
//! Every refusal answers `{"error": "..."}` with `Cache-Control: no-store` (see `fairings`).
//! A failing dependency is not an `Error`: it is a readiness report.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{catch, catchers, Catcher};
use serde::Serialize;

/// A request vitals refuses to answer as asked. The second field lists the known checks.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// 404: `/health/ready/<name>` names no enabled check.
    #[error("unknown check '{0}'; known checks: {1}")]
    UnknownCheck(String, String),
    /// 400: `?exclude=<name>` names no enabled check.
    #[error("cannot exclude unknown check '{0}'; known checks: {1}")]
    UnknownExclude(String, String),
}

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> Status {
        match self {
            Error::UnknownCheck(..) => Status::NotFound,
            Error::UnknownExclude(..) => Status::BadRequest,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let message = crate::redact::sanitise(&self.to_string());
        log::info!(target: "vitals::http", "{} {}: {message}", req.method(), req.uri().path());
        (self.status(), Json(ErrorBody { error: message })).respond_to(req)
    }
}

#[catch(default)]
fn default(status: Status, _req: &Request<'_>) -> (Status, Json<ErrorBody>) {
    let error = match status.code {
        404 => "not found".to_owned(),
        _ => status.reason_lossy().to_lowercase(),
    };
    (status, Json(ErrorBody { error }))
}

/// JSON catchers for every status, mounted at `/`.
pub(crate) fn catchers() -> Vec<Catcher> {
    catchers![default]
}
