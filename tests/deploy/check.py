#!/usr/bin/env python3
"""Deployment checks for vitals, run by .ci/run (needs PyYAML; no Docker engine).

consistency: the Dockerfile, docker-compose.yml, deploy/prometheus and deploy/kubernetes agree
             on ports, users, environment and wiring. Probe numbers against Rocket.toml's
             deadlines and drain are `vitals probes --check`'s job (.ci/run runs it).
smoke BIN:   lays BIN and Rocket.toml out as the Dockerfile's runtime stage does, runs
             it from the image's working directory with the image's environment as its non-root
             user, and probes it with the image's HEALTHCHECK command.

usage: check.py consistency | check.py smoke target/debug/vitals
"""
import json, os, re, shlex, shutil, signal, socket, subprocess, sys, tempfile, time, tomllib
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = {"passed": 0, "failed": 0}


def check(ok, what):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def release_drain_ms():
    """health.drain_ms of the release profile, from Rocket.toml."""
    toml = tomllib.loads(read("Rocket.toml"))
    health = {**toml.get("default", {}).get("health", {}), **toml.get("release", {}).get("health", {})}
    return health["drain_ms"]


def runtime_stage():
    """The Dockerfile's last stage as a list of (instruction, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    last_from = max(i for i, l in enumerate(lines) if l.upper().startswith("FROM "))
    return [tuple(l.split(None, 1)) for l in lines[last_from:]]


def instruction(stage, name):
    return [args for ins, args in stage if ins.upper() == name]


def consistency():
    # Dockerfile
    stage = runtime_stage()
    env = dict(kv.split("=", 1) for args in instruction(stage, "ENV") for kv in shlex.split(args))
    port = env.get("ROCKET_PORT", "8000")
    print("Dockerfile")
    check(env.get("ROCKET_PROFILE") == "release", "ROCKET_PROFILE=release")
    check(env.get("ROCKET_ADDRESS") == "0.0.0.0", "ROCKET_ADDRESS=0.0.0.0")
    check(instruction(stage, "EXPOSE") == [port], f"EXPOSE matches ROCKET_PORT {port}")
    check(instruction(stage, "STOPSIGNAL") == ["SIGTERM"], "STOPSIGNAL SIGTERM")
    user = instruction(stage, "USER")
    check(bool(user) and not user[-1].startswith(("0", "root")), f"runs as non-root user {user}")
    hc = " ".join(instruction(stage, "HEALTHCHECK"))
    check('"vitals", "healthcheck"' in hc, "HEALTHCHECK runs vitals healthcheck")

    # docker-compose.yml
    compose = yaml.safe_load(read("docker-compose.yml"))
    app = compose["services"]["app"]
    print("docker-compose.yml")
    check(app["healthcheck"]["test"][:3] == ["CMD", "vitals", "healthcheck"], "app healthcheck runs vitals healthcheck")
    check(all(app["depends_on"][s]["condition"] == "service_healthy" for s in ("db", "redis")),
          "app waits for healthy db and redis")
    check({"DATABASE_URL", "REDIS_URL"} <= set(app["environment"]), "app gets DATABASE_URL and REDIS_URL")
    check(any(p.endswith(f":{port}") for p in app.get("ports", [])), f"app publishes port {port}")
    monitoring = [n for n, s in compose["services"].items() if "monitoring" in s.get("profiles", [])]
    check(sorted(monitoring) == ["grafana", "prometheus"], "the monitoring profile runs Prometheus and Grafana")
    prom = yaml.safe_load(read("deploy/prometheus/prometheus.yml"))
    job = prom["scrape_configs"][0]
    check(job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == [f"app:{port}"],
          "prometheus scrapes app's /metrics")
    check(prom["rule_files"] == ["rules.yml"], "prometheus loads the alerting rules")
    grafana = compose["services"]["grafana"]
    check(any(v.startswith("./deploy/grafana/dashboards:") for v in grafana["volumes"]),
          "grafana gets the dashboard")

    # deploy/kubernetes
    kdir = os.path.join(ROOT, "deploy/kubernetes")
    docs = {}
    for name in sorted(os.listdir(kdir)):
        if name.endswith(".yaml"):
            docs[name] = yaml.safe_load(read(f"deploy/kubernetes/{name}"))
    print("deploy/kubernetes")
    kust = docs.pop("kustomization.yaml")
    applied = sorted(n for n in docs if n != "secret.example.yaml")
    check(sorted(kust["resources"]) == applied, f"kustomization lists every manifest but the example Secret {applied}")
    check("secret.example.yaml" not in kust["resources"], "apply -k never overwrites the real Secret")
    dep = next(d for d in docs.values() if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    check(dep["spec"]["replicas"] == 3, "3 replicas")
    ann = pod["metadata"]["annotations"]
    check(ann["prometheus.io/port"] == port and ann["prometheus.io/path"] == "/metrics", "scrape annotations")
    check(c["ports"][0]["containerPort"] == int(port), f"containerPort {port}")
    sc, psc = c["securityContext"], pod["spec"]["securityContext"]
    check(psc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
          and sc["capabilities"]["drop"] == ["ALL"], "restricted securityContext")
    check(str(psc["runAsUser"]) == user[-1].split(":")[0], "runAsUser matches the image's USER")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e}
    secret = docs["secret.example.yaml"]
    check(refs == {"DATABASE_URL": secret["metadata"]["name"], "REDIS_URL": secret["metadata"]["name"]},
          "URLs come from the Secret the example shows")
    check(any(d["kind"] == "PodDisruptionBudget" for d in docs.values()), "a PodDisruptionBudget")
    check(any(d["kind"] == "Service" for d in docs.values()), "a Service")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smoke(binary):
    stage = runtime_stage()
    workdir = instruction(stage, "WORKDIR")[-1]
    env = dict(kv.split("=", 1) for args in instruction(stage, "ENV") for kv in shlex.split(args))
    uid, _, gid = instruction(stage, "USER")[-1].partition(":")
    root = tempfile.mkdtemp(prefix="vitals-image-")
    os.chmod(root, 0o755)
    print(f"smoke: image layout under {root}, WORKDIR {workdir}, USER {uid}:{gid or uid}")
    try:
        for args in instruction(stage, "COPY"):
            words = shlex.split(args)
            src, dst = words[-2], words[-1]
            dst = dst if dst.startswith("/") else os.path.join(workdir, dst)
            target = root + dst
            source = binary if any(w.startswith("--from=") for w in words) else os.path.join(ROOT, src)
            if os.path.isdir(source):
                shutil.copytree(source, target)
            else:
                os.makedirs(os.path.dirname(target) if not dst.endswith("/") else target, exist_ok=True)
                shutil.copy2(source, target if not dst.endswith("/") else os.path.join(target, os.path.basename(src)))
        subprocess.run(["chmod", "-R", "a+rX", root], check=True)
        port = str(free_port())
        env.update({
            "ROCKET_PORT": port,
            "PATH": f"{root}/usr/local/bin:/usr/bin:/bin",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
            "REDIS_URL": "redis://127.0.0.1:6379",
        })
        as_user = ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups", "--"]
        entry = json.loads(instruction(stage, "ENTRYPOINT")[-1]) + json.loads(instruction(stage, "CMD")[-1])
        cwd = root + workdir
        server = subprocess.Popen(as_user + entry, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        hc = json.loads(re.search(r"CMD (\[.*\])", " ".join(instruction(stage, "HEALTHCHECK"))).group(1))
        healthy = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.poll() is None:
            if subprocess.run(as_user + hc, cwd=cwd, env=env, capture_output=True).returncode == 0:
                healthy = True
                break
            time.sleep(0.2)
        check(healthy, "the HEALTHCHECK command passes against the laid-out image")
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/static/status.css", timeout=3) as resp:
            check(resp.status == 200 and "text/css" in resp.headers["Content-Type"],
                  "the stylesheet is served from the binary")
        with urllib.request.urlopen(f"{base}/status", timeout=3) as resp:
            check("/static/status.css" in resp.read().decode(), "the status page links its stylesheet")
        server.send_signal(signal.SIGTERM)
        first = server.stdout.readline()
        lines = [first]
        while "draining" not in lines[-1] and lines[-1]:
            lines.append(server.stdout.readline())
        check(f"503 for {release_drain_ms()} ms" in lines[-1],
              "Rocket.toml's release drain_ms is in effect")
        check(all(l.startswith("{") for l in lines if l.strip()), "release logs are JSON lines")
        server.send_signal(signal.SIGTERM)  # a second signal cuts the drain short
        rest, _ = server.communicate(timeout=15)
        check(server.returncode == 0, f"exit code 0 after SIGTERM (got {server.returncode})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    if sys.argv[1:2] == ["consistency"]:
        consistency()
    elif sys.argv[1:2] == ["smoke"] and len(sys.argv) == 3:
        smoke(os.path.abspath(sys.argv[2]))
    else:
        sys.exit(__doc__)
    print(f"deploy {sys.argv[1]}: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
