//! Compose files: services that run vitals, their healthcheck and stop grace period.

use yaml_rust2::Yaml;

use super::*;

impl Site<'_> {
    pub(super) fn compose(&mut self, doc: &Yaml) {
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
