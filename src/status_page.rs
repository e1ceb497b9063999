//! `/status`: the page for people, rendered from the same engine as the probes.
//!
//! Opening it asks the engine for every check, so it shares the cache and any run in flight
//! and adds no load of its own; while draining it shows the last results without running
//! anything. The HTML comes from maud, which escapes every interpolated value; text from a
//! dependency has been sanitised before that. The stylesheet, `static/status.css`, is built
//! into the binary and served at `<base>/static/status.css`, so a host app ships no files.

use std::time::{Duration, SystemTime};

use maud::{html, Markup, DOCTYPE};
use rocket::fairing::AdHoc;
use rocket::http::Status;
use rocket::routes;

use crate::checks::{Entry, History, Report, RunStatus, Verdict};
use crate::logging::rfc3339;
use crate::reply::{Body, Reply, HTML};
use crate::routes::Ask;

/// Seconds between the page's own refreshes.
const REFRESH_S: u32 = 5;

/// Runs of the recent strip shown per check (the engine keeps more).
const STRIP_LEN: usize = 30;

/// No script, no inline style, nothing from elsewhere: the page needs only its stylesheet.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The stylesheet, built in.
const CSS: &str = include_str!("../static/status.css");

/// Where the page's links point, under the mount base.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    css: String,
    ready: String,
    metrics: String,
    login: String,
}

impl Links {
    fn under(base: &str) -> Links {
        let at = |path: &str| format!("{}{path}", base.trim_end_matches('/'));
        Links {
            css: at("/static/status.css"),
            ready: at("/health/ready"),
            metrics: at("/metrics"),
            login: at("/status/login"),
        }
    }
}

/// Everything the page shows, gathered before rendering.
struct Page<'a> {
    report: Report,
    history: Vec<History>,
    now: SystemTime,
    booted_at: SystemTime,
    links: &'a Links,
    /// Whether error texts are shown.
    details: bool,
    /// Whether signing in would show them.
    sign_in_helps: bool,
    /// Timer mode: how often the checks run.
    interval: Option<Duration>,
}

/// The status page; runs the checks unless the service is draining.
pub(crate) async fn status(ask: &Ask<'_>, links: &Links) -> Reply {
    page(ask, links).await.reply()
}

/// The page for people who sign in: HTTP Basic, any user name, the token as password. Until
/// the browser sends the token it answers 401 with `WWW-Authenticate: Basic`, which makes the
/// browser ask; it then resends the credentials on each refresh of this same path.
pub(crate) async fn login(ask: &Ask<'_>, links: &Links) -> Reply {
    match ask.viewer.details || !ask.policy.sign_in_helps() {
        true => status(ask, links).await,
        false => sign_in(),
    }
}

/// 401 with a Basic challenge.
fn sign_in() -> Reply {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Sign in · vitals" } }
            body {
                h1 { "Sign in to see details" }
                p { "Use any user name and the health token (health.token or VITALS_TOKEN) as the password." }
            }
        }
    };
    Reply::new(Status::Unauthorized, HTML, Body::Owned(body.into_string()))
        .with(
            "WWW-Authenticate",
            r#"Basic realm="vitals", charset="UTF-8""#,
        )
        .with("Content-Security-Policy", CSP)
}

async fn page<'a>(ask: &Ask<'_>, links: &'a Links) -> Page<'a> {
    let health = ask.health;
    let report = if ask.lifecycle.is_draining() {
        Report {
            verdict: Verdict::Draining,
            entries: health.latest_entries(),
        }
    } else {
        health.evaluate_all().await
    };
    Page {
        history: report
            .entries
            .iter()
            .map(|e| health.history(e.index))
            .collect(),
        report,
        now: SystemTime::now(),
        booted_at: health.booted_at(),
        links,
        details: ask.viewer.details,
        sign_in_helps: ask.policy.sign_in_helps() && !ask.viewer.details,
        interval: health.timer().map(|t| t.interval),
    }
}

/// The page's stylesheet.
pub(crate) fn stylesheet() -> Reply {
    Reply::new(Status::Ok, "text/css; charset=utf-8", Body::Static(CSS))
}

/// `/` of the standalone service is for people: send them to the page.
pub(crate) fn index() -> Reply {
    Reply::see_other("/status")
}

impl Page<'_> {
    fn reply(&self) -> Reply {
        Reply::new(Status::Ok, HTML, Body::Owned(render(self).into_string()))
            .with("Content-Security-Policy", CSP)
            .with("Referrer-Policy", "no-referrer")
    }
}

/// Rocket's front end, as in `routes`: each handler calls the function of its name above.
mod on_rocket {
    use rocket::{get, State};

    use super::{Ask, Links, Reply};

    #[get("/status")]
    pub async fn status(ask: Ask<'_>, links: &State<Links>) -> Reply {
        super::status(&ask, links).await
    }

