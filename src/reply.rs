//! [`Reply`]: an answer of vitals' own, complete before any server carries it.
//!
//! Every endpoint (`routes`, `status_page`, `metrics`, `error`) turns its evaluation into a
//! `Reply` once; the two front ends only carry it: Rocket through the [`Responder`] below,
//! the health port through `listener`. So both ports
//! give the same status, headers and body byte for byte, and a header is set in one place.

use std::io::Cursor;

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder, Response};

/// Status, the headers vitals sets, and the body of one answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: Status,
    /// The `Content-Type` value, exactly as sent; none for a redirect.
    pub content_type: Option<&'static str>,
    /// Any further headers, in order.
    pub headers: Vec<(&'static str, &'static str)>,
    /// The body, whole: every answer is small and built before it is sent.
    pub body: Body,
}

/// A body that is either built in or made for this answer.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Static(&'static str),
    Owned(String),
}

/// The body of [`Reply::failed`].
pub(crate) const FAILED: &str = r#"{"error":"the answer could not be built"}"#;

/// `Content-Type` of vitals' JSON.
pub(crate) const JSON: &str = "application/json";
/// `Content-Type` of the plain text forms (Rocket's `ContentType::Plain`).
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
/// `Content-Type` of the page.
pub(crate) const HTML: &str = "text/html; charset=utf-8";

impl Reply {
    /// An answer with `status`, `content_type` and `body` and no further header.
    pub fn new(status: Status, content_type: &'static str, body: Body) -> Reply {
        Reply {
            status,
            content_type: Some(content_type),
            headers: Vec::new(),
            body,
        }
    }

    /// 303 to `location`, without a body (Rocket's `Redirect::to`).
    pub fn see_other(location: &'static str) -> Reply {
        Reply {
            status: Status::SeeOther,
            content_type: None,
            headers: vec![("Location", location)],
            body: Body::Static(""),
        }
    }

    /// `{"error": message}` with `status`: every refusal's body.
    pub fn error(status: Status, message: &str) -> Reply {
        #[derive(serde::Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
        }
        match serde_json::to_string(&ErrorBody { error: message }) {
            Ok(body) => Reply::new(status, JSON, Body::Owned(body)),
            Err(e) => Reply::failed(false, &e),
        }
    }

    /// The answer when none could be built (`error` says why, in the log): 500, or 503 for
    /// `readiness`, so that a probe never reads a failure as a pass.
    pub fn failed(readiness: bool, error: &dyn std::fmt::Display) -> Reply {
        log::error!(target: "vitals::http", "an answer could not be built: {error}");
        let status = match readiness {
            true => Status::ServiceUnavailable,
            false => Status::InternalServerError,
        };
        Reply::new(status, JSON, Body::Static(FAILED))
    }

    /// The same answer with `name: value` added.
    pub fn with(mut self, name: &'static str, value: &'static str) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// Whether an answer of `content_type` must not be cached: every form of a probe answer, the
/// page, metrics and errors (a cached health answer is a lie); not the stylesheet. Both
/// front ends ask this, Rocket's through the `NoStore` fairing.
pub(crate) fn fresh_only(content_type: &str) -> bool {
    [
        "application/json",
        "application/health+json",
        "text/html",
        "text/plain",
    ]
    .iter()
    .any(|t| content_type.starts_with(t))
}

impl<'r> Responder<'r, 'static> for Reply {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(self.status);
        if let Some(content_type) = self.content_type {
            response.raw_header("Content-Type", content_type);
        }
        for (name, value) in self.headers {
            response.raw_header_adjoin(name, value);
        }
        match self.body {
            Body::Static("") => &mut response,
            Body::Static(text) => response.sized_body(text.len(), Cursor::new(text)),
            Body::Owned(text) => response.sized_body(text.len(), Cursor::new(text)),
        };
        response.ok()
    }
}
