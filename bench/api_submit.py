"""Throughput of job submission against the floor of the stack: ``make bench``.

One gunicorn (scripts/gunicorn.conf.py, as deployed) serves both measurements, in one run, with
one load generator: ``GET /healthz`` (the cost of HTTP + gunicorn + Flask alone) and
``POST /v1/jobs`` (auth, rate limit, validation, an INSERT and a broker publish). The ratio says
how much of the floor a submission keeps; goal >= 0.4. Then the API's memory, per process.

The two are measured in alternating rounds (healthz, jobs, healthz, jobs, ...) and the ratio
reported is the median of the rounds' ratios. Each round's ratio compares measurements taken
seconds apart, so a drift in the speed of a shared machine (seen here: the same loop of
pure Python taking 293 to 494 ms from one minute to the next) moves both sides of it alike
instead of landing on one side only.

Needs PostgreSQL and Redis: a temporary database and Redis database are made the way the tests
make them (tests/support/services.py; SAMO_TEST_DATABASE_URL / SAMO_TEST_REDIS_URL point there).
No worker is needed: submitted jobs just queue. wrk is the load generator when installed
(``apt-get install wrk``: C, so it takes less CPU from the server than Python would);
otherwise a threaded Python client.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_TIER = "bench=1000000000/60/1000000000"
JOB_BODY = '{"type":"emotion","input":{"text":"I am thrilled that the release went out on time!"}}'
GOAL_RATIO = 0.4
GOAL_RSS_MB = 150
#: A measurement counts as spread over the workers when no worker did more than this share of the API CPU.
BALANCED_SHARE = 0.7
BALANCE_ATTEMPTS = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating healthz/jobs measurement pairs")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", 2)))
    parser.add_argument("--worker-class", default=os.environ.get("GUNICORN_WORKER_CLASS", "gevent"),
                        help="gunicorn worker class (the deployed default: gevent)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", 4)),
                        help="threads per worker with --worker-class gthread")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--tenants", type=int, default=1,
                        help="submit as this many tenants in turn (each tenant's in-flight check is serialised)")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_keys(database_url: str, tenants: int) -> list[str]:
    from db.api_keys import create_api_key, create_tenant
    from db.session import session_scope

    with session_scope(database_url) as session:
        return [create_api_key(session, create_tenant(session, f"bench-{n}", "bench"), name="bench").key
                for n in range(tenants)]


def start_gunicorn(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", os.environ.get("BENCH_GUNICORN_CONF", "scripts/gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{port}",
         "api:create_app()"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited:\n" + log_path.read_text()[-3000:])
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return process
        except requests.RequestException:
            time.sleep(0.3)
    raise TimeoutError("gunicorn did not answer /healthz")


def run_wrk(url: str, duration: float, connections: int, keys: list[str], body: str | None):
    script = None
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration:g}s", "--latency"]
    if body is not None and len(keys) == 1:
        # One request for the whole run, built once by wrk, as for the GET: a Lua `request`
        # function would cost the load generator (on the same CPUs) more per POST than per GET.
        lua = ['wrk.method = "POST"', f"wrk.body = [[{body}]]",
               'wrk.headers["Content-Type"] = "application/json"',
               f'wrk.headers["Authorization"] = "ApiKey {keys[0]}"']
    elif body is not None:
        lua = [f"local body = [[{body}]]", "local keys = {" + ", ".join(f'"{k}"' for k in keys) + "}",
               "local n = 0",
               "request = function()",
               "  n = n + 1",
               '  local headers = {["Content-Type"] = "application/json", '
               '["Authorization"] = "ApiKey " .. keys[n % #keys + 1]}',
               '  return wrk.format("POST", nil, headers, body)',
               "end"]
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write("\n".join(lua) + "\n")
        script.close()
        command += ["-s", script.name]
    try:
        output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    finally:
        if script:
            os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    return rate, total, int(bad.group(1)) if bad else 0, p99.group(1) if p99 else "?"


def run_python(url: str, duration: float, connections: int, keys: list[str], body: str | None):
    counts = {"ok": 0, "bad": 0}
    lock = threading.Lock()
    latencies: list[float] = []
    stop_at = time.monotonic() + duration

    def client(number: int) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"ApiKey {keys[number % len(keys)]}"} \
            if keys else {}
        session = requests.Session()
        ok = bad = 0
        mine = []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            response = (session.post(url, data=body, headers=headers, timeout=30) if body is not None
                        else session.get(url, timeout=30))
            mine.append(time.perf_counter() - started)
            ok, bad = (ok + 1, bad) if response.status_code < 300 else (ok, bad + 1)
        with lock:
            counts["ok"] += ok
            counts["bad"] += bad
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    total = counts["ok"] + counts["bad"]
    latencies.sort()
    p99 = f"{latencies[int(len(latencies) * 0.99)] * 1000:.1f}ms" if latencies else "?"
    return total / elapsed, total, counts["bad"], p99


def memory_report(master_pid: int) -> list[str]:
    master = psutil.Process(master_pid)
    lines, rss_total, pss_total = [], 0.0, 0.0
    for process in [master, *master.children(recursive=True)]:
        try:
            info = process.memory_full_info()
        except psutil.AccessDenied:
            info = process.memory_info()
        rss = info.rss / 2**20
        pss = getattr(info, "pss", 0) / 2**20
        rss_total += rss
        pss_total += pss
        role = "master" if process.pid == master_pid else "worker"
        lines.append(f"  pid {process.pid:>7} {role:<6}  RSS {rss:7.1f} MB   PSS {pss:7.1f} MB")
    lines.append(f"  total                RSS {rss_total:7.1f} MB   PSS {pss_total:7.1f} MB")
    worst = max(float(re.search(r"RSS\s+([\d.]+)", line).group(1)) for line in lines[:-1])
    lines.append(f"  largest process RSS {worst:.1f} MB (goal <= {GOAL_RSS_MB} MB per process): "
                 f"{'met' if worst <= GOAL_RSS_MB else 'NOT met'}")
    return lines


def worker_cpu_s(master_pid: int) -> dict[int, float]:
    """CPU seconds so far of each gunicorn worker."""
    workers = {}
    for process in psutil.Process(master_pid).children(recursive=True):
        times = process.cpu_times()
        workers[process.pid] = times.user + times.system
    return workers


def measure_balanced(runner, name: str, url: str, args, keys: list[str], body: str | None, master_pid: int):
    """One measurement with the load spread over the workers, and the API CPU per request.

    wrk opens its connections at once and keeps them; the kernel hands each to whichever
    worker accepts first, and a worker keeps what it accepted. So now and then one
    worker gets (nearly) all of them and the other idles: the run measures one process on one
    core (GET /healthz: ~2,000 req/s instead of ~5,000 on a 2-CPU box). Such a run is
    measured again, up to ``BALANCE_ATTEMPTS`` times, so that both paths are compared with
    every worker serving.
    """
    for attempt in range(1, BALANCE_ATTEMPTS + 1):
        before = worker_cpu_s(master_pid)
        result = runner(url, args.duration, args.connections, keys, body)
        after = worker_cpu_s(master_pid)
        spent = [after[pid] - before.get(pid, 0.0) for pid in after]
        share = max(spent) / max(sum(spent), 1e-9)
        cpu_ms = sum(spent) * 1000 / max(result[1], 1)
        if args.workers == 1 or share <= BALANCED_SHARE:
            return result, cpu_ms, share
        print(f"  {name}: one worker did {share:.0%} of the API's work (it was handed most connections); "
              f"measuring again ({attempt}/{BALANCE_ATTEMPTS})", flush=True)
    print(f"WARNING: {name} stayed unbalanced after {BALANCE_ATTEMPTS} runs", flush=True)
    return result, cpu_ms, share


def server_shape(args) -> str:
    if args.worker_class == "gthread":
        return f"gthread, {args.workers} workers x {args.threads} threads"
    return f"{args.worker_class}, {args.workers} workers"


def measure(args, base: str, keys: list[str], master_pid: int) -> None:
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    runner = run_wrk if use_wrk else run_python
    print(f"client: {'wrk (2 threads)' if use_wrk else 'python threads'}, {args.connections} connections, "
          f"{args.rounds} rounds of {args.duration:g}s per path; server: gunicorn {server_shape(args)}; "
          f"{len(keys)} tenant(s); {os.cpu_count()} CPUs shared by client and server",
          flush=True)
    # Warm both paths: connection pools, first-request imports, the key cache.
    runner(base + "/healthz", 2, args.connections, [], None)
    runner(base + "/v1/jobs", 2, args.connections, keys, JOB_BODY)
    paths = (("GET  /healthz", base + "/healthz", [], None), ("POST /v1/jobs", base + "/v1/jobs", keys, JOB_BODY))
    totals = {name: [0, 0.0, 0] for name, *_ in paths}  # requests, API CPU ms, non-2xx
    ratios = []
    for number in range(1, args.rounds + 1):
        rates = []
        for name, url, path_keys, body in paths:
            (rate, total, bad, p99), cpu_ms, share = measure_balanced(runner, name, url, args, path_keys, body,
                                                                      master_pid)
            print(f"round {number} {name}: {rate:9.1f} req/s  ({total} requests, {bad} non-2xx, p99 {p99}, "
                  f"API CPU {cpu_ms:.2f} ms/request, busiest worker {share:.0%} of it)", flush=True)
            totals[name][0] += total
            totals[name][1] += cpu_ms * total
            totals[name][2] += bad
            rates.append(rate)
        ratios.append(rates[1] / rates[0])
        print(f"round {number} ratio: {ratios[-1]:.3f}", flush=True)
    # API CPU per request separates "the API is slow" from "the API waits" (database, a busy box).
    cpu = {name: spent / max(requests, 1) for name, (requests, spent, _bad) in totals.items()}
    print(f"API CPU per request over all rounds: healthz {cpu[paths[0][0]]:.2f} ms, jobs {cpu[paths[1][0]]:.2f} ms")
    ratio = statistics.median(ratios)
    print(f"ratio jobs/healthz (median of {len(ratios)} rounds: {', '.join(f'{r:.3f}' for r in ratios)}): "
          f"{ratio:.3f} (goal >= {GOAL_RATIO}): {'met' if ratio >= GOAL_RATIO else 'NOT met'}")
    if any(bad for _requests, _spent, bad in totals.values()):
        print("WARNING: non-2xx answers in a measurement; the rates above are not clean")


def main() -> int:
    args = parse_args()
    from db.migrate import upgrade_to_head
    from tests.support.services import claimed_redis_database, temporary_database

    with temporary_database() as database_url, claimed_redis_database() as redis_url:
        upgrade_to_head(database_url)
        keys = create_keys(database_url, args.tenants)
        port = free_port()
        env = {**os.environ, "SAMO_DATABASE_URL": database_url, "SAMO_REDIS_URL": redis_url,
               "SAMO_JWT_SECRET": "bench-" + os.urandom(16).hex(), "SAMO_RATE_LIMIT_TIERS": BENCH_TIER,
               "SAMO_DEFAULT_TIER": "bench", "GUNICORN_WORKERS": str(args.workers),
               "GUNICORN_THREADS": str(args.threads), "GUNICORN_WORKER_CLASS": args.worker_class,
               "GUNICORN_ACCESS_LOG": "", "PYTHONPATH": str(ROOT)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log_path = Path(tempfile.gettempdir()) / f"samo-bench-gunicorn-{port}.log"
        server = start_gunicorn(env, port, log_path)
        try:
            measure(args, f"http://127.0.0.1:{port}", keys, server.pid)
            print("API memory after the run (gunicorn master + workers):")
            print("\n".join(memory_report(server.pid)))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
