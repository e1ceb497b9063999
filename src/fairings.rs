//! Fairings for vitals' own answers: [`RequestLogger`] (one line per request; check runs log
//! their own line from the engine) and [`NoStore`] (`Cache-Control: no-store` on every answer
//! made for probes or people).
//!
//! Rocket's fairings see every request of the app, so a host app's answers would pass through
//! them too. vitals marks its own routes ([`own`]) and these fairings, like the metrics
//! recorder, touch only answers from a marked route, unless the host asked for its own
//! requests to be logged and counted ([`Scope::everything`]). The standalone service's every
//! answer is its own.

use std::time::Instant;

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Data, Request, Response, Route};

/// What marks a route's name as vitals' own.
const MARK: &str = "vitals::";

/// Marks `routes` as vitals' own: their names gain the `vitals::` prefix (shown so in Rocket's
/// launch log), which [`own_name`] strips again.
pub(crate) fn own(routes: Vec<Route>) -> Vec<Route> {
    routes
        .into_iter()
        .map(|mut route| {
            let name = route.name.as_deref().unwrap_or("-");
            route.name = Some(format!("{MARK}{name}").into());
            route
        })
        .collect()
}

/// The name of the vitals route that answered `req`; `None` for a host's route or none.
pub(crate) fn own_name<'r>(req: &'r Request<'_>) -> Option<&'r str> {
    req.route()?.name.as_deref()?.strip_prefix(MARK)
}

/// Which requests the logger and the metrics recorder see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    /// Every request of the app (the standalone service, or a host that asked), not only
    /// those answered by vitals' routes.
    pub everything: bool,
    /// Every answer is vitals' own (the standalone service: its catchers too).
    pub standalone: bool,
}

impl Scope {
    /// The label for `req`'s route in logs and metrics, or `None` when it is not in scope:
    /// vitals' route names bare, a host's own names, `unmatched` when no route answered.
    pub fn label<'r>(&self, req: &'r Request<'_>) -> Option<&'r str> {
        match own_name(req) {
            Some(name) => Some(name),
            None if self.everything => Some(
                req.route()
                    .and_then(|r| r.name.as_deref())
                    .unwrap_or("unmatched"),
            ),
            None => None,
        }
    }
}

/// When the request arrived; kept in the request's local cache.
struct Arrival(Instant);

/// Logs each request's outcome and time, for the requests in its [`Scope`].
pub(crate) struct RequestLogger(pub Scope);

#[rocket::async_trait]
impl Fairing for RequestLogger {
    fn info(&self) -> Info {
        Info {
            name: "Request Logger",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        // The route is not known yet; the arrival time is cheap to keep for every request.
        req.local_cache(|| Arrival(Instant::now()));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(route) = self.0.label(req) else {
            return;
        };
        let took_ms = req
            .local_cache(|| Arrival(Instant::now()))
            .0
            .elapsed()
            .as_secs_f64()
            * 1e3;
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

/// Sets `Cache-Control: no-store` on vitals' JSON, text and HTML answers (its catchers' under a
/// base of its own too): a cached health answer is a lie. A host's answers keep their own
/// caching headers.
pub(crate) struct NoStore(pub Scope, pub String);

#[rocket::async_trait]
impl Fairing for NoStore {
    fn info(&self) -> Info {
        Info {
            name: "No Store",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        // A vitals catcher answered: no route, a path under vitals' own (non-root) base.
        let own_catcher = req.route().is_none()
            && self.1 != "/"
            && req.uri().path().as_str().starts_with(self.1.as_str());
        if !self.0.standalone && own_name(req).is_none() && !own_catcher {
            return;
        }
        // The raw header, not `content_type()`: parsing a media type on every answer showed
        // up in the liveness profile.
        let fresh_only = res
            .headers()
            .get_one("Content-Type")
            .is_some_and(crate::reply::fresh_only);
        if fresh_only {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}

/// Attaches [`RequestLogger`] and [`NoStore`] for `scope`, vitals being served under `base`.
pub(crate) fn stage(scope: Scope, base: &str) -> AdHoc {
    let base = base.to_owned();
    AdHoc::on_ignite("Fairings", move |rocket| async move {
        rocket
            .attach(RequestLogger(scope))
            .attach(NoStore(scope, base))
    })
}
