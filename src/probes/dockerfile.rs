//! Dockerfiles: the last stage's `HEALTHCHECK` and whether the image ships root certificates.

use yaml_rust2::Yaml;

use super::*;

/// A Dockerfile's last `HEALTHCHECK` (in the stage that runs vitals): its timeout must leave
/// the check and the client room, and its command must not need curl or wget.
/// Whether the image runs vitals (nothing is checked in one that does not).
pub(super) fn dockerfile(file: &str, text: &str, b: &Budget, findings: &mut Vec<Finding>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        super::super::budget::test_budget()
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
}
