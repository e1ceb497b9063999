//! `vitals healthcheck [URL]`: the probe client for a container `HEALTHCHECK` in an image
//! without curl.
//!
//! It GETs `URL` (default `http://127.0.0.1:$ROCKET_PORT/health/ready`, port 8000 when unset)
//! through the same hyper client as the `http` check, and exits 0 on a 2xx answer, 1 otherwise
//! (refused, no answer, non-2xx, a bad URL), always within 3 s. One line on stdout or stderr
//! says why, for `docker inspect`.

use std::process::ExitCode;
use std::time::Duration;

use crate::checks::http::{self, Target};

/// The bound on the whole probe: connect, send, read.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Most of an answer's body it reads; the first line is all it shows.
const MAX_BODY: usize = 16 * 1024;

/// The whole command: the probe of `url` on a runtime of its own, left at once when the probe
/// ends, so [`TIMEOUT`] bounds the process too (see [`on_own_runtime`]).
pub fn main(url: Option<String>) -> ExitCode {
    on_own_runtime(run(url)).unwrap_or(ExitCode::FAILURE)
}

// NOTE: a name lookup (getaddrinfo) runs on a blocking thread and cannot be cancelled. The
// probe's timeout stops waiting for it, but a runtime that is dropped, or shut down with a
// timeout as Rocket's is (500 ms), still waits for that thread: the process would outlive
// its 3 s. `shutdown_background` waits for nothing.
/// Runs `probe` on a current-thread runtime and returns its result as soon as it has one,
/// abandoning any blocking work still going; `None` when no runtime can be made (said on
/// stderr).
pub fn on_own_runtime<T>(probe: impl std::future::Future<Output = T>) -> Option<T> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("unhealthy: no runtime: {e}");
            return None;
        }
    };
    let result = runtime.block_on(probe);
    runtime.shutdown_background();
    Some(result)
}

/// Runs the probe of `url` (the default URL when `None`).
pub async fn run(url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| default_url(std::env::var("ROCKET_PORT").ok().as_deref()));
    // Named without credentials, should the URL carry any.
    let shown = Target::parse(&url).map_or_else(|_| crate::redact::sanitise(&url), |t| t.display());
    match tokio::time::timeout(TIMEOUT, get(&url)).await {
        Ok(Ok((status, body))) if (200..300).contains(&status) => {
            println!("healthy: {shown} answered {status} {body}");
            ExitCode::SUCCESS
        }
        Ok(Ok((status, body))) => {
            eprintln!("unhealthy: {shown} answered {status} {body}");
            ExitCode::FAILURE
        }
        Ok(Err(why)) => {
            eprintln!("unhealthy: {shown}: {why}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "unhealthy: {shown}: no answer within {} s",
                TIMEOUT.as_secs()
            );
            ExitCode::FAILURE
        }
    }
}

/// The readiness URL on this host at `port` (8000 when unset or unreadable).
pub fn default_url(port: Option<&str>) -> String {
    let port = port
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(8000);
    format!("http://127.0.0.1:{port}/health/ready")
}

/// One GET of `url` with no deadline of its own: the status code and the first line of the
/// body (at most 300 characters), or why there is none.
pub async fn get(url: &str) -> Result<(u16, String), String> {
    let target = Target::parse(url)?;
    let got = http::get(&target, MAX_BODY)
        .await
        .map_err(|f| f.to_string())?;
    let (status, body) = (got.status, String::from_utf8_lossy(&got.body));
    let first: String = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    Ok((status.as_u16(), first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_still_blocking_when_the_probe_gives_up_does_not_hold_the_exit() {
        // A resolver that hangs, as getaddrinfo does when its DNS server never answers.
        let hanging_lookup = || std::thread::sleep(Duration::from_secs(2));
        let started = std::time::Instant::now();
        let gave_up = on_own_runtime(async move {
            let lookup = tokio::task::spawn_blocking(hanging_lookup);
            tokio::time::timeout(Duration::from_millis(100), lookup)
                .await
                .is_err()
        });
        assert_eq!(gave_up, Some(true));
        let took = started.elapsed();
        assert!(took < Duration::from_millis(400), "took {took:?}");
    }

    #[test]
    fn default_url_uses_rocket_port_or_8000() {
        assert_eq!(
            default_url(Some("9000")),
            "http://127.0.0.1:9000/health/ready"
        );
        assert_eq!(default_url(None), "http://127.0.0.1:8000/health/ready");
        assert_eq!(
            default_url(Some("nope")),
            "http://127.0.0.1:8000/health/ready"
        );
    }
}
