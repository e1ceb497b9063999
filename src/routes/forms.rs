//! Three forms of one probe answer, chosen per request: vitals' own JSON (the default), the
//! IETF `application/health+json` draft, and the Kubernetes API server's `?verbose` text.
//! The HTTP status is the same in every form; every answer carries `Vary: Accept`. An
//! `Accept` that names none of them gets the default JSON, never a 406: a probe must never
//! fail over a header.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use rocket::http::Status;
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::Service;
use crate::access::Viewer;
use crate::checks::{CheckMap, Entry, Report, Verdict};
use crate::logging::rfc3339;
use crate::reply::{Body, Reply, JSON, TEXT};

/// The form an answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `application/json`: vitals' own shape.
    Json,
    /// `application/health+json` (draft-inadarei-api-health-check-06).
    HealthJson,
    /// `text/plain`: one `[+]`/`[-]` line per check, then a verdict line.
    Text,
}

impl Form {
    /// The form for `?verbose` (any value) and an `Accept` header.
    pub fn negotiate(verbose: bool, accept: Option<&str>) -> Form {
        if verbose {
            return Form::Text;
        }
        let Some(accept) = accept else {
            return Form::Json;
        };
        // Best quality per form; ties go to the more specific form, and text/plain must be
        // preferred over JSON outright.
        // NOTE: not Rocket's `Accept` parser: it rejects a whole header for one malformed or
        // out-of-range q-value (`text/plain;q=2`, `;q=abc`), which this reads as q=1 and the
        // clamp (see `the_accept_table`, where both parsers were run).
        let (mut health, mut json, mut text) = (0.0f32, 0.0f32, 0.0f32);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .filter(|q| q.is_finite())
                .map_or(1.0, |q| q.clamp(0.0, 1.0));
            match media.as_str() {
                "application/health+json" => health = health.max(q),
                "application/json" | "application/*" | "*/*" => json = json.max(q),
                "text/plain" | "text/*" => text = text.max(q),
                _ => {}
            }
        }
        if health > 0.0 && health >= json && health >= text {
            Form::HealthJson
        } else if text > json {
            Form::Text
        } else {
            Form::Json
        }
    }
}

impl Form {
    /// The form `req` asks for.
    pub fn of(req: &Request<'_>) -> Form {
        let verbose = super::uri::verbose(req.uri().query().map(|q| q.as_str()));
        Form::negotiate(verbose, req.headers().get_one("Accept"))
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Form {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Infallible> {
        request::Outcome::Success(Form::of(req))
    }
}

/// Which probe answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    Live,
    Ready,
    Startup,
}

/// One probe answer before it takes a form.
pub(crate) struct Answer {
    /// Which probe.
    pub probe: Probe,
    /// The checks run for it; `None` for liveness and for a startup passed before.
    pub report: Option<Report>,
    /// Liveness on the health port: how long the app's runtime has been stalled.
    pub stalled: Option<Duration>,
    /// Names (and component types) of the checks `?exclude=` skipped.
    pub excluded: Vec<(Arc<str>, &'static str)>,
    /// Whether error texts are shown.
    pub viewer: Viewer,
    /// The form asked for.
    pub form: Form,
    /// `serviceId` and `version` for health+json.
    pub service: Service,
}

impl Answer {
    fn status(&self) -> Status {
        let serving =
            self.report.as_ref().is_none_or(|r| r.verdict.is_serving()) && self.stalled.is_none();
        match serving {
            true => Status::Ok,
            false => Status::ServiceUnavailable,
        }
    }

    /// The status word of vitals' own JSON.
    fn word(&self) -> &'static str {
        match (self.probe, &self.report) {
            (Probe::Live, _) if self.stalled.is_some() => "stalled",
            (Probe::Live, _) => "ok",
            (Probe::Startup, None) => "started",
            (Probe::Startup, Some(r)) if r.verdict.is_serving() => "started",
            (Probe::Startup, Some(r)) if r.verdict == Verdict::Draining => "draining",
            (Probe::Startup, Some(_)) => "starting",
            (Probe::Ready, Some(r)) => r.verdict.as_str(),
            (Probe::Ready, None) => "ready",
        }
    }

