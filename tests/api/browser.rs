//! The status page in headless Chromium against the real binary: the DOM as a browser builds
//! it, no policy violations, and screenshots (`target/screenshots/`; with
//! `VITALS_UPDATE_SCREENSHOTS=1` also `docs/`, where README shows them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::helpers::*;

/// Chromium's path, from `CHROMIUM` or the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium with `args` on `url`: its stdout and stderr.
async fn run_chromium(chromium: &Path, args: &[&str], url: &str) -> (String, String) {
    let profile = std::env::temp_dir().join(format!("vitals-chromium-{}", closed_port().await));
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), output)
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Renders `/status` of `server`: the DOM, and a screenshot saved as `name`.
async fn render(chromium: &Path, server: &Server, name: &str) -> String {
    let url = format!("http://127.0.0.1:{}/status", server.port);
    let (dom, log) = run_chromium(chromium, &["--dump-dom"], &url).await;
    assert!(
        !log.contains("Content Security Policy"),
        "CSP violation: {log}"
    );
    assert!(
        !log.contains("status.css") || !log.contains("Failed"),
        "stylesheet: {log}"
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join(format!("{name}.png"));
    let arg = format!("--screenshot={}", shot.display());
    run_chromium(chromium, &[&arg, "--window-size=1100,560"], &url).await;
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    if std::env::var_os("VITALS_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&shot, docs.join(format!("{name}.png"))).unwrap();
    }
    dom
}

fn skip() {
    assert!(
        std::env::var_os("VITALS_REQUIRE_BROWSER").is_none(),
        "chromium not found and VITALS_REQUIRE_BROWSER is set"
    );
    // Straight to the process's stderr: the harness captures `eprintln!` and would hide it.
    let _ = std::io::stderr().write_all(
        b"SKIPPED browser test: chromium not found (apt-get install chromium, or set CHROMIUM); \
          .ci/run installs it\n",
    );
}

#[tokio::test]
async fn a_browser_shows_a_healthy_service_as_ready() {
    let Some(chromium) = chromium() else {
        return skip();
    };
    let server = Server::start(&[]).await;
    for _ in 0..8 {
        server.get("/health/ready").await;
    }
    let dom = render(&chromium, &server, "status-healthy").await;
    assert!(dom.contains("<title>Ready · vitals</title>"), "{dom}");
    assert!(dom.contains("Every dependency answers"), "{dom}");
    assert_eq!(dom.matches("</span> OK</div>").count(), 2, "{dom}");
    assert!(
        dom.contains(r#"aria-label="last 9 runs: 0 failed""#),
        "{dom}"
    );
}

#[tokio::test]
async fn a_browser_shows_a_failing_dependency_in_words_with_its_error() {
    let Some(chromium) = chromium() else {
        return skip();
    };
    let silent = Silent::start().await;
    let server = Server::start(&[
        (
            "DATABASE_URL",
            format!(
                "postgres://postgres@127.0.0.1:{}/postgres",
                closed_port().await
            ),
        ),
        ("REDIS_URL", format!("redis://127.0.0.1:{}", silent.port)),
        ("ROCKET_HEALTH", "{timeout_ms=300}".into()),
    ])
    .await;
    for _ in 0..4 {
        server.get("/health/ready").await;
    }
    let dom = render(&chromium, &server, "status-failing").await;
    assert!(dom.contains("<title>Unavailable · vitals</title>"), "{dom}");
    assert!(
        dom.contains("Error") && dom.contains("Connection refused"),
        "{dom}"
    );
    assert!(
        dom.contains("Timeout") && dom.contains("no answer within 300 ms"),
        "{dom}"
    );
}

#[tokio::test]
async fn a_browser_sees_details_withheld_until_it_signs_in() {
    let Some(chromium) = chromium() else {
        return skip();
    };
    let token = "Br0wser-t0ken";
    let server = Server::start(&[
        (
            "DATABASE_URL",
            format!(
                "postgres://postgres@127.0.0.1:{}/postgres",
                closed_port().await
            ),
        ),
        (
            "ROCKET_HEALTH",
            format!("{{details=\"authorized\",token=\"{token}\"}}"),
        ),
    ])
    .await;
    let page = format!("http://127.0.0.1:{}/status", server.port);
    let (dom, _) = run_chromium(&chromium, &["--dump-dom"], &page).await;
    assert!(dom.contains("refused"), "the reason is shown: {dom}");
    assert!(!dom.contains("Connection refused"), "details leak: {dom}");
    assert!(dom.contains("Sign in to see them"), "{dom}");

    // The login path challenges (401, WWW-Authenticate: Basic); a headless browser has
    // nobody to ask for credentials, so it shows nothing of the page behind it.
    let login = format!("{page}/login");
    let (dom, _) = run_chromium(&chromium, &["--dump-dom"], &login).await;
    assert!(
        !dom.contains("Connection refused"),
        "details without credentials: {dom}"
    );
    let (status, _) = server.get("/status/login").await.expect("an answer");
    assert_eq!(status, 401);

    // With credentials (any user, the token as password) the details show.
    let signed_in = format!("http://ops:{token}@127.0.0.1:{}/status/login", server.port);
    let (dom, _) = run_chromium(&chromium, &["--dump-dom"], &signed_in).await;
    assert!(
        dom.contains("Connection refused"),
        "no details after signing in: {dom}"
    );
}
