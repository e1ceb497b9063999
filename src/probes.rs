//! `vitals probes`: probe settings derived from the service's own configuration, and a check
//! of an operator's Kubernetes manifests and compose files against them.
//!
//! Health checks hurt production most through numbers that do not fit together: a readiness
//! timeout shorter than the check deadline flaps, a liveness probe on the dependency checks
//! restarts every pod in a database blip, a drain shorter than kubelet's notice sends traffic
//! to a dying pod, a grace period kills the pod mid-drain. vitals knows its own deadlines, so
//! it can print numbers that fit ([`recommend`]) and find the ones that do not ([`check`]).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use figment::Figment;
use yaml_rust2::{Yaml, YamlLoader};

use crate::config::Settings;

/// Time a probe needs beyond the longest check deadline: the engine's 20 ms backstop, the HTTP
/// round trip and kubelet's own scheduling on a loaded node. The saturated-host benchmark
/// measures readiness on the health port at p99 6 ms; 200 ms leaves room for a node far
/// busier than that, and still fits the release deadline (800 ms) into kubelet's 1 s default.
pub const MARGIN_MS: u64 = 200;

/// How long `vitals healthcheck` waits for an answer; a compose timeout must leave it room.
const CLIENT_BOUND_MS: u64 = crate::healthcheck::TIMEOUT.as_millis() as u64;

/// Paths under the base that answer GET (`/health/ready/<name>` as `/health/ready/`).
const PATHS: [&str; 7] = [
    "/health/live",
    "/health/ready",
    "/health/startup",
    "/health",
    "/status",
    "/status/login",
    "/metrics",
];

/// What the configuration says probes must fit.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The profile the numbers come from.
    pub profile: String,
    /// Longest deadline among the enabled checks, ms.
    pub deadline_ms: u64,
    /// Which check has it.
    pub slowest: String,
    /// Rocket's port.
    pub port: u16,
    /// `health.port`, when set: where probes should go.
    pub health_port: Option<u16>,
    /// `health.drain_ms`.
    pub drain_ms: u64,
    /// Rocket's `shutdown.grace` and `shutdown.mercy`, seconds.
    pub grace_s: u64,
    pub mercy_s: u64,
    /// `health.interval_ms`: with the timer on, readiness answers from the latest results and
    /// never waits on a check.
    pub interval_ms: u64,
    /// The enabled checks that verify a certificate against the system's roots (a TLS URL or
    /// table without `ca_file` or `sslrootcert`): the image must ship them.
    pub system_roots: Vec<String>,
}

impl Budget {
    /// The budget of the standalone service configured by `figment`.
    pub fn from_figment(figment: &Figment) -> Result<Budget, String> {
        let settings = Settings::from_figment(figment)?;
        let health = &settings.health;
        let builtins = ["database", "redis"]
            .into_iter()
            .filter(|n| health.is_enabled(n));
        let declared = health
            .checks
            .iter()
            .filter(|(_, c)| c.kind.is_some() && c.enabled)
            .map(|(n, _)| n.as_str());
        let (slowest, deadline_ms) = builtins
            .chain(declared)
            .map(|n| (n.to_owned(), health.timeout_ms(n)))
            .max_by_key(|(_, ms)| *ms)
            .unwrap_or_else(|| ("(none)".to_owned(), health.timeout_ms));
        // `rocket::Config::from` would panic on a bad value; this names it instead (exit 2).
        let rocket: rocket::Config = figment.extract().map_err(|e| e.to_string())?;
        Ok(Budget {
            profile: figment.profile().to_string(),
            deadline_ms,
            slowest,
            port: rocket.port,
            health_port: health.port,
            drain_ms: health.drain_ms,
            grace_s: u64::from(rocket.shutdown.grace),
            mercy_s: u64::from(rocket.shutdown.mercy),
            system_roots: system_root_checks(figment, health),
            interval_ms: health.interval_ms,
        })
    }

    /// The port probes should use.
    fn probe_port(&self) -> u16 {
        self.health_port.unwrap_or(self.port)
    }

    /// Smallest probe timeout, whole seconds, above the deadline plus the margin.
    fn timeout_s(&self) -> u64 {
        (self.deadline_ms + MARGIN_MS).div_ceil(1000).max(1)
    }

    /// How long a readiness answer may wait on checks, ms: the longest deadline, or nothing
    /// with the timer on (probes answer from the latest results).
    fn ready_wait_ms(&self) -> u64 {
        match self.interval_ms {
            0 => self.deadline_ms,
            _ => 0,
        }
    }

    /// Smallest readiness timeout, whole seconds.
    fn ready_timeout_s(&self) -> u64 {
        (self.ready_wait_ms() + MARGIN_MS).div_ceil(1000).max(1)
    }

