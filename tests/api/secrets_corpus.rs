//! No credential anywhere, for every way one can be configured: URL passwords (plain,
//! percent-encoded, with `@` inside), secret query parameters (`password`, `sslpassword`,
//! `pass`, `api_key`, `token`...), an HTTP check's query values and Basic credentials, the
//! details token. Each is looked for in the JSON and text answers, the status page, the
//! metrics and the log; and, in real processes, in stdout and stderr: sqlx's own warnings,
//! configuration errors and a check's panic.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// A local HTTP server that answers 401 with a body whose first line echoes the request's
/// head: its request line and every header, `Authorization` included.
struct Echo {
    port: u16,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    // Authorization first, so the check's excerpt of the body holds it.
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                    lines.sort_by_key(|l| !l.to_ascii_lowercase().starts_with("authorization"));
                    let echoed = lines.join(" | ");
                    let body = format!("you sent: {echoed}\n");
                    let answer = format!(
                        "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Echo { port, task }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `user:password` as a Basic `Authorization` header carries it.
fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// One configuration: the overrides that hold the credential, and every spelling of it that
/// must never be seen.
struct Case {
    name: &'static str,
    config: Vec<(&'static str, figment::value::Value)>,
    hidden: Vec<String>,
}

fn case(name: &'static str, config: Vec<(&'static str, String)>, hidden: &[&str]) -> Case {
    Case {
        name,
        config: config.into_iter().map(|(k, v)| (k, val(v))).collect(),
        hidden: hidden.iter().map(|s| s.to_string()).collect(),
    }
}

/// A declared `http` check of `url`, named `web`.
fn http_check(url: String) -> Vec<(&'static str, String)> {
    vec![
        ("health.checks.web.kind", "http".into()),
        ("health.checks.web.url", url),
    ]
}

fn corpus(closed: u16, echo: u16) -> Vec<Case> {
    let pg = "databases.postgres.url";
    let redis = "databases.redis.url";
    let at = |path: &str| format!("http://127.0.0.1:{echo}{path}");
    vec![
        // Trust auth accepts any password; the server then names the database, which is it.
        case(
            "a postgres password that the server echoes",
            vec![(pg, "postgres://postgres:Cp-01-plain@127.0.0.1:5432/Cp-01-plain".into())],
            &["Cp-01-plain"],
        ),
        case(
            "a percent-encoded postgres password",
            vec![(pg, "postgres://postgres:Cp%2F02%40enc@127.0.0.1:5432/Cp%2F02%40enc".into())],
            &["Cp%2F02%40enc", "Cp/02@enc"],
        ),
        case(
            "a postgres password with an @ inside",
            vec![(pg, format!("postgres://postgres:Cp@03at@127.0.0.1:{closed}/postgres"))],
            &["Cp@03at", "Cp%4003at"],
        ),
        case(
            "a postgres password as the password parameter",
            vec![(pg, "postgres://postgres@127.0.0.1:5432/Cq-04-query?password=Cq-04-query".into())],
            &["Cq-04-query"],
        ),
        case(
            "libpq's sslpassword, which sqlx does not know",
            vec![(pg, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&sslpassword=Cq-05-sslpw".into())],
            &["Cq-05-sslpw"],
        ),
        case(
            "a misspelt password parameter",
            vec![(pg, "postgres://postgres@127.0.0.1:5432/postgres?pasword=Cq-06-typo".into())],
            &["Cq-06-typo"],
        ),
        case(
            "an api_key parameter on a postgres URL",
            vec![(pg, format!("postgres://postgres@127.0.0.1:{closed}/postgres?api_key=Cq-07-key"))],
            &["Cq-07-key"],
        ),
        case(
            "a redis password the server refuses",
            vec![(redis, "redis://:Cr-08-pass@127.0.0.1:6379".into())],
            &["Cr-08-pass"],
        ),
        case(
            "a redis user and password on a closed port",
            vec![(redis, format!("redis://default:Cr-09-user@127.0.0.1:{closed}/0"))],
            &["Cr-09-user"],
        ),
        case(
            "a percent-encoded redis password",
            vec![(redis, format!("redis://:Cr%2310%3Aenc@127.0.0.1:{closed}"))],
            &["Cr%2310%3Aenc", "Cr#10:enc"],
        ),
        case(
            "a rediss password",
            vec![(redis, format!("rediss://:Cr-11-tls@127.0.0.1:{closed}"))],
            &["Cr-11-tls"],
        ),
        case(
            "redis-rs's pass parameter",
            vec![(redis, format!("redis://127.0.0.1:{closed}/0?pass=Cr-12-pass"))],
            &["Cr-12-pass"],
        ),
        case(
            "an http check's api_key",
            http_check(at("/health?api_key=Ch-13-apikey")),
            &["Ch-13-apikey"],
        ),
        case(
            "an http check's token among other parameters",
            http_check(at("/health?v=1&access_token=Ch-14-token&x=y")),
            &["Ch-14-token"],
        ),
        case(
            "an http check's secret in a capitalised key",
            http_check(at("/health?Client_Secret=Ch-15-secret")),
            &["Ch-15-secret"],
        ),
        case(
            "an http check's long value under a plain key",
            http_check(at("/health?sig=Ch-16-signature")),
            &["Ch-16-signature"],
        ),
        case(
            "Basic credentials an upstream echoes",
            http_check(format!("http://ops:Ch-17-basic@127.0.0.1:{echo}/health")),
            &["Ch-17-basic", &base64("ops:Ch-17-basic")],
        ),
        case(
            "percent-encoded Basic credentials an upstream echoes",
            http_check(format!("http://ops:Ch%2018%40b@127.0.0.1:{echo}/")),
            &["Ch%2018%40b", "Ch 18@b", &base64("ops:Ch 18@b")],
        ),
        case(
            "an https check's api_key on a closed port",
            http_check(format!("https://127.0.0.1:{closed}/health?api_key=Ch-19-tls")),
            &["Ch-19-tls"],
        ),
        case(
            "the details token",
            vec![("health.token", "Ct-20-token".into())],
            &["Ct-20-token"],
        ),
    ]
}

/// Everything the app shows of itself: every form of readiness, the page and the metrics.
async fn everything_shown(app: &TestApp) -> String {
    let mut shown = String::new();
    for uri in [
        "/health/ready",
        "/health/ready?verbose",
        "/status",
        "/metrics",
    ] {
        let response = app.client.get(uri).dispatch().await;
        shown.push_str(&format!("{:?}\n", response.headers()));
        shown.push_str(&response.into_string().await.unwrap_or_default());
    }
    shown
}

#[rocket::async_test]
async fn no_credential_of_the_corpus_shows_in_any_answer_page_metric_or_log_line() {
    let closed = closed_port().await;
    let echo = Echo::start().await;
    let mut leaks = Vec::new();
    for case in corpus(closed, echo.port) {
        let mut config = vec![
            ("health.details", val("always")),
            ("health.timeout_ms", val(1000)),
        ];
        config.extend(case.config);
        let app = spawn_app(config).await;
        let shown = everything_shown(&app).await;
        assert!(shown.contains("readyz check"), "{}: {shown}", case.name);
        for secret in &case.hidden {
            if shown.contains(secret.as_str()) {
                leaks.push(format!("{}: {secret} is shown", case.name));
            }
            if logs().iter().any(|l| l.contains(secret.as_str())) {
                leaks.push(format!("{}: {secret} is logged", case.name));
            }
        }
        app.client.terminate().await;
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[rocket::async_test]
async fn an_http_checks_error_text_shows_query_values_as_stars_and_no_echoed_authorization() {
    let echo = Echo::start().await;
    let url = format!(
        "http://ops:Pw-echoed-5e1@127.0.0.1:{}/health?api_key=Key-echoed-5e2&v=1",
        echo.port
    );
    let mut config = vec![("health.details", val("always"))];
    config.extend(http_check(url).into_iter().map(|(k, v)| (k, val(v))));
    let app = spawn_app(config).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check("web")["reason"], "http_status");
    let error = answer.check("web")["error"].as_str().unwrap().to_owned();
    let shown_at = format!("http://127.0.0.1:{}/health?api_key=***&v=***", echo.port);
    assert!(error.starts_with(&shown_at), "{error}");
    // The echo reached the text, with the header's value hidden.
    assert!(error.contains("authorization: ***"), "{error}");
    for secret in [
        "Pw-echoed-5e1",
        "Key-echoed-5e2",
        &base64("ops:Pw-echoed-5e1"),
    ] {
        assert!(!error.contains(secret), "{error}");
    }
}

/// A program of this package running on a spare port, its stdout and stderr collected.
struct Process {
    port: u16,
    child: Child,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
}

impl Process {
    fn spawn(
        program: &std::path::Path,
        envs: &[(&str, String)],
    ) -> (Child, JoinHandle<String>, JoinHandle<String>) {
        let mut child = Command::new(program)
            .env("ROCKET_CLI_COLORS", "false")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()));
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text).await;
            text
        });
        let err = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        (child, out, err)
    }