    fn draining(&self) -> bool {
        self.report
            .as_ref()
            .is_some_and(|r| r.verdict == Verdict::Draining)
    }

    fn entries(&self) -> &[Entry] {
        self.report.as_ref().map_or(&[], |r| &r.entries)
    }

    fn json(&self) -> serde_json::Result<String> {
        #[derive(Serialize)]
        struct Body<'a> {
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            stalled_ms: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            checks: Option<CheckMap<'a>>,
        }
        let checks = match (&self.report, self.draining()) {
            (Some(report), false) => Some(CheckMap(&report.entries, self.viewer.details)),
            _ => None,
        };
        let body = Body {
            status: self.word(),
            stalled_ms: self.stalled.map(|d| d.as_millis() as u64),
            checks,
        };
        serde_json::to_string(&body)
    }

    fn health_json(&self) -> String {
        let status = match (&self.report, self.status()) {
            (Some(r), _) if r.verdict == Verdict::Degraded => "warn",
            (_, Status::Ok) => "pass",
            _ => "fail",
        };
        let mut body = Map::new();
        body.insert("status".into(), status.into());
        body.insert("version".into(), self.service.version.into());
        body.insert("serviceId".into(), self.service.id.into());
        if self.draining() {
            body.insert("notes".into(), json!(["draining"]));
        }
        let mut checks = Map::new();
        for entry in self.entries() {
            let o = &entry.outcome;
            let status = match (o.passing, entry.critical) {
                (true, _) => "pass",
                (false, false) => "warn",
                (false, true) => "fail",
            };
            let mut component = json!({
                "componentType": entry.component,
                "observedValue": o.duration_ms,
                "observedUnit": "ms",
                "status": status,
                "time": rfc3339(o.finished_at),
            });
            if let Some(reason) = o.reason {
                component["reason"] = reason.as_str().into();
            }
            if let (Some(error), true) = (&o.error, self.viewer.details) {
                component["output"] = error.as_str().into();
            }
            if let Some(left) = o.held {
                let last = if o.status.is_ok() { "ok" } else { "failed" };
                component["notes"] =
                    json!([format!("held: last run {last}, {left} more to change")]);
            }
            checks.insert(format!("{}:responseTime", entry.name), json!([component]));
        }
        for (name, component) in &self.excluded {
            let excluded =
                json!([{"componentType": component, "status": "pass", "notes": ["excluded"]}]);
            checks.insert(format!("{name}:responseTime"), excluded);
        }
        if !checks.is_empty() {
            body.insert("checks".into(), Value::Object(checks));
        }
        Value::Object(body).to_string()
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let verdict_line = match self.probe {
            Probe::Live => "livez check",
            Probe::Ready => "readyz check",
            Probe::Startup => "startup check",
        };
        if self.probe == Probe::Live {
            out.push_str("[+]ping ok\n");
            if self.stalled.is_some() {
                out.push_str("[-]runtime failed: stalled\n");
            }
        }
        if self.draining() {
            out.push_str("[-]shutdown failed: draining\n");
        }
        for entry in self.entries() {
            let o = &entry.outcome;
            // The sign follows the counted state; a disagreeing last run is said after it.
            let sign = if o.passing { '+' } else { '-' };
            match (o.reason, o.held) {
                (None, None) => {
                    let _ = writeln!(out, "[+]{} ok", entry.name);
                }
                (None, Some(left)) => {
                    let _ = writeln!(
                        out,
                        "[-]{} failed (held: last run ok; {left} more to pass)",
                        entry.name
                    );
                }
                (Some(reason), held) => {
                    let word = if o.passing {
                        "ok (held: last run failed"
                    } else {
                        "failed"
                    };
                    let _ = write!(out, "[{sign}]{} {word}: {reason}", entry.name);
                    if let (Some(error), true) = (&o.error, self.viewer.details) {
                        let _ = write!(out, ": {error}");
                    }
                    if let (Some(left), true) = (held, o.passing) {
                        let _ = write!(out, "; {left} more to fail)");
                    }
                    out.push('\n');
                }
            }
        }
        for (name, _) in &self.excluded {
            let _ = writeln!(out, "[+]{name} excluded: ok");
        }
        let passed = match self.status() {
            Status::Ok => "passed",
            _ => "failed",
        };
        let _ = writeln!(out, "{verdict_line} {passed}");
        out
    }
}