    /// What the readiness timeout must exceed, in words.
    fn ready_wait(&self) -> String {
        match self.interval_ms {
            0 => format!(
                "longest check deadline {} ms ({})",
                self.deadline_ms, self.slowest
            ),
            ms => format!("nothing: checks run every {ms} ms and probes read the latest result"),
        }
    }

    /// What the pod needs between SIGTERM and SIGKILL, seconds (before any preStop).
    fn shutdown_s(&self) -> u64 {
        self.drain_ms.div_ceil(1000) + self.grace_s + self.mercy_s
    }

    /// Readiness period and failure threshold whose product fits in the drain.
    fn readiness_period(&self) -> (u64, u64) {
        let failures = 2;
        ((self.drain_ms / 1000 / failures).clamp(1, 10), failures)
    }
}

/// The enabled checks of `health` that trust the system's roots: a Postgres URL that verifies
/// (`sslmode=verify-ca|verify-full`) without `sslrootcert`, a `rediss://` Redis, an `https://`
/// check or a `tcp` check with `tls`, without `ca_file`.
fn system_root_checks(figment: &Figment, health: &crate::config::HealthSettings) -> Vec<String> {
    let url = |pool: &str| -> String {
        figment
            .extract_inner(&format!("databases.{pool}.url"))
            .unwrap_or_default()
    };
    let ca_file = |name: &str| health.checks.get(name).and_then(|c| c.ca_file.as_ref());
    let postgres = url("postgres");
    let verifies = ["sslmode=verify-ca", "sslmode=verify-full"]
        .iter()
        .any(|m| postgres.contains(m));
    let mut names = Vec::new();
    if health.is_enabled("database") && verifies && !postgres.contains("sslrootcert=") {
        names.push("database".to_owned());
    }
    if health.is_enabled("redis")
        && url("redis").starts_with("rediss://")
        && ca_file("redis").is_none()
    {
        names.push("redis".to_owned());
    }
    for (name, c) in &health.checks {
        let tls = match c.kind.as_deref() {
            Some("http") => c.url.as_deref().is_some_and(|u| u.starts_with("https://")),
            Some("tcp") => c.tls == Some(true),
            _ => false,
        };
        if c.enabled && tls && c.ca_file.is_none() {
            names.push(name.clone());
        }
    }
    names
}

/// The recommended settings, in three pieces to paste: a container's probes, the pod spec's
/// grace period, and a compose service's healthcheck.
#[derive(Debug, Clone)]
pub struct Recommended {
    /// `startupProbe`, `livenessProbe`, `readinessProbe`, unindented.
    pub container: String,
    /// `terminationGracePeriodSeconds`, for the pod spec.
    pub pod: String,
    /// `healthcheck` and `stop_grace_period`, for the compose service.
    pub compose: String,
}

/// Probe settings that fit `budget`, each number commented with what it comes from.
pub fn recommend(b: &Budget) -> Recommended {
    let (port, timeout) = (b.probe_port(), b.timeout_s());
    let (ready_timeout, ready_wait) = (b.ready_timeout_s(), b.ready_wait());
    let (period, failures) = b.readiness_period();
    let deadline = format!(
        "longest check deadline {} ms ({})",
        b.deadline_ms, b.slowest
    );
    let mut container = String::new();
    let _ = writeln!(
        container,
        "startupProbe:\n  httpGet: {{path: /health/startup, port: {port}}}\n  \
         timeoutSeconds: {timeout}  # startup runs the checks: > {deadline} + {MARGIN_MS} ms\n  \
         periodSeconds: 2\n  \
         failureThreshold: 30  # 30 x 2 s = 60 s for the dependencies to answer once"
    );
    let _ = writeln!(
        container,
        "livenessProbe:\n  httpGet: {{path: /health/live, port: {port}}}  # never touches a dependency\n  \
         timeoutSeconds: 1  # liveness answers in well under 1 ms of server time\n  \
         periodSeconds: 10\n  \
         failureThreshold: 3  # 30 s without an answer before a restart"
    );
    let drain_note = match period * failures * 1000 <= b.drain_ms {
        true => format!("within health.drain_ms = {}", b.drain_ms),
        false => format!(
            "MORE than health.drain_ms = {}: raise drain_ms to at least {}",
            b.drain_ms,
            period * failures * 1000
        ),
    };
    let _ = writeln!(
        container,
        "readinessProbe:\n  httpGet: {{path: /health/ready, port: {port}}}\n  \
         timeoutSeconds: {ready_timeout}  # > {ready_wait} + {MARGIN_MS} ms\n  \
         periodSeconds: {period}\n  \
         failureThreshold: {failures}  # {period} s x {failures} = {} s to withdraw the pod, {drain_note}\n  \
         successThreshold: 1",
        period * failures
    );
    let need = b.shutdown_s();
    let pod = format!(
        "terminationGracePeriodSeconds: {}  # drain {} ms + Rocket grace {} s + mercy {} s = {need} s, \
         + 5 s slack; no preStop needed: vitals drains on SIGTERM itself\n",
        need + 5,
        b.drain_ms,
        b.grace_s,
        b.mercy_s
    );
    let compose_timeout = (CLIENT_BOUND_MS.max(b.deadline_ms + MARGIN_MS)).div_ceil(1000) + 2;
    let compose = format!(
        "healthcheck:\n  test: [\"CMD\", \"vitals\", \"healthcheck\", \"http://127.0.0.1:{port}/health/ready\"]  \
         # the image has no curl\n  \
         interval: 10s\n  \
         timeout: {compose_timeout}s  # > the client's own {} s bound and the {deadline}\n  \
         retries: 5\n  \
         start_period: 30s\n\
         stop_grace_period: {}s  # drain + grace + mercy = {need} s, + 5 s slack\n",
        CLIENT_BOUND_MS / 1000,
        need + 5
    );
    Recommended {
        container,
        pod,
        compose,
    }
}

