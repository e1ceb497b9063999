//! `vitals healthcheck [URL]`: the probe client for a container `HEALTHCHECK` in an image
//! without curl.
//!
//! It GETs `URL` (default `http://127.0.0.1:$ROCKET_PORT/health/ready`, port 8000 when unset)
//! over plain HTTP/1.1 and exits 0 on a 2xx answer, 1 otherwise (refused, no answer, non-2xx,
//! a bad URL), always within 3 s. One line on stdout or stderr says why, for `docker inspect`.
//! Deliberately tiny: a full HTTP client crate would dwarf the rest of the binary.

use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The bound on the whole probe: connect, send, read.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Most of an answer it reads; the status line is all it needs.
const MAX_ANSWER: usize = 16 * 1024;

/// Runs the probe with the command-line arguments after `healthcheck`.
pub async fn run(args: &[String]) -> ExitCode {
    let url = match args {
        [] => default_url(std::env::var("ROCKET_PORT").ok().as_deref()),
        [flag] if flag == "-h" || flag == "--help" => {
            println!(
                "usage: vitals healthcheck [URL]\n  default URL: {}",
                default_url(None)
            );
            return ExitCode::SUCCESS;
        }
        [url] => url.clone(),
        _ => {
            eprintln!("unhealthy: usage: vitals healthcheck [URL]");
            return ExitCode::FAILURE;
        }
    };
    match tokio::time::timeout(TIMEOUT, get(&url)).await {
        Ok(Ok((status, body))) if (200..300).contains(&status) => {
            println!("healthy: {url} answered {status} {body}");
            ExitCode::SUCCESS
        }
        Ok(Ok((status, body))) => {
            eprintln!("unhealthy: {url} answered {status} {body}");
            ExitCode::FAILURE
        }
        Ok(Err(why)) => {
            eprintln!("unhealthy: {url}: {why}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("unhealthy: {url}: no answer within {} s", TIMEOUT.as_secs());
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

/// Where an `http://` URL points.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, 80 when the URL names none.
    pub port: u16,
    /// Path and query, `/` when empty.
    pub path: String,
}

/// Parses a plain `http://host[:port][/path]` URL.
pub fn parse(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("no host in URL".into());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port '{p}'"))?,
        None => 80,
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        path: if path.is_empty() { "/" } else { path }.to_owned(),
    })
}

/// One GET of `url` with no deadline of its own: the status code and the first line of the
/// body (at most 300 characters), or why there is none.
pub async fn get(url: &str) -> Result<(u16, String), String> {
    let target = parse(url)?;
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| e.to_string())?;
    let host = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vitals-healthcheck\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        target.path
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::with_capacity(1024);
    let mut limited = (&mut stream).take(MAX_ANSWER as u64);
    limited
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    parse_answer(&answer)
}

/// The status code of an HTTP/1.x answer and its body's first line, cut short.
fn parse_answer(answer: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or("");
    let mut words = status_line.split(' ');
    let status = match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    };
    let status = status.ok_or_else(|| format!("not an HTTP answer: {:.60}", status_line))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let body: String = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    Ok((status, body))
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

    #[test]
    fn urls_parse_into_host_port_and_path() {
        let t = parse("http://localhost:8080/health/live?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                host: "localhost".into(),
                port: 8080,
                path: "/health/live?x=1".into()
            }
        );
        assert_eq!(parse("http://h").unwrap().port, 80);
        assert_eq!(parse("http://h").unwrap().path, "/");
        assert_eq!(parse("http://[::1]:81/x").unwrap().host, "::1");
    }

    #[test]
    fn unsupported_urls_are_refused() {
        assert!(parse("https://h/").is_err());
        assert!(parse("http://:80/").is_err());
        assert!(parse("http://h:99999/").is_err());
        assert!(parse("http://u:p@h/").is_err());
    }

    #[test]
    fn answers_give_their_status_and_first_body_line() {
        let answer = b"HTTP/1.1 503 Service Unavailable\r\nA: b\r\n\r\n{\"status\":\"draining\"}";
        assert_eq!(
            parse_answer(answer),
            Ok((503, "{\"status\":\"draining\"}".to_owned()))
        );
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_answer(b"").is_err());
    }
}