    /// Starts `program` with `envs` and waits until `live` answers 200.
    async fn start(program: &std::path::Path, envs: &[(&str, String)], live: &str) -> Process {
        let port = closed_port().await;
        let mut envs = envs.to_vec();
        envs.push(("ROCKET_PORT", port.to_string()));
        let (child, out, err) = Process::spawn(program, &envs);
        let process = Process {
            port,
            child,
            out,
            err,
        };
        let up = eventually(Duration::from_secs(20), || async {
            process.get(live).await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        assert!(up, "{} did not start serving", program.display());
        process
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        vitals::healthcheck::get(&url).await.ok()
    }

    /// Stops the process: everything it wrote to stdout and stderr.
    async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        format!("{}{}", self.out.await.unwrap(), self.err.await.unwrap())
    }
}

/// Runs the vitals binary with `envs` until it exits by itself (a launch error): its exit
/// status and everything it wrote.
async fn launch_failure(envs: &[(&str, String)]) -> (std::process::ExitStatus, String) {
    let port = closed_port().await;
    let mut envs = envs.to_vec();
    envs.push(("ROCKET_PORT", port.to_string()));
    let (mut child, out, err) = Process::spawn(std::path::Path::new(BIN), &envs);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("a bad configuration stops launch")
        .unwrap();
    (
        status,
        format!("{}{}", out.await.unwrap(), err.await.unwrap()),
    )
}

#[tokio::test]
async fn sqlx_never_logs_the_value_of_a_connect_parameter_it_does_not_know() {
    let url = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&sslpassword=KeyPass123&pasword=Misspelt456";
    let server = Process::start(
        std::path::Path::new(BIN),
        &[
            ("DATABASE_URL", url.into()),
            ("REDIS_URL", "redis://127.0.0.1:6379".into()),
        ],
        "/health/live",
    )
    .await;
    // The pool works: the parameters sqlx knows are kept.
    assert_eq!(server.get("/health/ready").await.map(|a| a.0), Some(200));
    let log = server.stop().await;
    assert!(!log.contains("KeyPass123"), "{log}");
    assert!(!log.contains("Misspelt456"), "{log}");
    // What is ignored is said, by its key.
    assert!(log.contains("parameter 'sslpassword'"), "{log}");
    assert!(log.contains("parameter 'pasword'"), "{log}");
}

#[tokio::test]
async fn an_unquoted_token_in_rocket_health_stops_launch_without_showing_it() {
    let (status, log) = launch_failure(&[(
        "ROCKET_HEALTH",
        r#"{details="authorized",token=trueblue7}"#.into(),
    )])
    .await;
    assert!(!status.success());
    assert!(!log.contains("trueblue7"), "{log}");
    assert!(log.contains("invalid configuration"), "{log}");
    // figment names an environment variable's key as the variable spells it.
    assert!(log.contains(r#"for key "HEALTH" in `ROCKET_`"#), "{log}");
    assert!(log.contains(r#"token="...""#), "{log}");
}

#[tokio::test]
async fn a_numeric_token_stops_launch_without_showing_it() {
    let (status, log) = launch_failure(&[(
        "ROCKET_HEALTH",
        r#"{details="authorized",token=12345678}"#.into(),
    )])
    .await;
    assert!(!status.success());
    assert!(!log.contains("12345678"), "{log}");
    assert!(log.contains(r#"for key "HEALTH.TOKEN""#), "{log}");
}

/// Where cargo put the example `name`: beside the test binary's `deps` folder.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

#[tokio::test]
async fn a_checks_panic_reaches_stderr_and_the_answer_only_sanitised() {
    let guest = Process::start(
        &example("guest"),
        &[("GUEST_PANIC", "1".into())],
        "/ops/health/live",
    )
    .await;
    let (status, body) = guest
        .get("/ops/health/ready")
        .await
        .expect("readiness answers");
    assert_eq!(status, 503);
    assert!(
        body.contains("the check panicked: redis://:***@h down"),
        "{body}"
    );
    // The process lives on, and so does the check: the next probe runs it again.
    assert_eq!(guest.get("/ops/health/ready").await.map(|a| a.0), Some(503));
    let output = guest.stop().await;
    assert!(!output.contains("pw1234"), "{output}");
    assert!(
        output.contains("thread 'vitals-check' panicked at"),
        "{output}"
    );
    assert!(output.contains("redis://:***@h down"), "{output}");
}

/// A host's check that passes and names one secret.
struct Keeps(&'static str);

#[rocket::async_trait]
impl vitals::Check for Keeps {
    async fn run(&self, _: &vitals::Run) -> Result<(), vitals::Failure> {
        Ok(())
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.0.to_owned()]
    }
}

#[rocket::async_test]
async fn a_host_checks_secret_is_hidden_in_answers_that_are_not_its_own() {
    capture_logs(); // before `rocket::custom` installs Rocket's logger
    let secret = "Host-secret-81";
    let vitals = vitals::Vitals::new().check("vault", Keeps(secret));
    let rocket = rocket::custom(rocket::Config::figment()).attach(vitals);
    let client = rocket::local::asynchronous::Client::tracked(rocket)
        .await
        .expect("the host app ignites");
    // The refusal names the excluded name, which here is the secret.
    let refused = client
        .get(format!("/health/ready?exclude={secret}"))
        .dispatch()
        .await;
    assert_eq!(refused.status(), rocket::http::Status::BadRequest);
    let body = refused.into_string().await.unwrap();
    assert!(
        body.contains("cannot exclude unknown check '***'"),
        "{body}"
    );
}