/// One mismatch between a manifest and the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file it is in.
    pub file: String,
    /// `Kind/name` of a Kubernetes object, or `service <name>` in a compose file.
    pub object: String,
    /// The container (the service name again, for compose).
    pub container: String,
    /// The field at fault, e.g. `readinessProbe.timeoutSeconds`.
    pub field: String,
    /// What is wrong, with the numbers.
    pub problem: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: container {}: {}: {}",
            self.file, self.object, self.container, self.field, self.problem
        )
    }
}

/// Every finding in `files` (Kubernetes manifests or compose files, told apart by content, and
/// Dockerfiles, by name). `Err` names a file that cannot be read or parsed, with the line.
pub fn check(files: &[&Path], budget: &Budget) -> Result<Vec<Finding>, String> {
    check_all(files, budget).map(|checked| checked.findings)
}

/// What `--check` found in its files.
#[derive(Debug, Default)]
pub struct Checked {
    /// The mismatches.
    pub findings: Vec<Finding>,
    /// The files in which no container, service or image runs vitals: nothing was checked
    /// there, so they are never called "fit".
    pub without_vitals: Vec<String>,
}

/// [`check`], and which files held nothing that runs vitals.
pub fn check_all(files: &[&Path], budget: &Budget) -> Result<Checked, String> {
    let mut checked = Checked::default();
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?;
        let base = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if base == "Dockerfile" || base.ends_with(".Dockerfile") || base.starts_with("Dockerfile.")
        {
            if !dockerfile(&name, &text, budget, &mut checked.findings) {
                checked.without_vitals.push(name);
            }
            continue;
        }
        let docs = YamlLoader::load_from_str(&text)
            .map_err(|e| format!("{name}:{}: {e}", e.marker().line()))?;
        let mut at = Site {
            file: name,
            findings: &mut checked.findings,
            budget,
            seen: 0,
        };
        for doc in &docs {
            if doc["services"].as_hash().is_some() {
                at.compose(doc);
            } else if doc["kind"].as_str().is_some() {
                at.kubernetes(doc);
            }
        }
        if at.seen == 0 {
            let file = at.file.clone();
            checked.without_vitals.push(file);
        }
    }
    Ok(checked)
}

/// Where findings are being made.
struct Site<'a> {
    file: String,
    findings: &'a mut Vec<Finding>,
    budget: &'a Budget,
    /// Containers and services that run vitals, checked so far in this file.
    seen: usize,
}

/// A Kubernetes probe's numbers, with kubelet's defaults.
struct ManifestProbe<'a> {
    yaml: &'a Yaml,
}

impl ManifestProbe<'_> {
    fn number(&self, key: &str, default: u64) -> u64 {
        self.yaml[key].as_i64().map_or(default, |n| n.max(0) as u64)
    }
    fn timeout(&self) -> u64 {
        self.number("timeoutSeconds", 1)
    }
    fn period(&self) -> u64 {
        self.number("periodSeconds", 10)
    }
    fn failures(&self) -> u64 {
        self.number("failureThreshold", 3)
    }
    fn delay(&self) -> u64 {
        self.number("initialDelaySeconds", 0)
    }
}

