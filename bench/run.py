#!/usr/bin/env python3
"""vitals benchmark: the release binary against a baseline hyper server, measured in one run.

usage: python3 bench/run.py [--rounds N] [--seconds S] [--before PATH]

With --before, a vitals release binary built from an earlier commit is measured in the same
rounds beside this one (liveness, and readiness with cache_ms = 0 at 64 and 1 connections),
and the figures compare their CPU per probe: what a change to the engine costs, measured
against a baseline of the same run.

Needs the real Postgres (with a `test` database) and Redis on 127.0.0.1, and Debian's wrk.
Each server runs pinned to CPU 0 and wrk to CPU 1 (taskset); every round measures every
target once, in turn, after a one-second warm-up; the table gives medians and the min-max
spread over rounds. Readiness targets run against the `test` database so that Postgres'
transaction counters see only vitals; each such measurement starts a fresh server and stops it
afterwards, because a backend reports its counters when it exits. Prints the figures, then
each target with PASS or MISS; exits 0 either way (a benchmark, not a test).
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
VITALS = os.path.join(REL, "vitals")
BASELINE = os.path.join(REL, "examples", "baseline")
BARE_ROCKET = os.path.join(REL, "examples", "bare_rocket")
SELECT1 = os.path.join(REL, "examples", "select1")
# Plain TCP on purpose: the shared server offers TLS and libpq's default `prefer` would take it,
# so every readiness probe would also measure encryption; the figures compare vitals' own cost.
PG_TEST = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = "0", "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return int(data.split(b" ")[1])
    except (OSError, IndexError, ValueError):
        return None


class Server:
    """A server process pinned to the server CPU."""

    def __init__(self, argv, env=None, port=None):
        self.port = port or free_port()
        self.probe_port = self.port  # where the load goes
        self.started = time.monotonic()
        full_env = dict(os.environ, **(env or {}))
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv(self.port), env=full_env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, path, limit=10.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if http_status(self.port, path, timeout=0.2) == 200:
                return time.monotonic() - self.started
        raise RuntimeError(f"server on {self.port} never answered {path}")

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def peak_rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# A private Redis on the load CPU (see `Dependencies`); set by main().
REDIS_PORT = 6379


class Dependencies:
    """Keeps the dependencies off the measured server's CPU: a private Redis started pinned to
    the load CPU, and each Postgres backend that serves the measured server pinned there too
    (a backend is a process of its own that ends with its connection). Left to the scheduler,
    either one lands on the server's CPU in some rounds and not in others, and readiness's
    figures swing by a third between rounds."""

    def __init__(self):
        global REDIS_PORT
        REDIS_PORT = free_port()
        self.redis = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, "redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("the private Redis did not start")
            time.sleep(0.05)

    @staticmethod
    def pin_backends():
        pids = psql("SELECT pid FROM pg_stat_activity WHERE datname = 'test' AND pid <> pg_backend_pid()")
        for pid in pids.split():
            subprocess.run(["taskset", "-pc", LOAD_CPU, pid], capture_output=True)

    def stop(self):
        self.redis.terminate()
        self.redis.wait()


def vitals(health, database=PG_TEST, redis=None, health_port=False, binary=None):
    """The release binary on a fresh port. Logs at `critical`: the figures are the endpoints'
    cost, not that of writing a log line per request. With `health_port`, `health.port` is set
    too, and the server is measured there (`probe_port`)."""
    redis = redis or f"redis://127.0.0.1:{REDIS_PORT}"
    port = free_port()
    probe_port = port
    if health_port:
        probe_port = free_port()
        health = health.rstrip("}") + f",port={probe_port}}}"
    env = {"ROCKET_PROFILE": "release", "ROCKET_ADDRESS": "127.0.0.1", "ROCKET_LOG_LEVEL": "critical",
           "ROCKET_HEALTH": health, "DATABASE_URL": database, "REDIS_URL": redis, "ROCKET_PORT": str(port)}
    server = Server(lambda p: [binary or VITALS], env, port=port)
    server.probe_port = probe_port
    return server


def wrk(port, path, conns, seconds):
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True).stdout
    unit = {"us": 1, "ms": 1e3, "s": 1e6}
    pct = {p: float(v) * unit[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_us": pct["50"], "p99_us": pct["99"],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def psql(sql, db="postgres"):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def pg_transactions():
    """Transactions in `test` so far, once every backend there has exited and reported."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = psql("SELECT numbackends, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'test'")
        backends, count = map(int, row.split("|"))
        if backends == 0:
            return count
        time.sleep(0.05)
    raise RuntimeError("backends in database test did not exit")


