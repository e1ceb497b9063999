//! Integration tests against the real Postgres and Redis: one binary, one build.

mod coalescing;
mod config;
mod faults;
mod helpers;
mod live;
mod odd_requests;
mod ready;
mod secrets;
mod startup;