impl Site<'_> {
    fn find(&mut self, object: &str, container: &str, field: &str, problem: String) {
        self.findings.push(Finding {
            file: self.file.clone(),
            object: object.to_owned(),
            container: container.to_owned(),
            field: field.to_owned(),
            problem,
        });
    }

    /// Any object with a pod spec or pod template (Deployment, StatefulSet, an Argo Rollout, a
    /// Knative-like CRD...), a CronJob's job template, and the items of a `kind: List`.
    fn kubernetes(&mut self, doc: &Yaml) {
        let kind = doc["kind"].as_str().unwrap_or("");
        if kind == "List" {
            for item in doc["items"].as_vec().into_iter().flatten() {
                self.kubernetes(item);
            }
            return;
        }
        let has_containers = |spec: &Yaml| spec["containers"].as_vec().is_some();
        let pod = [
            &doc["spec"]["template"]["spec"],
            &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            &doc["spec"],
        ]
        .into_iter()
        .find(|spec| has_containers(spec));
        let Some(pod) = pod else {
            return;
        };
        let object = format!("{kind}/{}", doc["metadata"]["name"].as_str().unwrap_or("?"));
        for container in pod["containers"].as_vec().into_iter().flatten() {
            if runs_vitals(container) {
                self.container(&object, pod, container);
            }
        }
    }

    fn container(&mut self, object: &str, pod: &Yaml, c: &Yaml) {
        self.seen += 1;
        let b = self.budget;
        let name = c["name"].as_str().unwrap_or("?");
        let probes: Vec<(&str, ManifestProbe)> =
            ["startupProbe", "livenessProbe", "readinessProbe"]
                .into_iter()
                .filter(|k| !c[*k].is_badvalue())
                .map(|k| (k, ManifestProbe { yaml: &c[k] }))
                .collect();
        for (key, probe) in &probes {
            self.target(object, name, key, c, probe.yaml);
            let path = probe.yaml["httpGet"]["path"].as_str().unwrap_or("");
            let runs_checks = path.starts_with("/health/ready")
                || path.starts_with("/health/startup")
                || path.starts_with("/status");
            if *key == "livenessProbe" && runs_checks {
                self.find(object, name, "livenessProbe.httpGet.path", format!(
                    "{path} checks the dependencies: a database blip would restart every pod; use /health/live"
                ));
            }
            // With the timer on, readiness never waits on a check; startup may (the first run).
            let (wait_ms, wait, use_s) = match *key {
                "readinessProbe" if b.interval_ms > 0 => (0, b.ready_wait(), b.ready_timeout_s()),
                _ => (
                    b.deadline_ms,
                    format!(
                        "longest check deadline, {} ms ({})",
                        b.deadline_ms, b.slowest
                    ),
                    b.timeout_s(),
                ),
            };
            if *key != "livenessProbe"
                && runs_checks
                && probe.timeout() * 1000 < wait_ms + MARGIN_MS
            {
                self.find(
                    object,
                    name,
                    &format!("{key}.timeoutSeconds"),
                    format!(
                        "{} s is not above the {wait}, plus {MARGIN_MS} ms: the probe times out \
                     before the check can answer; use {use_s}",
                        probe.timeout()
                    ),
                );
            }
        }
        let get = |k: &str| probes.iter().find(|(key, _)| *key == k).map(|(_, p)| p);
        if let Some(ready) = get("readinessProbe") {
            let notice_ms = ready.period() * ready.failures() * 1000;
            if b.drain_ms < notice_ms {
                self.find(
                    object,
                    name,
                    "readinessProbe.periodSeconds",
                    format!(
                        "{} s x failureThreshold {} = {} ms to notice the drain, longer than \
                     health.drain_ms = {}: traffic reaches a pod that is shutting down",
                        ready.period(),
                        ready.failures(),
                        notice_ms,
                        b.drain_ms
                    ),
                );
            }
            if let (Some(live), None) = (get("livenessProbe"), get("startupProbe")) {
                let window = live.delay() + live.period() * live.failures();
                let first_ready = ready.delay() + ready.timeout();
                if window <= first_ready {
                    self.find(object, name, "livenessProbe", format!(
                        "with no startupProbe, liveness can fail after {window} s, before readiness \
                         could first pass ({first_ready} s): add a startupProbe on /health/startup"
                    ));
                }
            }
        }
        let pre_stop = pre_stop_seconds(&c["lifecycle"]["preStop"]);
        let grace = pod["terminationGracePeriodSeconds"]
            .as_i64()
            .map_or(30, |n| n.max(0) as u64);
        let need = pre_stop + b.shutdown_s();
        if grace < need {
            self.find(object, name, "terminationGracePeriodSeconds", format!(
                "{grace} s is shorter than preStop {pre_stop} s + drain {} ms + Rocket grace {} s + \
                 mercy {} s = {need} s: the pod is killed mid-drain",
                b.drain_ms, b.grace_s, b.mercy_s
            ));
        }
    }

    /// A probe's port and path must be ones vitals serves; an exec probe must not need a tool
    /// the image does not ship.
    fn target(&mut self, object: &str, name: &str, key: &str, c: &Yaml, probe: &Yaml) {
        if let Some(tool) = needs_missing_tool(&probe["exec"]["command"]) {
            self.find(
                object,
                name,
                &format!("{key}.exec.command"),
                format!(
                    "runs {tool}, which the vitals image does not ship; use httpGet, or \
                 [\"vitals\", \"healthcheck\", URL]"
                ),
            );
        }
        let get = &probe["httpGet"];
        if get.is_badvalue() {
            return;
        }
        let served = served_ports(self.budget, c);
        match resolve_port(&get["port"], c) {
            Some(port) if served.contains(&port) => {}
            other => self.find(
                object,
                name,
                &format!("{key}.httpGet.port"),
                format!(
                    "{} is not a port vitals serves ({})",
                    other.map_or_else(|| yaml_text(&get["port"]), |p| p.to_string()),
                    served
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
        let path = get["path"].as_str().unwrap_or("/");
        if !is_served_path(path) {
            self.find(
                object,
                name,
                &format!("{key}.httpGet.path"),
                format!(
                "vitals serves no {path}; probes use /health/live, /health/ready, /health/startup"
            ),
            );
        }
    }

    fn compose(&mut self, doc: &Yaml) {
        let b = self.budget;
        let Some(services) = doc["services"].as_hash() else {
            return;
        };
        for (key, service) in services {
            let name = key.as_str().unwrap_or("?");
            let image_is_vitals = service["image"].as_str().is_some_and(is_vitals_image);
            let test = &service["healthcheck"]["test"];
            let probes_vitals = yaml_words(test)
                .iter()
                .any(|w| w.contains("/health/") || w == "healthcheck");
            if !(image_is_vitals || name == "vitals" || probes_vitals) {
                continue;
            }
            self.seen += 1;
            let object = format!("service {name}");
            if let Some(tool) = needs_missing_tool(test) {
                self.find(&object, name, "healthcheck.test", format!(
                    "runs {tool}, which the vitals image does not ship; use [\"CMD\", \"vitals\", \"healthcheck\"]"
                ));
            }
            if !test.is_badvalue() {
                let timeout = duration_ms(&service["healthcheck"]["timeout"]).unwrap_or(30_000);
                let needed = b.deadline_ms + MARGIN_MS;
                if timeout <= needed.max(CLIENT_BOUND_MS) {
                    self.find(&object, name, "healthcheck.timeout", format!(
                        "{timeout} ms is not above the longest check deadline, {} ms ({}), plus \
                         {MARGIN_MS} ms, nor the healthcheck client's own {CLIENT_BOUND_MS} ms bound",
                        b.deadline_ms, b.slowest
                    ));
                }
            }
            let grace = duration_ms(&service["stop_grace_period"]).unwrap_or(10_000);
            if grace < b.shutdown_s() * 1000 {
                self.find(
                    &object,
                    name,
                    "stop_grace_period",
                    format!(
                        "{grace} ms is shorter than drain {} ms + Rocket grace {} s + mercy {} s: \
                     the container is killed mid-drain",
                        b.drain_ms, b.grace_s, b.mercy_s
                    ),
                );
            }
        }
    }
}

/// A Dockerfile's last `HEALTHCHECK` (in the stage that runs vitals): its timeout must leave
/// the check and the client room, and its command must not need curl or wget.
/// Whether the image runs vitals (nothing is checked in one that does not).
fn dockerfile(file: &str, text: &str, b: &Budget, findings: &mut Vec<Finding>) -> bool {
    let joined = text.replace("\\\n", " ");
    let last_stage = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .fold(Vec::new(), |mut stage, line| {
            if line.to_ascii_uppercase().starts_with("FROM ") {
                stage.clear();
            }
            stage.push(line.to_owned());
            stage
        });
    let runs_vitals = last_stage.iter().any(|l| {
        let upper = l.to_ascii_uppercase();
        (upper.starts_with("ENTRYPOINT") || upper.starts_with("CMD")) && l.contains("vitals")
    });
    // A slim base image has no root certificates unless the stage installs them.
    let ships_roots = last_stage.iter().any(|l| l.contains("ca-certificates"));
    if runs_vitals && !ships_roots && !b.system_roots.is_empty() {
        findings.push(Finding {
            file: file.to_owned(),
            object: "image".to_owned(),
            container: "vitals".to_owned(),
            field: "FROM".to_owned(),
            problem: format!(
                "the image installs no ca-certificates, but {} verif{} a certificate against the \
                 system's roots: every such check will fail as untrusted; install \
                 ca-certificates, or give each a ca_file (Postgres: sslrootcert in its URL)",
                b.system_roots.join(", "),
                if b.system_roots.len() == 1 {
                    "ies"
                } else {
                    "y"
                }
            ),
        });
    }
    let Some(healthcheck) = last_stage
        .iter()
        .rev()
        .find(|l| l.to_ascii_uppercase().starts_with("HEALTHCHECK"))
    else {
        return runs_vitals;
    };
    if !runs_vitals && !healthcheck.contains("/health/") {
        return false;
    }
    let mut find = |field: &str, problem: String| {
        findings.push(Finding {
            file: file.to_owned(),
            object: "image".to_owned(),
            container: "vitals".to_owned(),
            field: field.to_owned(),
            problem,
        })
    };
    let command = healthcheck
        .split_once(" CMD ")
        .map_or("", |(_, command)| command);
    let words = Yaml::Array(
        command
            .split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '[' || c == ']')
            .filter(|w| !w.is_empty())
            .map(|w| Yaml::String(w.to_owned()))
            .collect(),
    );
    if let Some(tool) = needs_missing_tool(&words) {
        find("HEALTHCHECK", format!(
            "runs {tool}, which the vitals image does not ship; use CMD [\"vitals\", \"healthcheck\"]"
        ));
    }
    // Docker's default timeout is 30 s.
    let timeout = healthcheck
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--timeout="))
        .map_or(Some(30_000), |t| duration_ms(&Yaml::String(t.to_owned())));
    if let Some(timeout) =
        timeout.filter(|t| *t <= (b.deadline_ms + MARGIN_MS).max(CLIENT_BOUND_MS))
    {
        find("HEALTHCHECK --timeout", format!(
            "{timeout} ms is not above the longest check deadline, {} ms ({}), plus {MARGIN_MS} ms, \
             nor the healthcheck client's own {CLIENT_BOUND_MS} ms bound",
            b.deadline_ms, b.slowest
        ));
    }
    true
}

/// A container runs vitals when its image's last path segment (before any tag) is `vitals`,
/// its name is `vitals`, or it probes `/health/` paths.
fn runs_vitals(c: &Yaml) -> bool {
    c["image"].as_str().is_some_and(is_vitals_image)
        || c["name"].as_str() == Some("vitals")
        || ["startupProbe", "livenessProbe", "readinessProbe"]
            .iter()
            .any(|k| {
                c[*k]["httpGet"]["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("/health/"))
            })
}

fn is_vitals_image(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    let last = last.split('@').next().unwrap_or(last);
    last.split(':').next() == Some("vitals")
}

/// The ports the container's vitals serves: `ROCKET_PORT` when the manifest sets it, else the
/// configured port; and `health.port`.
fn served_ports(b: &Budget, c: &Yaml) -> Vec<u16> {
    let from_env = c["env"].as_vec().into_iter().flatten().find_map(|e| {
        (e["name"].as_str() == Some("ROCKET_PORT")).then(|| e["value"].as_str()?.parse().ok())?
    });
    let mut ports = vec![from_env.unwrap_or(b.port)];
    ports.extend(b.health_port);
    ports
}

fn resolve_port(port: &Yaml, c: &Yaml) -> Option<u16> {
    if let Some(n) = port.as_i64() {
        return u16::try_from(n).ok();
    }
    let name = port.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    c["ports"].as_vec()?.iter().find_map(|p| {
        (p["name"].as_str() == Some(name))
            .then(|| u16::try_from(p["containerPort"].as_i64()?).ok())?
    })
}

fn is_served_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    PATHS.contains(&path)
        || path
            .strip_prefix("/health/ready/")
            .is_some_and(|n| !n.is_empty())
}

/// `curl` or `wget` when a command needs one.
fn needs_missing_tool(command: &Yaml) -> Option<&'static str> {
    let words = yaml_words(command);
    ["curl", "wget"].into_iter().find(|tool| {
        words.iter().any(|w| {
            w.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
                .any(|part| part == *tool || part.ends_with(&format!("/{tool}")))
        })
    })
}