def redis_commands():
    out = subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "INFO", "commandstats"], capture_output=True,
                         text=True, check=True).stdout
    calls = {m.group(1): int(m.group(2)) for m in re.finditer(r"^cmdstat_(\S+?):calls=(\d+)", out, re.M)}
    return sum(v for k, v in calls.items() if not k.startswith(("info", "config")))


def database_runs(port):
    """The database check runs the server made, from its own /metrics."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    runs = re.findall(rb'vitals_check_runs_total\{check="database",outcome="\w+"\} (\d+)', data)
    return sum(int(n) for n in runs)


def measure(target, seconds):
    """One round of one target: figures from the measured phase only, warm-up excluded."""
    server = target["start"]()
    try:
        server.wait_ready("/health/live" if target["vitals"] else "/")
        if server.probe_port != server.port:
            deadline = time.monotonic() + 10
            while http_status(server.probe_port, "/health/live", timeout=0.2) != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the health port never answered")
        pg0, redis0 = (pg_transactions(), redis_commands()) if target["count"] else (0, 0)
        warm = wrk(server.probe_port, target["path"], target["conns"], 1)
        Dependencies.pin_backends()
        cpu0 = server.cpu_ticks()
        r = wrk(server.probe_port, target["path"], target["conns"], seconds)
        cpu1 = server.cpu_ticks()
        r["cpu_us"] = (cpu1 - cpu0) * TICK_US / max(r["requests"], 1)
        r["rss_kib"] = server.peak_rss_kib()
        if target["count"]:
            r["runs"] = database_runs(server.port)
    finally:
        server.stop()  # the Postgres backend reports its counters as it exits
    if target["count"]:
        probes = warm["requests"] + r["requests"]
        r["pg_per_probe"] = (pg_transactions() - pg0) / probes
        r["redis_per_probe"] = (redis_commands() - redis0) / probes
        r["pg_per_s"] = (pg_transactions() - pg0) / (1 + seconds)
        r["runs_per_s"] = r["runs"] / (1 + seconds)
    return r


class Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return


def select1_round_trip():
    """The yardstick, measured where the server is: the client on the server's CPU and its
    Postgres backend pinned to the load CPU, as `Dependencies` pins the server's."""
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, SELECT1, PG_TEST, "3000"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    backend = proc.stdout.readline().strip()
    subprocess.run(["taskset", "-pc", LOAD_CPU, backend], capture_output=True, check=True)
    out, _ = proc.communicate("go\n", timeout=60)
    return float(out.strip())


def hung_probes(conns=100, seconds=3):
    """wrk with 100 connections against readiness while both dependencies accept and never
    answer: every answer's time, as wrk measures it (the first burst opens all 100 at once)."""
    silent = Silent()
    server = vitals("{cache_ms=0,drain_ms=0}", f"postgres://postgres@127.0.0.1:{silent.port}/postgres",
                    f"redis://127.0.0.1:{silent.port}")
    try:
        server.wait_ready("/health/live")
        out = subprocess.run(
            ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "--latency",
             f"http://127.0.0.1:{server.port}/health/ready"],
            capture_output=True, text=True, check=True).stdout
    finally:
        server.stop()
    unit = {"us": 1e-3, "ms": 1, "s": 1e3}
    lat = re.search(r"Latency\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    pct = {p: float(v) * unit[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": total, "all_503": bool(non2xx) and int(non2xx.group(1)) == total,
            "p50": pct["50"], "p99": pct["99"], "max": float(lat.group(5)) * unit[lat.group(6)],
            "errors": errors.group(1) if errors else "none"}


def first_200(trials=5):
    closed = free_port()
    times = []
    for _ in range(trials):
        server = vitals("{drain_ms=0}", f"postgres://postgres@127.0.0.1:{closed}/postgres",
                        f"redis://127.0.0.1:{closed}")
        try:
            times.append(server.wait_ready("/health/live") * 1e3)
        finally:
            server.stop()
    return sorted(times)


