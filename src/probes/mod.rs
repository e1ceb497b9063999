//! `vitals probes`: probe settings derived from the service's own configuration, and a check
//! of an operator's Kubernetes manifests and compose files against them.
//!
//! Health checks hurt production most through numbers that do not fit together: a readiness
//! timeout shorter than the check deadline flaps, a liveness probe on the dependency checks
//! restarts every pod in a database blip, a drain shorter than kubelet's notice sends traffic
//! to a dying pod, a grace period kills the pod mid-drain. vitals knows its own deadlines, so
//! it can print numbers that fit ([`recommend`]) and find the ones that do not ([`check`]).
//!
//! `budget`: what the configuration says probes must fit; `render`: the settings printed;
//! one file per manifest format (`kubernetes`, `compose`, `dockerfile`); here: the command,
//! the findings, and what the formats share (durations, images, commands).

mod budget;
mod compose;
mod dockerfile;
mod kubernetes;
mod render;

pub use budget::Budget;
pub use render::{recommend, render, Recommended};

use dockerfile::dockerfile;

use std::path::Path;
use std::process::ExitCode;

use yaml_rust2::{Yaml, YamlLoader};

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

impl Site<'_> {
    pub(super) fn find(&mut self, object: &str, container: &str, field: &str, problem: String) {
        self.findings.push(Finding {
            file: self.file.clone(),
            object: object.to_owned(),
            container: container.to_owned(),
            field: field.to_owned(),
            problem,
        });
    }
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

/// What `vitals probes` was asked (the binary reads the command line).
#[derive(Debug, Default)]
pub struct Options {
    /// `--profile NAME`: the profile whose configuration the settings come from.
    pub profile: Option<String>,
    /// `--check FILE...`: the files to check; `None` prints settings instead.
    pub check: Option<Vec<String>>,
}

/// `vitals probes`: prints settings that fit, or checks files against them.
pub fn run(options: Options) -> ExitCode {
    let Options { profile, check } = options;
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
    let Some(files) = check else {
        print!("{}", render(&budget));
        return ExitCode::SUCCESS;
    };
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

    #[test]
    fn pre_stop_sleeps_are_counted() {
        let yaml = YamlLoader::load_from_str("exec:\n  command: [sh, -c, sleep 7]").unwrap();
        assert_eq!(pre_stop_seconds(&yaml[0]), 7);
        let yaml = YamlLoader::load_from_str("sleep:\n  seconds: 4").unwrap();
        assert_eq!(pre_stop_seconds(&yaml[0]), 4);
    }
}