    #[get("/status/login")]
    pub async fn login(ask: Ask<'_>, links: &State<Links>) -> Reply {
        super::login(&ask, links).await
    }

    #[get("/static/status.css")]
    pub fn stylesheet() -> Reply {
        super::stylesheet()
    }

    #[get("/")]
    pub fn index() -> Reply {
        super::index()
    }
}

/// Word, CSS class and symbol of a verdict; the symbol keeps colour from being the only signal.
fn verdict_look(verdict: Verdict) -> (&'static str, &'static str, &'static str) {
    match verdict {
        Verdict::Ready => ("Ready", "ok", "✓"),
        Verdict::Degraded => ("Degraded", "warn", "!"),
        Verdict::Unavailable => ("Unavailable", "bad", "✕"),
        Verdict::Draining => ("Draining", "off", "↓"),
    }
}

fn status_look(status: RunStatus) -> (&'static str, &'static str, &'static str) {
    match status {
        RunStatus::Ok => ("OK", "ok", "✓"),
        RunStatus::Error => ("Error", "bad", "✕"),
        RunStatus::Timeout => ("Timeout", "warn", "◷"),
    }
}

fn render(page: &Page) -> Markup {
    let (word, class, symbol) = verdict_look(page.report.verdict);
    let checked = rfc3339(page.now);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(REFRESH_S);
                title { (word) " · vitals" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(page.links.css);
            }
            body {
                header class={ "verdict " (class) } {
                    h1 { span.symbol aria-hidden="true" { (symbol) } " " (word) }
                    p.lede { (lede(page.report.verdict)) }
                }
                main {
                    div.scroll {
                        table {
                            caption { "Dependency checks" }
                            thead {
                                tr {
                                    th scope="col" { "Check" }
                                    th scope="col" { "State" }
                                    th scope="col" { "Latency" }
                                    th scope="col" { "Since" }
                                    th scope="col" { "OK since start" }
                                    th scope="col" { "Recent (oldest first)" }
                                }
                            }
                            tbody {
                                @for (entry, history) in page.report.entries.iter().zip(&page.history) {
                                    (row(entry, history, page.now, page.details))
                                }
                            }
                        }
                    }
                    @if page.report.entries.is_empty() {
                        p { "No check has run yet." }
                    }
                    @if !page.details {
                        p.withheld {
                            "Error details are withheld: they can name hosts, users and databases. "
                            @if page.sign_in_helps {
                                a href=(page.links.login) { "Sign in to see them" } "."
                            } @else {
                                "This service does not show them (health.details)."
                            }
                        }
                    }
                }
                footer {
                    p {
                        "vitals " (env!("CARGO_PKG_VERSION")) " · checked "
                        time datetime=(checked) { (clock(&checked)) " UTC" }
                        " · up " (age(page.now, page.booted_at))
                        " · refreshes every " (REFRESH_S) " s"
                        @if let Some(interval) = page.interval {
                            " · checks run every " (format!("{} ms", interval.as_millis()))
                        }
                    }
                    p {
                        "Machine-readable: " a href=(page.links.ready) { (page.links.ready) }
                        " · " a href=(page.links.metrics) { (page.links.metrics) }
                    }
                }
            }
        }
    }
}

fn lede(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Ready => "Every dependency answers: the service can serve.",
        Verdict::Degraded => "A non-critical dependency is failing: the service still serves.",
        Verdict::Unavailable => "A critical dependency is failing: readiness is 503.",
        Verdict::Draining => {
            "Shutting down: readiness is withdrawn; results below are the last ones."
        }
    }
}

