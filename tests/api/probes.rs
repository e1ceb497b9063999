//! `vitals probes`: the corpus under `tests/probes/` (each finding kind triggered by a minimal
//! broken manifest; good manifests, the project's own included, silent), the round trip from
//! what it prints to a Deployment that passes, and the command's exit codes.

use std::path::{Path, PathBuf};

use tokio::process::Command;
use vitals::probes::{check, recommend, Budget};

use crate::helpers::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn release() -> Budget {
    Budget::from_figment(&vitals::figment().select("release")).unwrap()
}

/// The fields at fault in `file` (under tests/probes/).
fn fields(file: &str, budget: &Budget) -> Vec<String> {
    let path = root().join("tests/probes").join(file);
    let findings = check(&[path.as_path()], budget).unwrap();
    for finding in &findings {
        assert!(
            finding.to_string().starts_with(&path.display().to_string()),
            "{finding}"
        );
        assert_ne!(finding.object, "", "{finding}");
        assert_ne!(finding.container, "", "{finding}");
    }
    findings.into_iter().map(|f| f.field).collect()
}

#[test]
fn the_release_budget_comes_from_rocket_toml() {
    let b = release();
    assert_eq!(
        (b.deadline_ms, b.drain_ms, b.grace_s, b.mercy_s),
        (800, 5000, 2, 3)
    );
}

#[test]
fn each_kind_of_mistake_is_found_in_its_manifest() {
    let b = release();
    let raised = Budget::from_figment(
        &vitals::figment()
            .select("release")
            .merge(("health.timeout_ms", 1500)),
    )
    .unwrap();
    assert_eq!(
        fields("bad/readiness-timeout.yaml", &raised),
        ["readinessProbe.timeoutSeconds"]
    );
    for (file, expected) in [
        (
            "bad/liveness-checks-dependencies.yaml",
            &["livenessProbe.httpGet.path"][..],
        ),
        ("bad/no-startup-probe.yaml", &["livenessProbe"]),
        ("bad/slow-readiness.yaml", &["readinessProbe.periodSeconds"]),
        ("bad/short-grace.yaml", &["terminationGracePeriodSeconds"]),
        (
            "bad/wrong-port-and-path.yaml",
            &["startupProbe.httpGet.port", "livenessProbe.httpGet.path"],
        ),
        ("bad/exec-curl.yaml", &["readinessProbe.exec.command"]),
        ("bad/compose-timeout.yml", &["healthcheck.timeout"]),
        ("bad/compose-curl.yml", &["healthcheck.test"]),
        ("bad/compose-grace.yml", &["stop_grace_period"]),
        ("bad/Dockerfile", &["HEALTHCHECK", "HEALTHCHECK --timeout"]),
        ("bad/rollout-liveness.yaml", &["livenessProbe.httpGet.path"]),
        ("bad/list-items.yaml", &["livenessProbe.httpGet.path"]),
    ] {
        assert_eq!(fields(file, &b), expected, "{file}");
    }
}

