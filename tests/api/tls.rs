//! Dependencies over TLS, against real TLS servers with a CA and certificates made at test time
//! by `openssl`: an HTTPS upstream (Python's `ssl`), `redis-server --tls-port` and a private
//! Postgres cluster with `ssl = on`. Each is ok with the right CA and `tls` with the wrong CA,
//! the wrong host name or an expired certificate; a port of the other kind fails, never hangs.
//! The server certificates name `localhost` only, so `127.0.0.1` is the wrong name.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use figment::value::Value;
use rocket::http::Status;

use crate::helpers::*;

/// The test PKI: a CA, another CA, a server certificate for `localhost` (valid 20 days) and
/// an expired one, in a folder of this test binary.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn get() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(Pki::make)
    }

    fn make() -> Pki {
        let dir = std::env::temp_dir().join(format!("vitals-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sh = |script: &str| {
            let status = std::process::Command::new("sh")
                .args(["-ec", script])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "openssl failed: {script}");
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        for ca in ["ca", "other-ca"] {
            sh(&format!(
                "openssl req -x509 {ec} -keyout {ca}.key -out {ca}.pem -days 3650 -subj /CN={ca}"
            ));
        }
        std::fs::write(dir.join("san.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
        sh(&format!(
            "openssl req {ec} -keyout server.key -out server.csr -subj /CN=localhost && \
             openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
               -out server.pem -days 20 -extfile san.cnf"
        ));
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n\
             serial = ca.srl\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n",
        )
        .unwrap();
        sh(&format!(
            ": > index.txt && openssl req {ec} -keyout expired.key -out expired.csr \
               -subj /CN=localhost && \
             openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
               -out expired.pem -startdate 20200101000000Z -enddate 20210101000000Z \
               -extfile san.cnf -notext"
        ));
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The `notAfter` of the certificate `name`, in Unix seconds, as openssl reads it.
    fn not_after(&self, name: &str) -> i64 {
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!(
                    "date -u +%s -d \"$(openssl x509 -noout -enddate -in {} | cut -d= -f2)\"",
                    self.path(name)
                ),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Copies of `cert` and its key that user `postgres` owns (the key mode 0600), for a
    /// cluster's `ssl_cert_file` and `ssl_key_file`.
    fn for_postgres(&self, cert: &str) -> (String, String) {
        let dir = self.dir.join(format!("pg-{cert}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::copy(self.dir.join(format!("{cert}.pem")), &crt).unwrap();
        std::fs::copy(self.dir.join(format!("{cert}.key")), &key).unwrap();
        let status = std::process::Command::new("sh")
            .args([
                "-ec",
                &format!(
                    "chown -R postgres {d} && chmod 0600 {k}",
                    d = dir.display(),
                    k = key.display()
                ),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        (crt.display().to_string(), key.display().to_string())
    }
}

/// A child process stopped when dropped.
struct Child {
    pub port: u16,
    _child: tokio::process::Child,
}

/// An HTTPS server (Python's `http.server` and `ssl`) answering 200 to every GET, with the
/// certificate `cert` (`server` or `expired`); `plain` for the same server without TLS (it
/// answers a TLS client's hello with `400 Bad request`, as HTTP servers do).
async fn https(cert: &str) -> Child {
    let pki = Pki::get();
    let port = closed_port().await;
    let script = r#"
import http.server, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"up":true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
if not cert.endswith("plain.pem"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;
    let child = tokio::process::Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .args([
            pki.path(&format!("{cert}.pem")),
            pki.path(&format!("{cert}.key")),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    wait_for_port(port).await;
    Child {
        port,
        _child: child,
    }
}

/// `redis-server` with TLS only, on a spare port, with the certificate `cert`.
async fn redis_tls(cert: &str) -> Child {
    let pki = Pki::get();
    let port = closed_port().await;
    let child = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--tls-cert-file", &pki.path(&format!("{cert}.pem"))])
        .args(["--tls-key-file", &pki.path(&format!("{cert}.key"))])
        .args(["--tls-ca-cert-file", &pki.path("ca.pem")])
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs");
    wait_for_port(port).await;
    Child {
        port,
        _child: child,
    }
}

async fn wait_for_port(port: u16) {
    let up = eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(up, "the TLS server on {port} never listened");
}

/// The app with one declared check `up` of `table` (its other keys: `kind`, `url`, ...), a
/// 1 s deadline and details shown; `database` and `redis` off.
async fn app_with(table: &[(&str, Value)]) -> TestApp {
    let mut overrides: Vec<(String, Value)> = vec![
        ("health.timeout_ms".into(), val(1000)),
        ("health.details".into(), val("always")),
        ("health.checks.database.enabled".into(), val(false)),
        ("health.checks.redis.enabled".into(), val(false)),
    ];
    for (key, value) in table {
        overrides.push((format!("health.checks.up.{key}"), value.clone()));
    }
    spawn_app(overrides.iter().map(|(k, v)| (k.as_str(), v.clone()))).await
}

/// The `up` check's status, reason and error after one readiness probe, and how long it took.
async fn probe_up(app: &TestApp) -> (String, String, String, Duration) {
    let answer = app.get_ready().await;
    let check = answer.check("up");
    let field = |f: &str| check[f].as_str().unwrap_or("").to_owned();
    (
        field("status"),
        field("reason"),
        field("error"),
        answer.elapsed,
    )
}

fn https_check(url: String, ca: Option<&str>) -> Vec<(&'static str, Value)> {
    let mut table = vec![("kind", val("http")), ("url", val(url))];
    if let Some(ca) = ca {
        table.push(("ca_file", val(Pki::get().path(ca))));
    }
    table
}

#[rocket::async_test]
async fn https_with_the_right_ca_is_ok_and_reports_its_certificates_expiry() {
    let server = https("server").await;
    let url = format!("https://localhost:{}/health", server.port);
    let app = app_with(&https_check(url, Some("ca.pem"))).await;
    let (status, _, error, _) = probe_up(&app).await;
    assert_eq!(status, "ok", "{error}");
    let text = app.metrics_text().await;
    let expected = Pki::get().not_after("server.pem");
    assert!(
        text.contains(&format!(
            "vitals_check_tls_not_after_seconds{{check=\"up\"}} {expected}\n"
        )),
        "{text}"
    );
    let page = app.client.get("/status").dispatch().await;
    let html = page.into_string().await.unwrap();
    assert!(html.contains("certificate expires in 19 days"), "{html}");
}

#[rocket::async_test]
async fn https_with_another_ca_is_tls_untrusted() {
    let server = https("server").await;
    let url = format!("https://localhost:{}/", server.port);
    let app = app_with(&https_check(url, Some("other-ca.pem"))).await;
    let (status, reason, error, _) = probe_up(&app).await;
    assert_eq!((status.as_str(), reason.as_str()), ("error", "tls"));
    assert!(error.contains("not trusted"), "{error}");
}

#[rocket::async_test]
async fn https_without_a_ca_file_trusts_only_the_system_roots() {
    let server = https("server").await;
    let url = format!("https://localhost:{}/", server.port);
    let app = app_with(&https_check(url, None)).await;
    let (_, reason, error, _) = probe_up(&app).await;
    assert_eq!(reason, "tls", "{error}");
    assert!(error.contains("not trusted"), "{error}");
}

#[rocket::async_test]
async fn https_at_a_name_the_certificate_does_not_hold_is_tls() {
    let server = https("server").await;
    let url = format!("https://127.0.0.1:{}/", server.port);
    let app = app_with(&https_check(url, Some("ca.pem"))).await;
    let (_, reason, error, _) = probe_up(&app).await;
    assert_eq!(reason, "tls", "{error}");
    assert!(error.contains("another name"), "{error}");
}

#[rocket::async_test]
async fn https_with_an_expired_certificate_is_tls_expired() {
    let server = https("expired").await;
    let url = format!("https://localhost:{}/", server.port);
    let app = app_with(&https_check(url, Some("ca.pem"))).await;
    let (_, reason, error, _) = probe_up(&app).await;
    assert_eq!(reason, "tls", "{error}");
    assert!(error.contains("expired"), "{error}");
}

#[rocket::async_test]
async fn https_to_a_plain_http_port_is_tls_at_once() {
    let plain = https("plain").await;
    let url = format!("https://localhost:{}/", plain.port);
    let app = app_with(&https_check(url, Some("ca.pem"))).await;
    let (_, reason, error, took) = probe_up(&app).await;
    assert_eq!(reason, "tls", "{error}");
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[rocket::async_test]
async fn plain_http_to_a_tls_port_fails_at_once_without_hanging() {
    let server = https("server").await;
    let url = format!("http://localhost:{}/", server.port);
    let app = app_with(&[("kind", val("http")), ("url", val(url))]).await;
    let (status, reason, error, took) = probe_up(&app).await;
    assert_eq!(status, "error", "{error}");
    assert!(
        ["tls", "protocol"].contains(&reason.as_str()),
        "{reason}: {error}"
    );
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[rocket::async_test]
async fn a_tls_failures_words_are_details_withheld_without_the_token() {
    let server = https("expired").await;
    let url = format!("https://localhost:{}/", server.port);
    let mut overrides = vec![
        ("health.details", val("authorized")),
        ("health.token", val("tls-test-token")),
        ("health.checks.database.enabled", val(false)),
        ("health.checks.redis.enabled", val(false)),
        ("health.checks.up.kind", val("http")),
        ("health.checks.up.ca_file", val(Pki::get().path("ca.pem"))),
    ];
    overrides.push(("health.checks.up.url", val(url)));
    let app = spawn_app(overrides).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check("up")["reason"], "tls");
    assert!(answer.check("up").get("error").is_none(), "{}", answer.json);
    let with_token = app
        .client
        .get("/health/ready")
        .header(rocket::http::Header::new(
            "Authorization",
            "Bearer tls-test-token",
        ))
        .dispatch()
        .await;
    let body = with_token.into_string().await.unwrap();
    assert!(body.contains("certificate has expired"), "{body}");
}

#[rocket::async_test]
async fn a_silent_tls_port_is_a_timeout_at_the_deadline() {
    let silent = Silent::start().await;
    let url = format!("https://localhost:{}/", silent.port);
    let app = app_with(&https_check(url, Some("ca.pem"))).await;
    let (status, _, _, took) = probe_up(&app).await;
    assert_eq!(status, "timeout");
    assert!(took < Duration::from_millis(1300), "{took:?}");
}

fn tcp_tls(port: u16, host: &str, ca: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("kind", val("tcp")),
        ("address", val(format!("{host}:{port}"))),
        ("tls", val(true)),
        ("ca_file", val(Pki::get().path(ca))),
    ]
}

#[rocket::async_test]
async fn tcp_with_tls_completes_a_handshake_and_reports_the_expiry() {
    let server = https("server").await;
    let app = app_with(&tcp_tls(server.port, "localhost", "ca.pem")).await;
    let (status, _, error, _) = probe_up(&app).await;
    assert_eq!(status, "ok", "{error}");
    let text = app.metrics_text().await;
    let expected = Pki::get().not_after("server.pem");
    assert!(text.contains(&format!(
        "vitals_check_tls_not_after_seconds{{check=\"up\"}} {expected}"
    )));
}

#[rocket::async_test]
async fn tcp_with_tls_fails_on_the_wrong_ca_name_or_expiry_and_on_a_plain_port() {
    let (good, expired) = (https("server").await, https("expired").await);
    let plain = https("plain").await;
    for (port, host, ca, words) in [
        (good.port, "localhost", "other-ca.pem", "not trusted"),
        (good.port, "127.0.0.1", "ca.pem", "another name"),
        (expired.port, "localhost", "ca.pem", "expired"),
        (plain.port, "localhost", "ca.pem", "not TLS"),
    ] {
        let app = app_with(&tcp_tls(port, host, ca)).await;
        let (_, reason, error, _) = probe_up(&app).await;
        assert_eq!(reason, "tls", "{host}:{port} with {ca}: {error}");
        assert!(error.contains(words), "{error}");
    }
}

/// The app's built-in `redis` at `url` (with `ca_file` when given), `database` off.
async fn redis_app(url: String, ca: Option<&str>) -> TestApp {
    let mut overrides = vec![
        ("databases.redis.url", val(url)),
        ("health.details", val("always")),
        ("health.timeout_ms", val(1000)),
        ("health.checks.database.enabled", val(false)),
    ];
    if let Some(ca) = ca {
        overrides.push(("health.checks.redis.ca_file", val(Pki::get().path(ca))));
    }
    spawn_app(overrides).await
}

#[rocket::async_test]
async fn rediss_with_the_right_ca_pings_and_reports_its_certificates_expiry() {
    let server = redis_tls("server").await;
    let url = format!("rediss://localhost:{}", server.port);
    let app = redis_app(url, Some("ca.pem")).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok, "{:?}", answer.json);
    let text = app.metrics_text().await;
    let expected = Pki::get().not_after("server.pem");
    assert!(text.contains(&format!(
        "vitals_check_tls_not_after_seconds{{check=\"redis\"}} {expected}"
    )));
}

#[rocket::async_test]
async fn rediss_fails_as_tls_on_the_wrong_ca_name_or_expiry() {
    let (good, expired) = (redis_tls("server").await, redis_tls("expired").await);
    for (port, host, ca, words) in [
        (good.port, "localhost", "other-ca.pem", "not trusted"),
        (good.port, "127.0.0.1", "ca.pem", "another name"),
        (expired.port, "localhost", "ca.pem", "expired"),
    ] {
        let app = redis_app(format!("rediss://{host}:{port}"), Some(ca)).await;
        let answer = app.get_ready().await;
        let error = answer.check("redis")["error"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert_eq!(
            answer.check("redis")["reason"],
            "tls",
            "{host}:{port}: {error}"
        );
        assert!(error.contains(words), "{error}");
        assert!(
            answer.elapsed < Duration::from_millis(900),
            "{:?}",
            answer.elapsed
        );
    }
}

#[rocket::async_test]
async fn rediss_to_a_plain_redis_is_a_timeout_at_the_deadline() {
    // A plain Redis reads the TLS hello as the start of a command line and waits for its end.
    let plain = RedisServer::start().await;
    let app = redis_app(format!("rediss://localhost:{}", plain.port), Some("ca.pem")).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check("redis")["status"], "timeout");
    assert!(
        answer.elapsed < Duration::from_millis(1300),
        "{:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn plain_redis_to_a_tls_port_fails_at_once_without_hanging() {
    let server = redis_tls("server").await;
    let app = redis_app(format!("redis://localhost:{}", server.port), None).await;
    let answer = app.get_ready().await;
    let check = answer.check("redis");
    assert_eq!(check["status"], "error", "{check}");
    assert!(
        check["reason"] == "tls" || check["reason"] == "protocol",
        "{check}"
    );
    assert!(
        answer.elapsed < Duration::from_millis(900),
        "{:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn a_rediss_password_never_shows_and_a_bad_ca_file_stops_launch() {
    let server = redis_tls("server").await;
    let url = format!("rediss://:hunter2secret@localhost:{}", server.port);
    let app = redis_app(url, Some("other-ca.pem")).await;
    let answer = app.get_ready().await;
    assert!(!answer.json.to_string().contains("hunter2secret"));
    let figment = vitals::figment()
        .merge(("health.checks.database.enabled", false))
        .merge((
            "databases.redis.url",
            format!("rediss://localhost:{}", server.port),
        ))
        .merge(("health.checks.redis.ca_file", "/no/such/ca.pem"));
    let ignited = vitals::build(figment)
        .ignite()
        .await
        .map_err(|e| e.to_string());
    assert!(ignited.is_err());
    assert!(logs()
        .iter()
        .any(|l| l.contains("health.checks.redis.ca_file: cannot read /no/such/ca.pem")));
}

#[rocket::async_test]
async fn a_ca_file_on_a_plain_redis_url_stops_launch_naming_the_key() {
    spawn_app([]).await; // installs the log capture
    let figment = vitals::figment()
        .merge(("databases.redis.url", "redis://127.0.0.1:6379"))
        .merge(("health.checks.redis.ca_file", Pki::get().path("ca.pem")));
    let ignited = vitals::build(figment)
        .ignite()
        .await
        .map_err(|e| e.to_string());
    assert!(ignited.is_err(), "a ca_file on redis:// was accepted");
    assert!(
        logs().iter().any(|l| l
            .contains("health.checks.redis.ca_file: only a rediss:// URL makes a TLS handshake")),
        "{:?}",
        logs()
    );
}

/// A private cluster with `ssl = on` and the certificate `cert`.
async fn postgres_tls(cert: &str) -> PgCluster {
    let (crt, key) = Pki::get().for_postgres(cert);
    PgCluster::start(&[
        ("ssl", "on"),
        ("ssl_cert_file", &crt),
        ("ssl_key_file", &key),
    ])
    .await
}

/// The app's built-in `database` at `url`, `redis` off.
async fn postgres_app(url: String) -> TestApp {
    spawn_app([
        ("databases.postgres.url", val(url)),
        ("health.details", val("always")),
        ("health.timeout_ms", val(2000)),
        ("health.checks.redis.enabled", val(false)),
    ])
    .await
}

fn pg_tls_url(host: &str, port: u16, mode: &str, ca: &str) -> String {
    let ca = Pki::get().path(ca);
    format!("postgres://postgres@{host}:{port}/postgres?sslmode={mode}&sslrootcert={ca}")
}

#[rocket::async_test]
async fn postgres_verify_full_with_the_right_ca_is_ok() {
    let cluster = postgres_tls("server").await;
    let app = postgres_app(pg_tls_url(
        "localhost",
        cluster.port,
        "verify-full",
        "ca.pem",
    ))
    .await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok, "{:?}", answer.json);
}

#[rocket::async_test]
async fn postgres_fails_as_tls_on_the_wrong_ca_name_or_expiry() {
    let (good, expired) = (postgres_tls("server").await, postgres_tls("expired").await);
    for (url, words) in [
        (
            pg_tls_url("localhost", good.port, "verify-full", "other-ca.pem"),
            "not trusted",
        ),
        (
            pg_tls_url("127.0.0.1", good.port, "verify-full", "ca.pem"),
            "another name",
        ),
        (
            pg_tls_url("localhost", expired.port, "verify-ca", "ca.pem"),
            "expired",
        ),
    ] {
        let app = postgres_app(url.clone()).await;
        let answer = app.get_ready().await;
        let check = answer.check("database");
        let error = check["error"].as_str().unwrap_or("");
        assert_eq!(check["reason"], "tls", "{url}: {check}");
        assert!(error.contains(words), "{url}: {error}");
    }
    // NOTE: libpq's verify-ca does not check the name, but sqlx 0.8.6's verifier that skips it
    // matches rustls' older error variant only, so verify-ca checks the name too (README).
    let app = postgres_app(pg_tls_url("localhost", good.port, "verify-ca", "ca.pem")).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok, "{:?}", answer.json);
}

#[rocket::async_test]
async fn postgres_sslmode_require_against_a_server_without_tls_fails_at_once() {
    let cluster = PgCluster::start(&[("ssl", "off")]).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
        cluster.port
    );
    let app = postgres_app(url).await;
    let answer = app.get_ready().await;
    let check = answer.check("database");
    assert_eq!(check["reason"], "tls", "{check}");
    assert!(
        answer.elapsed < Duration::from_millis(500),
        "{:?}",
        answer.elapsed
    );
}

#[rocket::async_test]
async fn postgres_over_the_unix_socket_still_works_whatever_the_sslmode_default() {
    // The socket directory as the (percent-encoded) host; TLS is never tried on a socket.
    let app = postgres_app("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres".into()).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::Ok, "{:?}", answer.json);
}

#[test]
fn the_test_pki_is_what_the_tests_say() {
    let pki = Pki::get();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let left = pki.not_after("server.pem") - now;
    assert!((19 * 86_400..20 * 86_400 + 60).contains(&left), "{left}");
    assert!(pki.not_after("expired.pem") < now);
    assert!(Path::new(&pki.path("other-ca.pem")).exists());
}