/// The strings of a command given as a list or one string.
fn yaml_words(yaml: &Yaml) -> Vec<String> {
    match yaml {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn yaml_text(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(n) => n.to_string(),
        _ => "(none)".into(),
    }
}

/// Seconds a preStop hook holds the pod: `sleep.seconds`, or an exec `sleep N`.
fn pre_stop_seconds(hook: &Yaml) -> u64 {
    if let Some(n) = hook["sleep"]["seconds"].as_i64() {
        return n.max(0) as u64;
    }
    let words = yaml_words(&hook["exec"]["command"]);
    let joined = words.join(" ");
    let mut parts = joined.split_whitespace();
    while let Some(word) = parts.next() {
        if word == "sleep" || word.ends_with("/sleep") {
            return parts
                .next()
                .and_then(|n| n.parse::<f64>().ok())
                .map_or(0, |n| n.ceil() as u64);
        }
    }
    0
}

/// A compose duration (`1m30s`, `5s`, `500ms`, or a number of seconds) in ms.
fn duration_ms(yaml: &Yaml) -> Option<u64> {
    let text = match yaml {
        Yaml::Integer(n) => return u64::try_from(*n).ok().map(|s| s * 1000),
        Yaml::String(s) => s.trim(),
        _ => return None,
    };
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&next) = chars.peek() {
            if next.is_ascii_alphabetic() {
                unit.push(next);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3_600_000.0,
                "m" => 60_000.0,
                "s" => 1000.0,
                "ms" => 1.0,
                "us" => 0.001,
                _ => return None,
            };
    }
    if !number.is_empty() {
        total += number.parse::<f64>().ok()? * 1000.0;
    }
    Some(total.round() as u64)
}