#[test]
fn good_manifests_and_the_projects_own_are_silent() {
    let b = release();
    let own: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .chain([
            root().join("docker-compose.yml"),
            root().join("Dockerfile"),
            root().join("tests/probes/good/all-kinds.yaml"),
            root().join("tests/probes/good/compose.yml"),
        ])
        .collect();
    let paths: Vec<&Path> = own.iter().map(PathBuf::as_path).collect();
    let findings = check(&paths, &b).unwrap();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn what_it_prints_dropped_into_a_deployment_passes() {
    for budget in [
        release(),
        Budget::from_figment(
            &vitals::figment()
                .select("release")
                .merge(("health.timeout_ms", 2500))
                .merge(("health.drain_ms", 12_000))
                .merge(("health.port", 9100)),
        )
        .unwrap(),
    ] {
        let r = recommend(&budget);
        let indent = |text: &str, by: usize| {
            text.lines()
                .map(|l| format!("{}{l}\n", " ".repeat(by)))
                .collect::<String>()
        };
        let manifest = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: pasted}}\nspec:\n  template:\n    spec:\n{}      containers:\n        - name: vitals\n          image: vitals:0.1.0\n{}",
            indent(&r.pod, 6),
            indent(&r.container, 10)
        );
        let compose = format!(
            "services:\n  app:\n    image: vitals:0.1.0\n{}",
            indent(&r.compose, 4)
        );
        let dir = std::env::temp_dir().join(format!(
            "vitals-probes-{}-{}",
            std::process::id(),
            budget.deadline_ms
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (k8s, dc) = (dir.join("deployment.yaml"), dir.join("compose.yml"));
        std::fs::write(&k8s, &manifest).unwrap();
        std::fs::write(&dc, &compose).unwrap();
        let findings = check(&[k8s.as_path(), dc.as_path()], &budget).unwrap();
        assert!(findings.is_empty(), "{findings:#?}\n{manifest}\n{compose}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_yaml_error_names_the_file_and_line() {
    let path = std::env::temp_dir().join(format!("vitals-broken-{}.yaml", std::process::id()));
    std::fs::write(&path, "kind: Pod\nspec:\n  containers: [\n    - name: x\n").unwrap();
    let error = check(&[path.as_path()], &release()).unwrap_err();
    assert!(
        error.starts_with(&format!("{}:", path.display())),
        "{error}"
    );
    assert!(
        error
            .split(':')
            .nth(1)
            .is_some_and(|line| line.parse::<u32>().is_ok()),
        "{error}"
    );
    let _ = std::fs::remove_file(&path);
}

async fn probes(args: &[&str]) -> (i32, String) {
    let args: Vec<&str> = ["probes"].iter().chain(args).copied().collect();
    vitals_command(&args, &[]).await
}

/// Runs the `vitals` binary from the checkout with `args` and `envs`: its exit code and
/// everything it wrote (stdout, then stderr).
async fn vitals_command(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn the_command_exits_0_1_or_2() {
    let (code, text) = probes(&["--profile", "release"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("readinessProbe:") && text.contains("terminationGracePeriodSeconds: 15"),
        "{text}"
    );
    let (code, _) = probes(&[
        "--profile",
        "release",
        "--check",
        "deploy/kubernetes/deployment.yaml",
        "docker-compose.yml",
    ])
    .await;
    assert_eq!(code, 0);
    let (code, text) = probes(&[
        "--profile",
        "release",
        "--check",
        "tests/probes/bad/short-grace.yaml",
    ])
    .await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("DaemonSet/killed: container vitals: terminationGracePeriodSeconds"),
        "{text}"
    );
    let (code, text) = probes(&["--check", "no/such/file.yaml"]).await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no/such/file.yaml"), "{text}");
}

#[tokio::test]
async fn a_bad_rocket_setting_is_exit_2_naming_it_not_a_panic() {
    let (code, text) = vitals_command(&["probes"], &[("ROCKET_PORT", "notaport")]).await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("PORT"), "{text}");
}

#[tokio::test]
async fn a_file_where_nothing_runs_vitals_is_never_called_fit() {
    let (code, text) = probes(&["--check", "deploy/kubernetes/service.yaml"]).await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("nothing runs vitals in (not checked): deploy/kubernetes/service.yaml"),
        "{text}"
    );
    assert!(!text.contains("fit"), "{text}");
    let (code, text) = probes(&[
        "--profile",
        "release",
        "--check",
        "deploy/kubernetes/service.yaml",
        "deploy/kubernetes/deployment.yaml",
    ])
    .await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("1 file(s) with vitals: probe settings fit"),
        "{text}"
    );
}

#[tokio::test]
async fn a_flag_without_its_value_is_exit_2() {
    let (code, text) = probes(&["--profile"]).await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--profile needs a profile name"), "{text}");
    let (code, _) = probes(&["--profile", "--check", "Dockerfile"]).await;
    assert_eq!(code, 2);
}

#[tokio::test]
async fn every_command_has_help_and_bad_arguments_are_refused() {
    for (args, code, words) in [
        (&["--help"][..], 0, "usage: vitals [serve]"),
        (&["serve", "--help"], 0, "Serves the health endpoints"),
        (&["healthcheck", "--help"], 0, "exits 0 on a 2xx answer"),
        (&["probes", "--help"], 0, "Prints probe settings"),
        (&["serve", "now"], 2, "serve takes no 'now'"),
        (&["frobnicate"], 2, "unknown command 'frobnicate'"),
        (
            &["probes", "--check", "Dockerfile", "-x"],
            2,
            "unknown flag '-x'",
        ),
        (&["probes", "--check"], 2, "--check needs at least one file"),
        (
            &["healthcheck", "a", "b"],
            1,
            "unhealthy: healthcheck takes one URL",
        ),
    ] {
        let (exit, text) = vitals_command(args, &[]).await;
        assert_eq!(exit, code, "{args:?}: {text}");
        assert!(text.contains(words), "{args:?}: {text}");
    }
}
