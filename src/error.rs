//! [`Error`]: what a handler can refuse, and the JSON catchers for everything Rocket refuses.
//!
//! Every refusal answers `{"error": "..."}` with `Cache-Control: no-store` (see `fairings`).
//! A failing dependency is not an `Error`: it is a readiness report.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::{catch, catchers, Catcher};

use crate::reply::Reply;

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

impl Error {
    /// The refusal as an answer, logged with the request's `method` and `path`.
    pub fn reply(&self, method: &str, path: &str) -> Reply {
        let message = crate::redact::sanitise(&self.to_string());
        log::info!(target: "vitals::http", "{method} {path}: {message}");
        Reply::error(self.status(), &message)
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        self.reply(req.method().as_str(), req.uri().path().as_str())
            .respond_to(req)
    }
}

/// The answer for a request no route takes: `{"error": "not found"}` for 404, the status's
/// reason in lower case for any other.
pub(crate) fn refusal(status: Status) -> Reply {
    let error = match status.code {
        404 => "not found".to_owned(),
        _ => status.reason_lossy().to_lowercase(),
    };
    Reply::error(status, &error)
}

#[catch(default)]
fn default(status: Status, _req: &Request<'_>) -> Reply {
    refusal(status)
}

/// JSON catchers for every status, mounted at `/`.
pub(crate) fn catchers() -> Vec<Catcher> {
    catchers![default]
}
