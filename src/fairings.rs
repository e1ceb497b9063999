//! Cross-cutting fairings: [`CheckLogger`] (one line per request, one per check run) and
//! [`NoStore`] (`Cache-Control: no-store` on every answer made for probes or people).

use std::time::Instant;

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Data, Request, Response};

use crate::checks::{Entry, Report};

/// When the request arrived; kept in the request's local cache.
struct Arrival(Instant);

/// The check runs a request started, stashed by its responder for [`CheckLogger`].
struct FreshRuns(Vec<Entry>);

/// Stashes the runs `report` started (not those served from cache or shared with another
/// request), so [`CheckLogger`] logs each run exactly once.
pub fn record_runs(req: &Request<'_>, report: &Report) {
    req.local_cache(|| FreshRuns(report.entries.iter().filter(|e| e.fresh).cloned().collect()));
}

/// The check runs this request started (empty when it started none).
pub fn fresh_runs<'r>(req: &'r Request<'_>) -> &'r [Entry] {
    &req.local_cache(|| FreshRuns(Vec::new())).0
}

/// Logs each request's outcome and time, and each check run it started.
pub struct CheckLogger;

#[rocket::async_trait]
impl Fairing for CheckLogger {
    fn info(&self) -> Info {
        Info {
            name: "Check Logger",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Arrival(Instant::now()));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let took_ms = req
            .local_cache(|| Arrival(Instant::now()))
            .0
            .elapsed()
            .as_secs_f64()
            * 1e3;
        for entry in fresh_runs(req) {
            let o = &entry.outcome;
            let error = o.error.as_deref().unwrap_or("");
            log::info!(
                target: "vitals::check",
                check = entry.check.name(),
                status = o.status.as_str(),
                duration_ms = o.duration_ms,
                error = error;
                "check {} {} in {:.3} ms{}{}",
                entry.check, o.status.as_str(), o.duration_ms,
                if error.is_empty() { "" } else { ": " }, error
            );
        }
        let route = req.route().and_then(|r| r.name.as_deref()).unwrap_or("-");
        log::info!(
            target: "vitals::http",
            method = req.method().as_str(),
            path = req.uri().path().as_str(),
            route = route,
            status = res.status().code,
            duration_ms = took_ms;
            "{} {} {} in {:.3} ms", req.method(), req.uri().path(), res.status().code, took_ms
        );
    }
}

/// Sets `Cache-Control: no-store` on JSON and HTML answers: a cached health answer is a lie.
pub struct NoStore;

#[rocket::async_trait]
impl Fairing for NoStore {
    fn info(&self) -> Info {
        Info {
            name: "No Store",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, _: &'r Request<'_>, res: &mut Response<'r>) {
        // The raw header, not `content_type()`: parsing a media type on every answer showed
        // up in the liveness profile.
        let fresh_only = res
            .headers()
            .get_one("Content-Type")
            .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
        if fresh_only {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}

/// Attaches [`CheckLogger`] and [`NoStore`].
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Fairings", |rocket| async {
        rocket.attach(CheckLogger).attach(NoStore)
    })
}
