#!/usr/bin/env python3
"""Deployment checks for vitals, run by .ci/run (needs PyYAML; no Docker engine).

consistency: Rocket.toml, Dockerfile, docker-compose.yml and deploy/kubernetes agree (probe
             timeouts vs health.timeout_ms, grace periods vs health.drain_ms, paths vs routes).
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


def seconds(value):
    """Compose durations ('15s', '1m30s', '500ms') in seconds."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(value)):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def runtime_stage():
    """The Dockerfile's last stage as a list of (instruction, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    last_from = max(i for i, l in enumerate(lines) if l.upper().startswith("FROM "))
    return [tuple(l.split(None, 1)) for l in lines[last_from:]]


def instruction(stage, name):
    return [args for ins, args in stage if ins.upper() == name]


def release_settings():
    """health values and Rocket's shutdown grace/mercy for the release profile."""
    toml = tomllib.loads(read("Rocket.toml"))
    health = {**toml.get("default", {}).get("health", {}), **toml.get("release", {}).get("health", {})}
    shutdown = {**toml.get("default", {}).get("shutdown", {}), **toml.get("release", {}).get("shutdown", {})}
    checks = health.get("checks", {})
    timeouts = [health["timeout_ms"]] + [c["timeout_ms"] for c in checks.values() if "timeout_ms" in c]
    return {
        "timeout_ms": max(timeouts),
        "drain_ms": health["drain_ms"],
        # Rocket's defaults when Rocket.toml sets none.
        "grace_s": shutdown.get("grace", 2),
        "mercy_s": shutdown.get("mercy", 3),
    }


def routes():
    """Paths mounted by the source, from the route attributes."""
    found = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, "src")):
        for name in files:
            if name.endswith(".rs"):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    found.update(re.findall(r'#\[get\("([^"?<]+)', f.read()))
    return found


def healthcheck_bound_s():
    m = re.search(r"pub const TIMEOUT: Duration = Duration::from_secs\((\d+)\)", read("src/healthcheck.rs"))
    return int(m.group(1))


def consistency():
    r = release_settings()
    stop_needed_s = r["drain_ms"] / 1000 + r["grace_s"] + r["mercy_s"]
    paths = routes()
    bound = healthcheck_bound_s()
    print(f"release: timeout_ms={r['timeout_ms']} drain_ms={r['drain_ms']} grace={r['grace_s']}s "
          f"mercy={r['mercy_s']}s; healthcheck bound {bound}s; routes {sorted(paths)}")

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
    hc_timeout = seconds(re.search(r"--timeout=(\S+)", hc).group(1))
    check('"vitals", "healthcheck"' in hc, "HEALTHCHECK runs vitals healthcheck")
    check(hc_timeout > bound, f"HEALTHCHECK timeout {hc_timeout}s > client bound {bound}s")
    check(bound * 1000 > r["timeout_ms"], f"client bound {bound}s > timeout_ms {r['timeout_ms']}")

    # docker-compose.yml
    compose = yaml.safe_load(read("docker-compose.yml"))
    app = compose["services"]["app"]
    hc = app["healthcheck"]
    print("docker-compose.yml")
    check(hc["test"] == ["CMD", "vitals", "healthcheck"], "app healthcheck runs vitals healthcheck")
    check(seconds(hc["timeout"]) > bound, f"healthcheck timeout {hc['timeout']} > client bound {bound}s")
    check((hc["interval"], hc["timeout"], hc["retries"], hc["start_period"]) == ("10s", "5s", 5, "30s"),
          "healthcheck interval 10s, timeout 5s, retries 5, start_period 30s")
    check(seconds(app["stop_grace_period"]) > stop_needed_s,
          f"stop_grace_period {app['stop_grace_period']} > drain + grace + mercy ({stop_needed_s:g}s)")
    check(all(app["depends_on"][s]["condition"] == "service_healthy" for s in ("db", "redis")),
          "app waits for healthy db and redis")
    check({"DATABASE_URL", "REDIS_URL"} <= set(app["environment"]), "app gets DATABASE_URL and REDIS_URL")
    check(any(p.endswith(f":{port}") for p in app.get("ports", [])), f"app publishes port {port}")
    prom = yaml.safe_load(read("deploy/prometheus.yml"))
    job = prom["scrape_configs"][0]
    check(job["metrics_path"] in paths and job["static_configs"][0]["targets"] == [f"app:{port}"],
          "prometheus scrapes app's /metrics")

    # deploy/kubernetes
    kdir = os.path.join(ROOT, "deploy/kubernetes")
    docs = {}
    for name in sorted(os.listdir(kdir)):
        if name.endswith(".yaml"):
            docs[name] = yaml.safe_load(read(f"deploy/kubernetes/{name}"))
    print("deploy/kubernetes")
    kust = docs.pop("kustomization.yaml")
    check(sorted(kust["resources"]) == sorted(docs), f"kustomization lists every manifest {sorted(docs)}")
    dep = next(d for d in docs.values() if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    probes = {k: c[k] for k in ("livenessProbe", "readinessProbe", "startupProbe")}
    expected = {"livenessProbe": "/health/live", "readinessProbe": "/health/ready", "startupProbe": "/health/startup"}
    for kind, path in expected.items():
        p = probes[kind]
        check(p["httpGet"]["path"] == path and path in paths, f"{kind} on {path}, a mounted route")
        check(p["timeoutSeconds"] * 1000 >= r["timeout_ms"] + 100,
              f"{kind} timeoutSeconds {p['timeoutSeconds']} fits timeout_ms {r['timeout_ms']} + 100 ms")
    ready = probes["readinessProbe"]
    withdraw_ms = ready["periodSeconds"] * ready["failureThreshold"] * 1000
    check(withdraw_ms <= r["drain_ms"], f"readiness withdraws a pod in {withdraw_ms} ms <= drain_ms")
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    check(grace > stop_needed_s, f"terminationGracePeriodSeconds {grace} > drain + grace + mercy")
    check(dep["spec"]["replicas"] == 3, "3 replicas")
    ann = pod["metadata"]["annotations"]
    check(ann["prometheus.io/port"] == port and ann["prometheus.io/path"] in paths, "scrape annotations")
    check(c["ports"][0]["containerPort"] == int(port), f"containerPort {port}")
    sc, psc = c["securityContext"], pod["spec"]["securityContext"]
    check(psc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
          and sc["capabilities"]["drop"] == ["ALL"], "restricted securityContext")
    check(str(psc["runAsUser"]) == user[-1].split(":")[0], "runAsUser matches the image's USER")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e}
    secret = next(d for d in docs.values() if d["kind"] == "Secret")
    check(refs == {"DATABASE_URL": secret["metadata"]["name"], "REDIS_URL": secret["metadata"]["name"]},
          "URLs come from the Secret")
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
        check(f"503 for {release_settings()['drain_ms']} ms" in lines[-1],
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
