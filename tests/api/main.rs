//! Integration tests against the real Postgres and Redis: one binary, one build.

mod browser;
mod coalescing;
mod config;
mod databases;
mod declared;
mod details;
mod disabled;
mod embedding;
mod faults;
mod fixtures;
mod forms;
mod guest;
mod helpers;
mod holding;
mod listener;
mod live;
mod metrics;
mod odd_requests;
mod probes;
mod process;
mod ready;
mod reasons;
mod secrets;
mod startup;
mod status_page;
mod surface;
