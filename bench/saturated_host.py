#!/usr/bin/env python3
"""Probes under a saturated host: the example host app (examples/host_app.rs) with vitals'
health listener on a port of its own (`health.port`).

usage: python3 bench/saturated_host.py [--probes N]

Builds the host app in release, starts it pinned to CPU 0 with ROCKET_HEALTH='{port=...}',
and probes /ops/health/live and /ops/health/ready on the host's port and on the health port,
a new connection per probe as kubelet does, from CPU 1: first idle, then while wrk (CPU 1,
64 connections) keeps its CPU-bound route /work?ms=5 saturated. Prints p50, p99 and max per
target and phase side by side, then the target for the health port under saturation as PASS
or MISS, then the app runtime's heartbeat lag in each phase (from vitals_runtime_lag_seconds)
beside health.stall_ms, the margin stall detection keeps under this load. Needs Postgres and
Redis on 127.0.0.1 and Debian's wrk. Exits 0 (a benchmark).
"""
import argparse, os, socket, statistics, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_APP = os.path.join(ROOT, "target", "release", "examples", "host_app")
SERVER_CPU, LOAD_CPU = "0", "1"
TIMEOUT_S = 5.0
STALL_MS = 5000  # health.stall_ms's default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(port, path):
    """Seconds for one GET on a new connection, or None when it failed or timed out."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            return None
    except OSError:
        return None
    return time.perf_counter() - started


def measure(targets, n):
    """n probes of each target, interleaved; per target the latencies in ms and failures."""
    results = {name: ([], 0) for name, _, _ in targets}
    for _ in range(n):
        for name, port, path in targets:
            took = probe(port, path)
            times, failed = results[name]
            if took is None:
                results[name] = (times, failed + 1)
            else:
                times.append(took * 1e3)
        time.sleep(0.005)
    return results


def summary(times):
    if not times:
        return "no answers"
    times = sorted(times)
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    return f"{p(0.5):8.2f} {p(0.99):8.2f} {times[-1]:8.2f}"


def lag_buckets(port):
    """The cumulative buckets of vitals_runtime_lag_seconds: {le: count}."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as s:
        s.sendall(b"GET /ops/metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    buckets = {}
    for line in data.decode().splitlines():
        if line.startswith("vitals_runtime_lag_seconds_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def lag_summary(before, after):
    """p50, p99 and the largest bucket reached, in ms, of the beats between two scrapes."""
    delta = sorted((le, after[le] - before.get(le, 0)) for le in after)
    total = delta[-1][1] if delta else 0
    if not total:
        return "no beats"
    def q(f):
        return next(le for le, n in delta if n >= f * total)
    top = next(le for le, n in delta if n >= total)
    ms = lambda s: "inf" if s == float("inf") else f"{s * 1e3:g}"
    return f"p50 <= {ms(q(0.5))} ms, p99 <= {ms(q(0.99))} ms, max <= {ms(top)} ms ({total:.0f} beats)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=300, help="probes per target and phase")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "host_app"],
                   cwd=ROOT, check=True)
    app_port, health_port = free_port(), free_port()
    env = dict(os.environ, ROCKET_PORT=str(app_port), ROCKET_LOG_LEVEL="critical",
               ROCKET_HEALTH="{port=%d,cache_ms=0}" % health_port)
    app = subprocess.Popen(["taskset", "-c", SERVER_CPU, HOST_APP], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while probe(health_port, "/ops/health/live") is None or probe(app_port, "/hello") is None:
            if time.monotonic() > deadline:
                sys.exit("host_app did not start")
            time.sleep(0.1)
        os.sched_setaffinity(0, {int(LOAD_CPU)})
        targets = [
            ("live,   host port", app_port, "/ops/health/live"),
            ("live,   health port", health_port, "/ops/health/live"),
            ("ready,  host port", app_port, "/ops/health/ready"),
            ("ready,  health port", health_port, "/ops/health/ready"),
        ]
        lag_idle = lag_buckets(health_port)
        idle = measure(targets, args.probes)
        lag_loaded = lag_buckets(health_port)
        load = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, "wrk", "-t2", "-c64", "-d600s",
             f"http://127.0.0.1:{app_port}/work?ms=5"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(2)  # wrk at full pressure
        saturated = measure(targets, args.probes)
        lag_end = lag_buckets(health_port)
        load.send_signal(2)
        wrk_out, _ = load.communicate(timeout=10)
        served = next((l for l in wrk_out.splitlines() if "Requests/sec" in l), "").strip()
        print(f"host_app pinned to CPU {SERVER_CPU}; probes and wrk on CPU {LOAD_CPU}; "
              f"{args.probes} probes per target and phase, a new connection each")
        print(f"saturating load: wrk -c64 on /work?ms=5 (CPU-bound handler): {served}")
        print()
        print(f"{'target':22} {'idle p50':>9} {'p99':>8} {'max':>8} | {'saturated p50':>14} {'p99':>8} {'max':>8}  failed  (ms)")
        for name, _, _ in targets:
            (it, ifail), (st, sfail) = idle[name], saturated[name]
            print(f"{name:22} {summary(it):>26} | {summary(st):>31}  {ifail}/{sfail}")
        live = sorted(saturated["live,   health port"][0])
        if live:
            p99, most = live[min(len(live) - 1, int(0.99 * len(live)))], live[-1]
            ok = p99 <= 10 and most <= 50 and saturated["live,   health port"][1] == 0
            print()
            print(f"  [{'PASS' if ok else 'MISS'}] health port liveness under saturation: "
                  f"p99 {p99:.2f} ms <= 10, max {most:.2f} ms <= 50")
        print()
        print(f"app runtime heartbeat lag (every 100 ms; bucket bounds), health.stall_ms = {STALL_MS}:")
        print(f"  idle       {lag_summary(lag_idle, lag_loaded)}")
        print(f"  saturated  {lag_summary(lag_loaded, lag_end)}")
    finally:
        app.terminate()
        app.wait(timeout=15)


if __name__ == "__main__":
    main()