impl Answer {
    /// The answer in its form, with `Vary: Accept`: the one place a probe answer is made.
    pub fn reply(&self) -> Reply {
        let (content_type, body) = match self.form {
            Form::Json => match self.json() {
                Ok(body) => (JSON, body),
                // Fails closed: never a 200 without its body.
                Err(e) => return Reply::failed(self.probe == Probe::Ready, &e),
            },
            Form::HealthJson => ("application/health+json", self.health_json()),
            Form::Text => (TEXT, self.text()),
        };
        Reply::new(self.status(), content_type, Body::Owned(body)).with("Vary", "Accept")
    }
}

impl<'r> Responder<'r, 'static> for Answer {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        self.reply().respond_to(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accept headers as clients send them, and the form each gets: pins negotiation down
    /// whichever parser reads the header.
    #[test]
    fn the_accept_table() {
        use Form::{HealthJson, Json, Text};
        let table: &[(&str, Form)] = &[
            ("", Json),
            ("*/*", Json),
            ("application/json", Json),
            ("application/json, text/plain, */*", Json), // axios
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Json,
            ), // browsers
            ("text/plain", Text),
            ("text/plain;q=0.9, application/json;q=0.5", Text),
            ("text/*", Text),
            ("TEXT/PLAIN", Text),
            ("text/plain; charset=utf-8", Text),
            ("text/plain, application/json", Json),
            ("text/plain;q=0, application/json;q=0", Json),
            ("application/health+json", HealthJson),
            (
                "application/health+json;q=1.0, application/json;q=0.9",
                HealthJson,
            ),
            ("application/health+json;q=0.5, */*", Json),
            ("application/health+json, text/plain", HealthJson),
            ("application/health+json;q=0", Json),
            ("application/*", Json),
            ("image/png", Json),
            ("garbage;;q=x,,", Json),
            ("text/plain;q=abc", Text),
            ("text/plain;q=2", Text),
        ];
        for (accept, form) in table {
            assert_eq!(Form::negotiate(false, Some(accept)), *form, "{accept:?}");
        }
    }

    #[test]
    fn no_accept_and_unknown_types_get_json() {
        for accept in [
            None,
            Some("*/*"),
            Some("application/json"),
            Some("text/html"),
            Some("garbage;;q=x,,"),
            Some("application/xml;q=0.9, */*;q=0.8"),
        ] {
            assert_eq!(Form::negotiate(false, accept), Form::Json, "{accept:?}");
        }
    }

    #[test]
    fn health_json_is_chosen_when_asked_for() {
        assert_eq!(
            Form::negotiate(false, Some("application/health+json")),
            Form::HealthJson
        );
        assert_eq!(
            Form::negotiate(false, Some("application/health+json, application/json")),
            Form::HealthJson
        );
        assert_eq!(
            Form::negotiate(
                false,
                Some("application/health+json;q=0.5, application/json")
            ),
            Form::Json
        );
    }

    #[test]
    fn text_needs_verbose_or_a_clear_preference() {
        assert_eq!(Form::negotiate(true, Some("application/json")), Form::Text);
        assert_eq!(Form::negotiate(false, Some("text/plain")), Form::Text);
        assert_eq!(
            Form::negotiate(false, Some("text/plain, application/json")),
            Form::Json
        );
        assert_eq!(
            Form::negotiate(false, Some("text/plain, application/json;q=0.5")),
            Form::Text
        );
    }
}