fn row(entry: &Entry, history: &History, now: SystemTime, details: bool) -> Markup {
    let outcome = &entry.outcome;
    // The row follows the counted state; a last run that disagrees is said beside it.
    let (word, class, symbol) = match (outcome.passing, outcome.status.is_ok()) {
        (true, false) => ("OK (held)", "ok", "✓"),
        (false, true) => ("Failing (held)", "bad", "✕"),
        _ => status_look(outcome.status),
    };
    let changed = history.changed_at.map(rfc3339);
    let recent = &history.recent[history.recent.len().saturating_sub(STRIP_LEN)..];
    let failures = recent.iter().filter(|o| o.status != RunStatus::Ok).count();
    html! {
        tr {
            th scope="row" {
                (&*entry.name)
                @if !entry.critical { br; small { "non-critical" } }
            }
            // One element per cell, so narrow screens can lay each cell out as label and value.
            td class={ "state " (class) } data-label="State" {
                div {
                    span.symbol aria-hidden="true" { (symbol) } " " (word)
                    @if let Some(reason) = outcome.reason { " · " span.reason { (reason.as_str()) } }
                    @if let (Some(error), true) = (&outcome.error, details) { br; small.error { (error) } }
                    @if let Some(warning) = expiry_warning(outcome.certificate_expires, now) {
                        br; small.expiry { (warning) }
                    }
                }
            }
            td.num data-label="Latency" { div { (format!("{:.2} ms", outcome.duration_ms)) } }
            td data-label="Since" {
                div {
                    @if let (Some(stamp), Some(at)) = (&changed, history.changed_at) {
                        time datetime=(stamp) { (clock(stamp)) " UTC" }
                        br; small { (age(now, at)) " ago" }
                        @if history.changes_last_hour > 0 {
                            br; small.changes {
                                (history.changes_last_hour)
                                @if history.changes_last_hour == 1 { " change" } @else { " changes" }
                                " in the last hour"
                            }
                        }
                    } @else { "–" }
                }
            }
            td.num data-label="OK since start" {
                div {
                    @if history.runs > 0 {
                        (format!("{:.1} %", 100.0 * history.runs_ok as f64 / history.runs as f64))
                        br; small { (history.runs) @if history.runs == 1 { " run" } @else { " runs" } }
                    } @else { "–" }
                }
            }
            td data-label="Recent" {
                ol.strip aria-label=(format!("last {} runs: {} failed", recent.len(), failures)) {
                    @for run in recent {
                        @let (word, class, symbol) = status_look(run.status);
                        li class=(class) title=(format!("{word}, {:.2} ms", run.duration_ms)) {
                            (symbol)
                        }
                    }
                }
            }
        }
    }
}

/// Days within which a certificate's coming expiry is shown on the page.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// "certificate expires in N days" when a certificate expires within
/// [`EXPIRY_WARNING_DAYS`], or "certificate expired" once it has.
fn expiry_warning(not_after: Option<i64>, now: SystemTime) -> Option<String> {
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    let left = not_after? - now;
    match left.div_euclid(86_400) {
        _ if left <= 0 => Some("certificate expired".into()),
        days if days >= EXPIRY_WARNING_DAYS => None,
        0 => Some("certificate expires in less than a day".into()),
        1 => Some("certificate expires in 1 day".into()),
        days => Some(format!("certificate expires in {days} days")),
    }
}

/// `HH:MM:SS` of an RFC 3339 stamp.
fn clock(stamp: &str) -> &str {
    stamp.get(11..19).unwrap_or(stamp)
}

/// A short human duration from `then` to `now`: `42 s`, `5 min`, `3 h 12 min`, `2 d 4 h`.
fn age(now: SystemTime, then: SystemTime) -> String {
    let s = now.duration_since(then).unwrap_or(Duration::ZERO).as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `/status`, `/status/login` and the stylesheet (not `/`).
pub(crate) fn page_routes() -> Vec<rocket::Route> {
    crate::fairings::own(routes![
        on_rocket::status,
        on_rocket::login,
        on_rocket::stylesheet
    ])
}

/// Mounts `/status` and its stylesheet at `base`, and for the standalone service `/`, which
/// sends people to the page.
pub(crate) fn stage(base: &str, standalone: bool) -> AdHoc {
    let base = base.to_owned();
    AdHoc::on_ignite("Status Page", move |rocket| async move {
        let rocket = rocket
            .manage(Links::under(&base))
            .mount(base.as_str(), page_routes());
        match standalone {
            true => rocket.mount("/", crate::fairings::own(routes![on_rocket::index])),
            false => rocket,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_named_only_within_thirty_days_of_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let at = |days: i64| Some(1_000_000_000 + days * 86_400 + 60);
        assert_eq!(expiry_warning(None, now), None);
        assert_eq!(expiry_warning(at(30), now), None);
        assert_eq!(
            expiry_warning(at(29), now).as_deref(),
            Some("certificate expires in 29 days")
        );
        assert_eq!(
            expiry_warning(at(1), now).as_deref(),
            Some("certificate expires in 1 day")
        );
        assert_eq!(
            expiry_warning(Some(999_999_000), now).as_deref(),
            Some("certificate expired")
        );
    }

    #[test]
    fn ages_read_naturally() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ago = |s| age(t, t - Duration::from_secs(s));
        assert_eq!(ago(0), "0 s");
        assert_eq!(ago(42), "42 s");
        assert_eq!(ago(300), "5 min");
        assert_eq!(ago(3600 * 3 + 720), "3 h 12 min");
        assert_eq!(ago(86_400 * 2 + 3600 * 4), "2 d 4 h");
        assert_eq!(age(t, t + Duration::from_secs(5)), "0 s");
    }

    #[test]
    fn links_follow_the_base() {
        assert_eq!(Links::under("/").css, "/static/status.css");
        assert_eq!(Links::under("/ops").ready, "/ops/health/ready");
    }

    #[test]
    fn clock_takes_the_time_of_day() {
        assert_eq!(clock("2026-11-28T01:02:03.456Z"), "01:02:03");
        assert_eq!(clock("short"), "short");
    }
}