/// `vitals probes [--profile P] [--check FILE...]`, with the arguments after `probes`.
pub fn run(args: &[String]) -> ExitCode {
    let mut profile = None;
    let mut files = Vec::new();
    let mut checking = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--profile" => match rest.next() {
                Some(name) if !name.starts_with('-') => profile = Some(name.clone()),
                _ => {
                    eprintln!("vitals probes: --profile needs a profile name\nusage: vitals probes [--profile NAME] [--check FILE...]");
                    return ExitCode::from(2);
                }
            },
            "--check" => checking = true,
            "-h" | "--help" => {
                println!("usage: vitals probes [--profile NAME] [--check FILE...]");
                return ExitCode::SUCCESS;
            }
            file if checking => files.push(file.to_owned()),
            other => {
                eprintln!("vitals probes: unexpected '{other}'\nusage: vitals probes [--profile NAME] [--check FILE...]");
                return ExitCode::from(2);
            }
        }
    }
    let mut figment = crate::config::figment();
    if let Some(profile) = profile {
        figment = figment.select(profile);
    }
    let budget = match Budget::from_figment(&figment) {
        Ok(budget) => budget,
        Err(e) => {
            eprintln!("vitals probes: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if !checking {
        print!("{}", render(&budget));
        return ExitCode::SUCCESS;
    }
    if files.is_empty() {
        eprintln!("vitals probes: --check needs at least one file");
        return ExitCode::from(2);
    }
    let paths: Vec<&Path> = files.iter().map(Path::new).collect();
    let checked = match check_all(&paths, &budget) {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!("vitals probes: {e}");
            return ExitCode::from(2);
        }
    };
    for finding in &checked.findings {
        println!("{finding}");
    }
    let fit = files.len() - checked.without_vitals.len();
    if !checked.without_vitals.is_empty() {
        println!(
            "nothing runs vitals in (not checked): {}",
            checked.without_vitals.join(", ")
        );
    }
    match (checked.findings.is_empty(), fit) {
        // Nothing checked at all is never "fit".
        (_, 0) => {
            println!("no container, service or image that runs vitals in the given file(s)");
            ExitCode::FAILURE
        }
        (true, fit) => {
            println!(
                "{fit} file(s) with vitals: probe settings fit profile {}",
                budget.profile
            );
            ExitCode::SUCCESS
        }
        (false, _) => ExitCode::FAILURE,
    }
}