def spread(values, fmt):
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--before", help="a vitals release binary from an earlier commit, measured beside")
    args = ap.parse_args()
    for tool in ("wrk", "taskset", "psql", "redis-cli"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            sys.exit(f"bench: {tool} is missing (apt-get install wrk util-linux postgresql-client redis-tools)")
    print("bench: building release binary and examples")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "vitals", "--example", "baseline",
                    "--example", "bare_rocket", "--example", "select1"], cwd=ROOT, check=True)

    def live_server():
        return vitals("{drain_ms=0}")

    targets = [
        {"name": "baseline (hyper)", "conns": 64, "path": "/", "vitals": False, "count": False,
         "start": lambda: Server(lambda p: [BASELINE, str(p)])},
        {"name": "bare Rocket, one route", "conns": 64, "path": "/health/live", "vitals": True, "count": False,
         "start": lambda: Server(lambda p: [BARE_ROCKET, str(p)])},
        {"name": "vitals /health/live", "conns": 64, "path": "/health/live", "vitals": True, "count": False,
         "start": live_server},
        {"name": "vitals /health/ready cache_ms=0", "conns": 64, "path": "/health/ready", "vitals": True,
         "count": True, "start": lambda: vitals("{cache_ms=0,drain_ms=0}")},
        {"name": "vitals /health/ready cache_ms=1000", "conns": 64, "path": "/health/ready", "vitals": True,
         "count": True, "start": lambda: vitals("{cache_ms=1000,drain_ms=0}")},
        {"name": "health port /health/live", "conns": 64, "path": "/health/live", "vitals": True,
         "count": False, "start": lambda: vitals("{drain_ms=0}", health_port=True)},
        {"name": "health port /health/ready cached", "conns": 64, "path": "/health/ready", "vitals": True,
         "count": False, "start": lambda: vitals("{cache_ms=1000,drain_ms=0}", health_port=True)},
        {"name": "vitals /health/live", "conns": 1, "path": "/health/live", "vitals": True, "count": False,
         "start": live_server},
        {"name": "vitals /health/ready cache_ms=0", "conns": 1, "path": "/health/ready", "vitals": True,
         "count": True, "start": lambda: vitals("{cache_ms=0,drain_ms=0}")},
    ]
    if args.before:
        before = os.path.abspath(args.before)
        targets += [
            {"name": "before: /health/live", "conns": 64, "path": "/health/live", "vitals": True,
             "count": False, "start": lambda: vitals("{drain_ms=0}", binary=before)},
            {"name": "before: /health/ready cache_ms=0", "conns": 64, "path": "/health/ready", "vitals": True,
             "count": True, "start": lambda: vitals("{cache_ms=0,drain_ms=0}", binary=before)},
            {"name": "before: /health/ready cache_ms=0", "conns": 1, "path": "/health/ready", "vitals": True,
             "count": True, "start": lambda: vitals("{cache_ms=0,drain_ms=0}", binary=before)},
        ]
    results = {i: [] for i in range(len(targets))}
    dependencies = Dependencies()
    try:
        for rnd in range(args.rounds):
            print(f"bench: round {rnd + 1}/{args.rounds}")
            for i, t in enumerate(targets):
                results[i].append(measure(t, args.seconds))
        select1 = select1_round_trip()
        hung = hung_probes()
        starts = first_200()
    finally:
        dependencies.stop()

    print()
    print(f"{'target':36} {'conns':>5}  {'req/s median (min-max)':>26}  {'p50 µs':>8}  {'p99 µs':>8}  "
          f"{'CPU µs/req':>18}  {'peak RSS':>9}")
    med = {}
    for i, t in enumerate(targets):
        rs = results[i]
        m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us", "cpu_us", "rss_kib")}
        m.update({k: statistics.median(r[k] for r in rs)
                  for k in ("pg_per_probe", "redis_per_probe", "pg_per_s", "runs_per_s") if k in rs[0]})
        m["non2xx"] = sum(r["non2xx"] for r in rs)
        med[(t["name"], t["conns"])] = m
        print(f"{t['name']:36} {t['conns']:>5}  {spread([r['rps'] for r in rs], '{:,.0f}'):>26}  "
              f"{m['p50_us']:>8.0f}  {m['p99_us']:>8.0f}  {spread([r['cpu_us'] for r in rs], '{:.1f}'):>18}  "
              f"{m['rss_kib'] / 1024:>6.1f} MiB")
    print()
    for (name, conns), m in med.items():
        if "pg_per_probe" in m:
            print(f"{name} @{conns}: Postgres statements {m['pg_per_probe']:.4f}/probe ({m['pg_per_s']:.2f}/s; "
                  f"database check runs {m['runs_per_s']:.2f}/s), Redis commands {m['redis_per_probe']:.4f}/probe, "
                  f"non-2xx {m['non2xx']}")
    print(f"raw SELECT 1 round trip (one connection, median of 3000): {select1:.1f} µs")
    print(f"100 concurrent probes (wrk -c100, 3 s), both dependencies hung, timeout_ms=800: {hung['requests']} "
          f"answers, all 503: {hung['all_503']}, p50 {hung['p50']:.1f} ms, p99 {hung['p99']:.1f} ms, "
          f"max {hung['max']:.1f} ms, socket errors: {hung['errors']}")
    print(f"exec to first 200 on /health/live, dependencies refused: median {statistics.median(starts):.1f} ms, "
          f"max {starts[-1]:.1f} ms (n={len(starts)})")

    base, live = med[("baseline (hyper)", 64)], med[("vitals /health/live", 64)]
    bare = med[("bare Rocket, one route", 64)]
    r0, r1000 = med[("vitals /health/ready cache_ms=0", 64)], med[("vitals /health/ready cache_ms=1000", 64)]
    live1, ready1 = med[("vitals /health/live", 1)], med[("vitals /health/ready cache_ms=0", 1)]
    hlive, hready = med[("health port /health/live", 64)], med[("health port /health/ready cached", 64)]
    peak = max(m["rss_kib"] for m in med.values() if m is not base and m is not bare) / 1024
    checks = [
        (live["cpu_us"] <= 2 * base["cpu_us"],
         f"liveness CPU {live['cpu_us']:.1f} µs/req <= 2 x baseline {base['cpu_us']:.1f} ({2 * base['cpu_us']:.1f})"),
        (hlive["cpu_us"] <= 1.3 * base["cpu_us"],
         f"health port liveness CPU {hlive['cpu_us']:.1f} µs/req <= 1.3 x baseline ({1.3 * base['cpu_us']:.1f})"),
        (hready["cpu_us"] <= 2 * base["cpu_us"],
         f"health port readiness from cache CPU {hready['cpu_us']:.1f} µs/req <= 2 x baseline "
         f"({2 * base['cpu_us']:.1f})"),
        (r0["pg_per_probe"] <= 0.05, f"readiness cache_ms=0 @64: {r0['pg_per_probe']:.4f} Postgres statements/probe <= 0.05"),
        (r0["redis_per_probe"] <= 0.05, f"readiness cache_ms=0 @64: {r0['redis_per_probe']:.4f} Redis commands/probe <= 0.05"),
        (r0["cpu_us"] <= 1.5 * live["cpu_us"],
         f"readiness cache_ms=0 CPU {r0['cpu_us']:.1f} µs/req <= 1.5 x liveness ({1.5 * live['cpu_us']:.1f}): "
         f"{r0['cpu_us'] / live['cpu_us']:.2f} x"),
        (r1000["runs_per_s"] <= 1 + 1 / (1 + args.seconds),
         f"readiness cache_ms=1000: {r1000['runs_per_s']:.2f} database checks/s <= 1 (+ the first run; "
         f"Postgres counted {r1000['pg_per_s']:.2f} transactions/s in `test`, autovacuum included)"),
        (ready1["p50_us"] <= live1["p50_us"] + select1 + 60,
         f"readiness @1 p50 {ready1['p50_us']:.0f} µs <= liveness p50 {live1['p50_us']:.0f} + SELECT 1 {select1:.0f} + 60 "
         f"({live1['p50_us'] + select1 + 60:.0f})"),
        (hung["max"] <= 850 and hung["all_503"],
         f"100 hung probes: every answer 503 within 800 + 50 ms (max {hung['max']:.1f})"),
        (peak <= 16, f"peak RSS {peak:.1f} MiB <= 16 MiB"),
        (statistics.median(starts) <= 100, f"first 200 {statistics.median(starts):.1f} ms after exec <= 100 ms"),
    ]
    print(f"health port: liveness {hlive['cpu_us'] / base['cpu_us']:.2f} x bare hyper, readiness from cache "
          f"{hready['cpu_us'] / base['cpu_us']:.2f} x")
    print(f"for scale: vitals liveness costs {live['cpu_us'] / bare['cpu_us']:.2f} x a bare Rocket route "
          f"({bare['cpu_us']:.1f} µs/req), which costs {bare['cpu_us'] / base['cpu_us']:.2f} x bare hyper")
    if args.before:
        blive, b64 = med[("before: /health/live", 64)], med[("before: /health/ready cache_ms=0", 64)]
        b1 = med[("before: /health/ready cache_ms=0", 1)]
        print(f"before/after: readiness cache_ms=0 @64 CPU {b64['cpu_us']:.1f} -> {r0['cpu_us']:.1f} µs/req "
              f"({b64['cpu_us'] / blive['cpu_us']:.2f} -> {r0['cpu_us'] / live['cpu_us']:.2f} x liveness); "
              f"@1 {b1['cpu_us']:.1f} -> {ready1['cpu_us']:.1f} µs/req, p50 {b1['p50_us']:.0f} -> "
              f"{ready1['p50_us']:.0f} µs")
    print()
    for ok, text in checks:
        print(f"  [{'PASS' if ok else 'MISS'}] {text}")
    print(json.dumps({"summary": {"pass": sum(ok for ok, _ in checks), "miss": sum(not ok for ok, _ in checks)}}))


if __name__ == "__main__":
    main()
