//! Cross-cutting fairings: [`RequestLogger`] (one line per request; check runs log their own
//! line from the engine) and [`NoStore`] (`Cache-Control: no-store` on every answer made for
//! probes or people).

use std::time::Instant;

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Data, Request, Response};

/// When the request arrived; kept in the request's local cache.
struct Arrival(Instant);

/// Logs each request's outcome and time.
pub(crate) struct RequestLogger;

#[rocket::async_trait]
impl Fairing for RequestLogger {
    fn info(&self) -> Info {
        Info {
            name: "Request Logger",
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
pub(crate) struct NoStore;

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
        // up in the liveness profile. Every form of a probe answer, the page and errors.
        let fresh_only = res.headers().get_one("Content-Type").is_some_and(|ct| {
            [
                "application/json",
                "application/health+json",
                "text/html",
                "text/plain",
            ]
            .iter()
            .any(|t| ct.starts_with(t))
        });
        if fresh_only {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}

/// Attaches [`RequestLogger`] and [`NoStore`].
pub(crate) fn stage() -> AdHoc {
    AdHoc::on_ignite("Fairings", |rocket| async {
        rocket.attach(RequestLogger).attach(NoStore)
    })
}
