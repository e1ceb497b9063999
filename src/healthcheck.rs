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
