//! Kubernetes manifests: containers that run vitals in any object with a pod spec or pod
//! template (and in `List` items), their probes against the budget.

use yaml_rust2::Yaml;

use super::*;

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
    /// Any object with a pod spec or pod template (Deployment, StatefulSet, an Argo Rollout, a
    /// Knative-like CRD...), a CronJob's job template, and the items of a `kind: List`.
    pub(super) fn kubernetes(&mut self, doc: &Yaml) {
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
}
