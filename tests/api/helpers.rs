//! The app under test behind Rocket's local client, its answers, URL helpers, polling, and the
//! captured log. Fault fixtures live in `fixtures` and are re-exported here, so a test file
//! needs one `use crate::helpers::*`.

pub use crate::fixtures::*;

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use figment::value::Value;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::Value as Json;

/// The app under test, behind Rocket's local client.
pub struct TestApp {
    pub client: Client,
}

/// A parsed answer: status, content type, `Cache-Control`, JSON body, and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub status: Status,
    pub content_type: Option<ContentType>,
    pub cache_control: Option<String>,
    pub json: Json,
    pub elapsed: Duration,
}

impl Answer {
    /// The check named `name` in the body's `checks` map.
    pub fn check(&self, name: &str) -> &Json {
        &self.json["checks"][name]
    }

    /// The names in the body's `checks` map, in order.
    pub fn check_names(&self) -> Vec<String> {
        let checks = self.json["checks"].as_object();
        checks
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The status word of the check named `name`.
    pub fn check_status(&self, name: &str) -> &str {
        self.check(name)["status"].as_str().unwrap_or("<missing>")
    }
}

/// Builds the app from `Rocket.toml` and the environment (as `vitals::rocket()` does), with
/// `overrides` merged on top.
pub async fn spawn_app<'a>(overrides: impl IntoIterator<Item = (&'a str, Value)>) -> TestApp {
    capture_logs();
    let figment = overrides
        .into_iter()
        .fold(vitals::figment(), |f, (k, v)| f.merge((k, v)));
    let client = Client::tracked(vitals::build(figment))
        .await
        .expect("the app ignites");
    TestApp { client }
}

impl TestApp {
    pub async fn get(&self, uri: &str) -> Answer {
        let started = Instant::now();
        let response = self.client.get(uri.to_owned()).dispatch().await;
        answer(response, started).await
    }

    pub async fn get_live(&self) -> Answer {
        self.get("/health/live").await
    }

    pub async fn get_ready(&self) -> Answer {
        self.get("/health/ready").await
    }

    pub async fn get_startup(&self) -> Answer {
        self.get("/health/startup").await
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get("/metrics").dispatch().await;
        response.into_string().await.unwrap_or_default()
    }

    /// Starts a drain as a signal would, without the signal.
    pub fn begin_drain(&self) {
        let lifecycle = self.client.rocket().state::<vitals::Lifecycle>();
        lifecycle.expect("the lifecycle is managed").begin_drain();
    }
}

async fn answer(response: LocalResponse<'_>, started: Instant) -> Answer {
    let status = response.status();
    let content_type = response.content_type();
    let cache_control = response
        .headers()
        .get_one("Cache-Control")
        .map(str::to_owned);
    let body = response.into_string().await.unwrap_or_default();
    let json = rocket::serde::json::from_str(&body).unwrap_or(Json::String(body));
    Answer {
        status,
        content_type,
        cache_control,
        json,
        elapsed: started.elapsed(),
    }
}

/// A string value for an override.
pub fn val(v: impl Into<Value>) -> Value {
    v.into()
}

/// A Postgres URL for `port` on 127.0.0.1.
pub fn pg_url(port: u16) -> Value {
    format!("postgres://postgres@127.0.0.1:{port}/postgres").into()
}

/// A Redis URL for `port` on 127.0.0.1.
pub fn redis_url(port: u16) -> Value {
    format!("redis://127.0.0.1:{port}").into()
}

/// Polls `probe` until it returns true, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Every log line any app in this test binary wrote so far, formatted as in `release`.
pub fn logs() -> Vec<String> {
    LOGS.lock().unwrap().clone()
}

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = vitals::logging::format_record(
            vitals::logging::Format::Json,
            record,
            std::time::SystemTime::now(),
        );
        LOGS.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger once, before any Rocket installs its own.
pub fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CaptureLogger).expect("no logger installed before");
        log::set_max_level(log::LevelFilter::Info);
    });
}
