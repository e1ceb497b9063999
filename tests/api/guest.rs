//! vitals as a guest in a host app: the host's answers, logs, metrics, signals and shutdown
//! settings stay the host's; check runs cannot stall liveness, hold an answer past its
//! deadline or strand a host connection; a second `Vitals` stops launch.

use std::time::{Duration, Instant};

use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes, Build, Rocket};
use vitals::Vitals;

use crate::helpers::*;

// The guest example's own routes, reused in process.
#[allow(dead_code)] // its `rocket()` and `slow` are for the process tests below
#[path = "../host/guest.rs"]
mod guest_app;

#[get("/hello")]
fn hello() -> &'static str {
    "hello"
}

#[get("/echo/<word>")]
fn echo(word: &str) -> String {
    word.to_owned()
}

/// A host app with its own routes and `vitals`, configured from `Rocket.toml` and `overrides`.
fn host(vitals: Vitals, overrides: &[(&str, figment::value::Value)]) -> Rocket<Build> {
    capture_logs(); // before `rocket::custom` installs Rocket's logger
    let figment = overrides
        .iter()
        .fold(rocket::Config::figment(), |f, (k, v)| {
            f.merge((*k, v.clone()))
        });
    rocket::custom(figment)
        .mount("/", routes![guest_app::cached, hello, echo])
        .attach(vitals)
}

async fn client(rocket: Rocket<Build>) -> Client {
    Client::tracked(rocket).await.expect("the host app ignites")
}

#[rocket::async_test]
async fn the_hosts_caching_headers_survive_and_vitals_answers_are_no_store() {
    let app = client(host(Vitals::new(), &[])).await;
    let page = app.get("/cached").dispatch().await;
    assert_eq!(page.status(), Status::Ok);
    assert_eq!(
        page.headers().get_one("Cache-Control"),
        Some("public, max-age=3600")
    );
    let live = app.get("/health/live").dispatch().await;
    assert_eq!(live.headers().get_one("Cache-Control"), Some("no-store"));
}

#[rocket::async_test]
async fn vitals_catchers_under_its_base_are_no_store_and_the_hosts_404_is_untouched() {
    let app = client(host(Vitals::new().base("/ops"), &[])).await;
    let missing = app.get("/ops/nope").dispatch().await;
    assert_eq!(missing.status(), Status::NotFound);
    assert_eq!(missing.headers().get_one("Cache-Control"), Some("no-store"));
    let hosts = app.get("/nope").dispatch().await;
    assert_eq!(hosts.status(), Status::NotFound);
    assert_eq!(hosts.headers().get_one("Cache-Control"), None);
}

