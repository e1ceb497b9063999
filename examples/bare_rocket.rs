//! The benchmark's second baseline: Rocket with one route answering a constant JSON body and
//! nothing else of vitals (no fairings of its own, no pools). It shows what the framework
//! alone costs per request, so vitals' own share can be read off.
//!
//! usage: bare_rocket PORT

use rocket::http::ContentType;
use rocket::{get, routes};

#[get("/health/live")]
fn live() -> (ContentType, &'static str) {
    (ContentType::JSON, r#"{"status":"ok"}"#)
}

#[rocket::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: bare_rocket PORT");
    let figment = rocket::Config::figment()
        .merge(("port", port))
        .merge(("log_level", "critical"));
    let _ = rocket::custom(figment)
        .mount("/", routes![live])
        .launch()
        .await;
}