/// The printed recommendation, with its derivation up front.
pub fn render(b: &Budget) -> String {
    let r = recommend(b);
    format!(
        "# Probe settings for vitals, profile \"{}\": longest check deadline {} ms ({}),\n\
         # health.drain_ms {}, Rocket shutdown grace {} s + mercy {} s, probes on port {}.\n\
         # Kubernetes: in the container\n{}\
         # Kubernetes: in the pod spec\n{}\
         # docker compose: in the service\n{}",
        b.profile,
        b.deadline_ms,
        b.slowest,
        b.drain_ms,
        b.grace_s,
        b.mercy_s,
        b.probe_port(),
        r.container,
        r.pod,
        r.compose,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_durations_parse() {
        let d = |s: &str| duration_ms(&Yaml::String(s.into()));
        assert_eq!(d("5s"), Some(5000));
        assert_eq!(d("1m30s"), Some(90_000));
        assert_eq!(d("500ms"), Some(500));
        assert_eq!(d("1.5s"), Some(1500));
        assert_eq!(d("2"), Some(2000));
        assert_eq!(d("5 parsecs"), None);
        assert_eq!(duration_ms(&Yaml::Integer(3)), Some(3000));
    }

    #[test]
    fn vitals_images_are_told_by_their_last_segment() {
        assert!(is_vitals_image("vitals"));
        assert!(is_vitals_image("ghcr.io/acme/vitals:0.1.0"));
        assert!(is_vitals_image("registry:5000/vitals@sha256:abc"));
        assert!(!is_vitals_image("acme/vitals-proxy:1"));
        assert!(!is_vitals_image("postgres:16"));
    }

    #[test]
    fn curl_and_wget_are_found_in_commands() {
        let list = |w: &[&str]| Yaml::Array(w.iter().map(|s| Yaml::String((*s).into())).collect());
        assert_eq!(
            needs_missing_tool(&list(&["CMD", "curl", "-f", "x"])),
            Some("curl")
        );
        assert_eq!(
            needs_missing_tool(&list(&["CMD-SHELL", "wget -q x || exit 1"])),
            Some("wget")
        );
        assert_eq!(
            needs_missing_tool(&list(&["CMD", "vitals", "healthcheck"])),
            None
        );
        assert_eq!(
            needs_missing_tool(&list(&["sh", "-c", "/usr/bin/curl x"])),
            Some("curl")
        );
    }

    fn budget() -> Budget {
        Budget {
            profile: "release".into(),
            deadline_ms: 800,
            slowest: "redis".into(),
            port: 8000,
            health_port: None,
            drain_ms: 5000,
            grace_s: 2,
            mercy_s: 3,
            system_roots: Vec::new(),
            interval_ms: 0,
        }
    }

    fn dockerfile_fields(text: &str) -> Vec<String> {
        let mut findings = Vec::new();
        dockerfile("Dockerfile", text, &budget(), &mut findings);
        findings.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_dockerfile_healthcheck_is_checked_in_the_last_stage() {
        let good = "FROM rust AS build\nHEALTHCHECK CMD curl x\nFROM debian\n\
                    HEALTHCHECK --interval=10s --timeout=5s CMD [\"vitals\", \"healthcheck\"]\n\
                    ENTRYPOINT [\"vitals\"]\n";
        assert!(dockerfile_fields(good).is_empty());
        let bad = "FROM debian\nHEALTHCHECK --timeout=2s \\\n  CMD curl -f http://127.0.0.1:8000/health/ready\n\
                   ENTRYPOINT [\"vitals\"]\n";
        assert_eq!(
            dockerfile_fields(bad),
            ["HEALTHCHECK", "HEALTHCHECK --timeout"]
        );
    }

    #[test]
    fn an_image_without_roots_is_named_when_a_check_trusts_the_system_roots() {
        let image = "FROM debian:bookworm-slim\nENTRYPOINT [\"vitals\"]\n";
        let mut b = budget();
        let mut findings = Vec::new();
        dockerfile("Dockerfile", image, &b, &mut findings);
        assert!(findings.is_empty(), "no TLS check, no finding");
        b.system_roots = vec!["database".into()];
        dockerfile("Dockerfile", image, &b, &mut findings);
        assert_eq!(findings.len(), 1);
        assert!(findings[0]
            .problem
            .contains("database verifies a certificate"));
        let with_roots = "FROM debian:bookworm-slim\nRUN apt-get install -y ca-certificates\n\
                          ENTRYPOINT [\"vitals\"]\n";
        let mut findings = Vec::new();
        dockerfile("Dockerfile", with_roots, &b, &mut findings);
        assert!(findings.is_empty());
    }

    #[test]
    fn checks_that_trust_the_system_roots_are_found_in_the_configuration() {
        let figment = Figment::from(rocket::Config::default())
            .merge((
                "databases.postgres.url",
                "postgres://h/d?sslmode=verify-full",
            ))
            .merge(("databases.redis.url", "rediss://h:6380"))
            .merge(("health.checks.redis.ca_file", "/ca.pem"))
            .merge(("health.checks.api.kind", "http"))
            .merge(("health.checks.api.url", "https://api.example/"))
            .merge(("health.checks.ldap.kind", "tcp"))
            .merge(("health.checks.ldap.address", "ldap:636"))
            .merge(("health.checks.ldap.tls", true))
            .merge(("health.checks.plain.kind", "tcp"))
            .merge(("health.checks.plain.address", "db:5432"));
        let budget = Budget::from_figment(&figment).unwrap();
        assert_eq!(budget.system_roots, ["database", "api", "ldap"]);
    }

    #[test]
    fn with_the_timer_readiness_needs_no_room_for_the_deadline_but_startup_does() {
        let mut b = budget();
        b.deadline_ms = 2500;
        b.interval_ms = 1000;
        let r = recommend(&b);
        assert!(
            r.container
                .contains("timeoutSeconds: 1  # > nothing: checks run every 1000 ms"),
            "{}",
            r.container
        );
        assert!(r
            .container
            .contains("timeoutSeconds: 3  # startup runs the checks"));
    }

    #[test]
    fn pre_stop_sleeps_are_counted() {
        let yaml = YamlLoader::load_from_str("exec:\n  command: [sh, -c, sleep 7]").unwrap();
        assert_eq!(pre_stop_seconds(&yaml[0]), 7);
        let yaml = YamlLoader::load_from_str("sleep:\n  seconds: 4").unwrap();
        assert_eq!(pre_stop_seconds(&yaml[0]), 4);
    }
}