#[rocket::async_test]
async fn the_hosts_requests_are_not_logged_or_counted_unless_it_asks() {
    let app = client(host(Vitals::new(), &[])).await;
    let path = "/echo/unlogged-by-vitals";
    assert_eq!(app.get(path).dispatch().await.status(), Status::Ok);
    app.get("/health/live").dispatch().await;
    let logged = |path: &str| {
        logs()
            .iter()
            .any(|l| l.contains(r#""target":"vitals::http""#) && l.contains(path))
    };
    assert!(!logged(path), "a host request was logged by vitals");
    assert!(logged("/health/live"), "vitals' own request was not logged");
    let metrics = app.get("/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(!text.contains(r#"route="echo""#), "{text}");
    assert!(text.contains(r#"vitals_http_requests_total{route="live",status="200"}"#));
}

#[rocket::async_test]
async fn a_host_that_asks_gets_its_requests_logged_and_counted() {
    let app = client(host(Vitals::new().host_requests(true), &[])).await;
    assert_eq!(app.get("/hello").dispatch().await.status(), Status::Ok);
    let metrics = app.get("/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains(r#"vitals_http_requests_total{route="hello",status="200"} 1"#),
        "{text}"
    );
}

#[rocket::async_test]
async fn without_the_drain_rockets_signal_handling_stays_the_hosts() {
    let kept = client(host(Vitals::new().drain_on_signal(false), &[])).await;
    let shutdown = &kept.rocket().config().shutdown;
    assert!(shutdown.ctrlc, "ctrlc was turned off");
    #[cfg(unix)]
    assert!(
        !shutdown.signals.is_empty(),
        "Rocket's signals were removed"
    );
    let drained = client(host(Vitals::new(), &[("shutdown.grace", 7.into())])).await;
    let shutdown = &drained.rocket().config().shutdown;
    assert!(!shutdown.ctrlc, "the drain did not take SIGINT");
    assert_eq!(shutdown.grace, 7, "the host's grace was changed");
}

#[rocket::async_test]
async fn attaching_vitals_twice_stops_launch_naming_the_cause() {
    let rocket = host(Vitals::new(), &[]).attach(Vitals::new().base("/other"));
    let ignited = rocket.ignite().await.map_err(|e| e.to_string());
    assert!(ignited.is_err(), "a second Vitals ignited");
    let named = logs()
        .iter()
        .any(|l| l.contains("vitals is attached twice (the second at base /other)"));
    assert!(named, "no error line names the second Vitals");
}

/// The deadline a host app's check `x` gets from `figment` (no `Rocket.toml`), in seconds.
async fn deadline_of_x(figment: figment::Figment) -> String {
    capture_logs();
    let vitals = Vitals::new().check_fn("x", || async { Ok::<(), String>(()) });
    let app = Client::tracked(rocket::custom(figment).attach(vitals))
        .await
        .expect("ignites");
    let text = app.get("/metrics").dispatch().await.into_string().await;
    let text = text.unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.starts_with(r#"vitals_check_deadline_seconds{check="x"}"#));
    line.and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_owned()
}

#[rocket::async_test]
async fn a_host_gets_the_built_in_defaults_of_its_profile() {
    let bare = |profile: &str| {
        figment::Figment::from(rocket::Config::default()).select(profile.to_owned())
    };
    assert_eq!(deadline_of_x(bare("release")).await, "0.8");
    assert_eq!(deadline_of_x(bare("debug")).await, "2");
    assert_eq!(deadline_of_x(bare("other")).await, "1");
    // The host's own [default.health] wins over the built-in profile value.
    let own = figment::Figment::from(rocket::Config::default())
        .merge(figment::providers::Serialized::defaults(
            rocket::serde::json::json!({"health": {"timeout_ms": 300}}),
        ))
        .select("release");
    assert_eq!(deadline_of_x(own).await, "0.3");
}

/// A check that blocks its thread: the most common mistake in host code.
fn blocking_check(vitals: Vitals, ms: u64) -> Vitals {
    vitals.check_fn("blocking", move || async move {
        std::thread::sleep(Duration::from_millis(ms));
        Ok::<(), String>(())
    })
}

#[rocket::async_test]
async fn a_check_that_blocks_its_thread_holds_neither_liveness_nor_readiness() {
    let port = closed_port().await;
    let rocket = host(
        blocking_check(Vitals::new(), 3000),
        &[
            ("health.port", port.into()),
            ("health.timeout_ms", 300.into()),
            ("health.details", "always".into()),
        ],
    );
    let app = client(rocket).await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let up = eventually(Duration::from_secs(5), || async {
        vitals::healthcheck::get(&url("/health/live")).await.is_ok()
    })
    .await;
    assert!(up, "the health port never answered");

    // Readiness on Rocket's port: `timeout` by the deadline, while the check still blocks.
    let asked = Instant::now();
    let ready = app.get("/health/ready").dispatch().await;
    let took = asked.elapsed();
    assert_eq!(ready.status(), Status::ServiceUnavailable);
    let body = ready.into_string().await.unwrap();
    assert!(body.contains(r#""status":"timeout""#), "{body}");
    assert!(took < Duration::from_millis(800), "readiness took {took:?}");

    // Liveness on the health port answers in milliseconds meanwhile.
    for _ in 0..5 {
        let asked = Instant::now();
        let (status, _) = vitals::healthcheck::get(&url("/health/live"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        let took = asked.elapsed();
        assert!(took < Duration::from_millis(100), "liveness took {took:?}");
    }

    // Readiness on the health port joins the same stuck run: `timeout`, no second run.
    let asked = Instant::now();
    let (status, body) = vitals::healthcheck::get(&url("/health/ready"))
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("the run is still going"), "{body}");
    assert!(asked.elapsed() < Duration::from_millis(800));

    // The gauge shows the overdue run.
    let metrics = app.get("/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains(r#"vitals_check_overdue{check="blocking"} 1"#),
        "{text}"
    );
    let runs = r#"vitals_check_runs_total{check="blocking",outcome="ok"} 0"#;
    assert!(text.contains(runs), "{text}");
    app.terminate().await;
}

/// A program of this package (the `vitals` binary or an example) running as a process on a
/// spare port, its stdout kept.
struct Process {
    port: u16,
    child: tokio::process::Child,
}

/// Where cargo put the example `name`: beside the test binary's `deps` folder.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: plain `cargo test` builds the examples (or `cargo build --examples`)",
        path.display()
    );
    path
}

impl Process {
    /// Starts `program` in `dir` with `envs` and waits until `live` answers 200.
    async fn start(
        program: &std::path::Path,
        dir: &std::path::Path,
        envs: &[(&str, String)],
        live: &str,
    ) -> Process {
        Process::start_as(tokio::process::Command::new(program), dir, envs, live).await
    }

    /// Starts `command` (a program, or a program under a wrapper like `taskset`) in `dir`
    /// with `envs` and waits until `live` answers 200.
    async fn start_as(
        mut command: tokio::process::Command,
        dir: &std::path::Path,
        envs: &[(&str, String)],
        live: &str,
    ) -> Process {
        let program = std::path::PathBuf::from(command.as_std().get_program());
        let port = closed_port().await;
        let child = command
            .current_dir(dir)
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_CLI_COLORS", "false")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()));
        let process = Process { port, child };
        let up = eventually(Duration::from_secs(20), || async {
            process.get(live).await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        assert!(up, "{} did not start serving", program.display());
        process
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        get_on(self.port, path).await
    }

    /// The raw answer (head and body) to a GET of `path`.
    async fn raw(&self, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    fn terminate(&self) {
        let pid = self.child.id().expect("still running");
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    }

    /// Waits for exit (at most 15 s): the exit status and everything written to stdout.
    async fn exit(self) -> (std::process::ExitStatus, String) {
        exit_of(self.child, Duration::from_secs(15)).await
    }
}

async fn get_on(port: u16, path: &str) -> Option<(u16, String)> {
    vitals::healthcheck::get(&format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()
}

/// Waits until a `pg_sleep` of the host's pool (application name `vitals`) runs on Postgres.
async fn a_host_query_is_in_flight() -> bool {
    let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("the shared Postgres answers");
    let sql = "SELECT count(*) FROM pg_stat_activity \
               WHERE application_name = 'vitals' AND query LIKE 'SELECT pg_sleep%' \
               AND state = 'active'";
    eventually(Duration::from_secs(5), || async {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&pool)
            .await
            .is_ok_and(|n| n >= 1)
    })
    .await
}

/// SIGTERM while the host's `/slow` query runs: the answer still comes, and the host exits 0.
async fn sigterm_during_a_slow_request(guest: Process) -> String {
    let slow = terminate_during_a_slow_request(&guest, 1500).await;
    answered_then_exited_0(guest, slow).await
}

/// Asks the host's `/slow?ms=<ms>`, and sends SIGTERM once its query runs.
async fn terminate_during_a_slow_request(
    guest: &Process,
    ms: u64,
) -> tokio::task::JoinHandle<Option<(u16, String)>> {
    let port = guest.port;
    let slow = tokio::spawn(async move { get_on(port, &format!("/slow?ms={ms}")).await });
    assert!(
        a_host_query_is_in_flight().await,
        "the host's query never ran"
    );
    guest.terminate();
    slow
}

/// The `/slow` answer came whole and the host exited 0; its output.
async fn answered_then_exited_0(
    guest: Process,
    slow: tokio::task::JoinHandle<Option<(u16, String)>>,
) -> String {
    let answer = slow.await.unwrap();
    let (status, out) = guest.exit().await;
    assert_eq!(answer, Some((200, "slept".to_owned())), "{out}");
    assert!(status.success(), "{status}\n{out}");
    out
}

#[tokio::test]
async fn a_guest_with_the_drain_off_leaves_headers_logs_and_sigterm_to_its_host() {
    let dir = std::env::current_dir().unwrap();
    let guest = Process::start(&example("guest"), &dir, &[], "/ops/health/live").await;
    let cached = guest.raw("/cached").await.to_ascii_lowercase();
    assert!(
        cached.contains("cache-control: public, max-age=3600"),
        "{cached}"
    );
    assert!(!cached.contains("no-store"), "{cached}");
    let live = guest.raw("/ops/health/live").await.to_ascii_lowercase();
    assert!(live.contains("cache-control: no-store"), "{live}");
    assert_eq!(guest.get("/ops/health/ready").await.unwrap().0, 200);

    let out = sigterm_during_a_slow_request(guest).await;
    // Rocket's own request lines are there; vitals logged none for the host's routes.
    assert!(out.contains("GET /cached"), "{out}");
    assert!(!out.contains("/cached 200 in"), "{out}");
    assert!(!out.contains("/slow 200 in"), "{out}");
    assert!(out.contains("/ops/health/ready 200 in"), "{out}");
}

/// The guest with `health.port`, once readiness there is 200 (its check has opened the
/// pool's one connection, on vitals' check runtime); the port.
async fn guest_with_a_health_port() -> (Process, u16) {
    let dir = std::env::current_dir().unwrap();
    let health_port = closed_port().await;
    let envs = [("ROCKET_HEALTH", format!("{{port={health_port}}}"))];
    let guest = Process::start(&example("guest"), &dir, &envs, "/ops/health/live").await;
    let ready = get_on(health_port, "/ops/health/ready").await;
    assert_eq!(ready.map(|r| r.0), Some(200));
    (guest, health_port)
}

#[tokio::test]
async fn a_connection_a_check_opened_serves_the_host_through_its_whole_shutdown() {
    let (guest, _) = guest_with_a_health_port().await;
    // The host's handler queries on the connection the check opened while Rocket shuts down.
    sigterm_during_a_slow_request(guest).await;
}

#[tokio::test]
async fn the_health_port_answers_through_the_hosts_whole_shutdown() {
    let (guest, health_port) = guest_with_a_health_port().await;
    let slow = terminate_during_a_slow_request(&guest, 2500).await;
    // Rocket stops taking connections and waits out its grace for the host's request; the
    // health port says the app is going, and that the process still runs.
    let draining = eventually(Duration::from_secs(2), || async {
        get_on(health_port, "/ops/health/ready").await
            == Some((503, r#"{"status":"draining"}"#.to_owned()))
    })
    .await;
    assert!(draining, "readiness on the health port never said draining");
    assert!(
        !slow.is_finished(),
        "the host's request ended before the check"
    );
    assert_eq!(
        get_on(health_port, "/ops/health/live").await,
        Some((200, r#"{"status":"ok"}"#.to_owned()))
    );
    answered_then_exited_0(guest, slow).await;
    // With the process gone, so is the port.
    assert_eq!(get_on(health_port, "/ops/health/live").await, None);
}

#[tokio::test]
async fn readmes_embedding_example_starts_and_checks_its_pools() {
    let dir = std::env::current_dir().unwrap();
    let databases = r#"{orders={url="postgres://postgres@127.0.0.1:5432/postgres"},sessions={url="redis://127.0.0.1:6379"}}"#;
    let envs = [("ROCKET_DATABASES", databases.to_owned())];
    let app = Process::start(&example("rocket_way"), &dir, &envs, "/ops/health/live").await;
    let (status, body) = app.get("/ops/health/ready").await.unwrap();
    assert_eq!(status, 200, "{body}");
    for check in ["orders", "sessions", "spool"] {
        assert!(
            body.contains(&format!(r#""{check}":{{"status":"ok""#)),
            "{body}"
        );
    }
    let (status, connections) = app.get("/connections").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        connections.parse::<u32>().is_ok_and(|n| n >= 1),
        "{connections}"
    );
    app.terminate();
    let (status, out) = app.exit().await;
    assert!(status.success(), "{status}\n{out}");
}

#[test]
fn every_rust_block_in_readme_is_an_example_file() {
    let readme = include_str!("../../README.md");
    let examples = [
        include_str!("../../examples/rocket_way.rs"),
        include_str!("../../examples/write_a_check.rs"),
    ];
    let blocks: Vec<&str> = readme
        .split("```rust\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(blocks.len(), examples.len(), "README's Rust blocks");
    for block in blocks {
        assert!(
            examples.contains(&block),
            "this README block is no example file:\n{block}"
        );
    }
}

#[tokio::test]
async fn readmes_check_example_runs_its_own_test() {
    let run = tokio::process::Command::new(example("write_a_check"))
        .output()
        .await
        .expect("the example runs");
    assert!(run.status.success(), "{run:?}");
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        out,
        "backlog check: 150 jobs waiting (limit 100) (unavailable)\n"
    );
}

#[tokio::test]
async fn the_service_runs_from_any_directory_on_its_built_in_defaults() {
    let elsewhere = std::env::temp_dir();
    assert!(!elsewhere.join("Rocket.toml").exists());
    let server = Process::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_vitals")),
        &elsewhere,
        &[],
        "/health/live",
    )
    .await;
    let (status, body) = server.get("/health/ready").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""database":{"status":"ok""#), "{body}");
    assert!(body.contains(r#""redis":{"status":"ok""#), "{body}");
    server.terminate();
    assert!(server.exit().await.0.success());
}

/// The isolation promise on one CPU: a host app pinned to CPU 0 whose non-critical check
/// blocks its thread for 3 s (and whose change subscriber blocks for 2 s) keeps its critical
/// checks `ok` and readiness 200 `degraded` all along, and `/metrics` says so too.
#[tokio::test]
async fn on_one_cpu_a_blocking_check_and_subscriber_leave_the_others_ok() {
    let dir = std::env::current_dir().unwrap();
    let marker = std::env::temp_dir().join(format!("vitals-nfs-hangs-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let mut command = tokio::process::Command::new("taskset");
    command.arg("-c").arg("0").arg(example("pinned"));
    let envs = [
        ("BLOCK_MARKER", marker.display().to_string()),
        (
            "ROCKET_HEALTH",
            "{checks={nfs={critical=false}}}".to_owned(),
        ),
    ];
    let app = Process::start_as(command, &dir, &envs, "/health/live").await;
    let pid = app.child.id().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l == "Cpus_allowed_list:\t0"),
        "not pinned to one CPU: {status}"
    );
    let (code, body) = app.get("/health/ready").await.unwrap();
    assert_eq!(
        (code, body.split(',').next().unwrap()),
        (200, r#"{"status":"ready""#)
    );

    std::fs::write(&marker, b"").unwrap();
    // Watch readiness through the block: never a 503, never a critical check failing.
    let watched = Instant::now();
    let mut degraded = 0;
    while watched.elapsed() < Duration::from_millis(4500) {
        let (code, body) = app.get("/health/ready").await.unwrap();
        assert_eq!(code, 200, "{body}");
        for critical in ["orders_db", "cache"] {
            let ok = format!(r#""{critical}":{{"status":"ok""#);
            assert!(body.contains(&ok), "{critical} is not ok: {body}");
        }
        if body.starts_with(r#"{"status":"degraded""#) {
            degraded += 1;
            let metrics = app.raw("/metrics").await;
            assert!(metrics.contains("\nvitals_ready 1\n"), "{metrics}");
            assert!(
                metrics.contains(r#"vitals_check_up{check="orders_db"} 1"#),
                "{metrics}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(degraded > 0, "the blocked check never showed");
    std::fs::remove_file(&marker).unwrap();
    let recovered = eventually(Duration::from_secs(10), || async {
        app.get("/health/ready")
            .await
            .is_some_and(|(_, b)| b.starts_with(r#"{"status":"ready""#))
    })
    .await;
    assert!(recovered, "readiness never came back to ready");
    app.terminate();
    let (exit, _) = app.exit().await;
    assert!(exit.success(), "{exit:?}");
}

/// A wedged check is failing after `fail_after` deadlines, not passing for ever, and every
/// form says so: readiness, the text form, `/metrics` (ready, up and overdue) and the log.
#[tokio::test]
async fn a_wedged_check_is_failing_after_fail_after_deadlines_in_every_form() {
    let dir = std::env::current_dir().unwrap();
    let marker = std::env::temp_dir().join(format!("vitals-nfs-wedged-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let envs = [
        ("BLOCK_MARKER", marker.display().to_string()),
        (
            "ROCKET_HEALTH",
            r#"{fail_after=3,timeout_ms=300,details="always"}"#.to_owned(),
        ),
    ];
    let app = Process::start(&example("pinned"), &dir, &envs, "/health/live").await;
    assert_eq!(app.get("/health/ready").await.unwrap().0, 200);
    std::fs::write(&marker, b"").unwrap();
    let blocked = Instant::now();
    let failing = eventually(Duration::from_secs(3), || async {
        app.get("/health/ready")
            .await
            .is_some_and(|(s, _)| s == 503)
    })
    .await;
    let took = blocked.elapsed();
    assert!(failing, "the wedged check never counted as failing");
    // Three deadlines of 300 ms, each counted as it passed.
    assert!(
        took >= Duration::from_millis(900),
        "failing after only {took:?}"
    );
    let ready = app.raw("/health/ready").await;
    assert!(ready.contains(r#""nfs":{"status":"timeout""#), "{ready}");
    assert!(
        ready.contains("counted as 3 of the 3 failed runs"),
        "{ready}"
    );
    let text = app.raw("/health/ready?verbose").await;
    assert!(text.contains("[-]nfs failed: timeout"), "{text}");
    let metrics = app.raw("/metrics").await;
    for line in [
        "\nvitals_ready 0\n",
        "\nvitals_check_up{check=\"nfs\"} 0\n",
        "\nvitals_check_overdue{check=\"nfs\"} 1\n",
        "\nvitals_check_up{check=\"orders_db\"} 1\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }
    std::fs::remove_file(&marker).unwrap();
    app.terminate();
    let (exit, log) = app.exit().await;
    assert!(exit.success(), "{exit:?}");
    assert!(log.contains("check nfs is failing"), "{log}");
    assert!(log.contains("readiness is unavailable"), "{log}");
}

/// A check's panic is a failed run whose text carries the panic's message, sanitised.
#[rocket::async_test]
async fn a_panicking_check_fails_with_its_message_sanitised() {
    let vitals = Vitals::new().check_fn("queue", || async {
        if true {
            panic!("connect redis://:hunter2secret@queue.internal:6379 failed");
        }
        Ok::<(), String>(())
    });
    let app = client(host(vitals, &[("health.details", "always".into())])).await;
    let ready = app.get("/health/ready").dispatch().await;
    assert_eq!(ready.status(), Status::ServiceUnavailable);
    let body = ready.into_string().await.unwrap();
    assert!(
        body.contains("the check panicked: connect redis://:***@queue.internal:6379 failed"),
        "{body}"
    );
    assert!(!body.contains("hunter2secret"), "{body}");
    // The process lives on, and so does the check: the next probe runs it again.
    let again = app.get("/health/ready").dispatch().await.status();
    assert_eq!(again, Status::ServiceUnavailable);
    app.terminate().await;
}
