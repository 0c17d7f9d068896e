"""Live event streams on one gevent API worker while jobs complete: ``python bench/events.py``.

One gunicorn worker (scripts/gunicorn.conf.py, gevent, as deployed, ``GUNICORN_WORKERS=1``) on a
temporary PostgreSQL database and its own Redis database, everything on 127.0.0.1. This process
(gevent, raw sockets: a stream costs it a greenlet) holds ``--streams`` event streams open at
once, one per queued job, while a second process finishes those jobs at ``--rate`` per second
through the path a worker stores results by (``tasks.lifecycle.store``: the conditional UPDATE,
the commit, then ``tasks.events.jobs_finished``), with a fixed result instead of the model, so the
run stays bounded and the API's CPU is not taken by inference. It reports:

- the peak RSS of the API worker (``/proc/<pid>/status``: VmRSS sampled, VmHWM) over its RSS
  before the streams opened; goal: growth <= 100 MB;
- the delay from each job's commit (SQLAlchemy's ``after_commit`` in the finishing process; same
  host clock) to its ``done`` event reaching this process, p50 and p99; goal: p99 <= 100 ms;
- ``POST /v1/jobs`` throughput from ``--submitters`` concurrent clients with the streams open,
  as a ratio of the mean of the same measurement before the streams opened and after they
  closed (in this run); goal: >= 0.8.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import api_key, bench_services, start_api  # noqa: E402

GOAL_P99_MS = 100.0
GOAL_RSS_MB = 100.0
GOAL_RATIO = 0.8
JOB = {"type": "emotion", "input": {"text": "Grateful for a slow morning and good coffee."}}
RESULT = {"top_emotion": "gratitude", "confidence": 0.9, "probabilities": {"gratitude": 0.9, "neutral": 0.1}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="jobs finished per second")
    parser.add_argument("--submitters", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per throughput measurement")
    parser.add_argument("--finish", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def finish_jobs(rate: float) -> None:
    """The finishing process: job ids on stdin (a JSON list), ``<id> <commit time>`` lines on stdout."""
    import uuid

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from config.job_types import job_type
    from config.settings import Settings
    from db.jobs import JobOutcome, claim_jobs
    from db.models import Job
    from tasks.lifecycle import BatchReport, store
    from tasks.services import Services

    services = Services(Settings.from_env())
    committed: list[float] = []
    event.listen(Session, "after_commit", lambda _session: committed.append(time.time()))
    queue = job_type("emotion").queue_name(services.settings)
    started = time.monotonic()
    for number, job_id in enumerate(json.load(sys.stdin)):
        gevent.sleep(max(0.0, started + number / rate - time.monotonic()))
        with services.session() as session:
            claimed = claim_jobs(session, Job.id == uuid.UUID(job_id))
        committed.clear()
        store(services, [(job, JobOutcome(RESULT, "bench", "0")) for job in claimed], BatchReport(queue))
        print(job_id, committed[0] if committed else "nan", flush=True)


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def submit_rate(base: str, headers: dict, submitters: int, duration_s: float, ids: list[str] | None = None) -> float:
    """Accepted ``POST /v1/jobs`` per second over ``duration_s`` from ``submitters`` concurrent clients."""
    end = time.monotonic() + duration_s
    accepted = [0]

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < end:
            response = session.post(f"{base}/v1/jobs", json=JOB, headers=headers, timeout=60)
            if response.status_code != 202:
                raise RuntimeError(f"submission refused: {response.status_code} {response.text[:300]}")
            accepted[0] += 1
            if ids is not None:
                ids.append(response.json()["id"])

    started = time.monotonic()
    gevent.joinall([gevent.spawn(client) for _ in range(submitters)], raise_error=True)
    return accepted[0] / (time.monotonic() - started)


def create_jobs(base: str, headers: dict, count: int, submitters: int) -> list[str]:
    ids: list[str] = []
    remaining = [count]

    def client() -> None:
        session = requests.Session()
        while remaining[0] > 0:
            remaining[0] -= 1
            response = session.post(f"{base}/v1/jobs", json=JOB, headers=headers, timeout=60)
            response.raise_for_status()
            ids.append(response.json()["id"])

    gevent.joinall([gevent.spawn(client) for _ in range(submitters)], raise_error=True)
    return ids


class Stream:
    """One event stream over a raw socket: when its first event and its ``done`` arrived."""

    def __init__(self, port: int, key: str, job_id: str):
        self.job_id = job_id
        self.first_at: float | None = None
        self.done_at: float | None = None
        self.error: str | None = None
        self._request = (f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         f"Authorization: ApiKey {key}\r\nAccept: text/event-stream\r\n\r\n").encode()
        self._port = port

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self._port), timeout=300) as sock:
                sock.sendall(self._request)
                received = b""
                while self.done_at is None:
                    chunk = sock.recv(65536)
                    if not chunk:
                        self.error = "closed before done"
                        return
                    now = time.time()
                    received += chunk
                    if self.first_at is None and b"\nevent: " in received:
                        if not received.startswith(b"HTTP/1.1 200"):
                            self.error = received.split(b"\r\n", 1)[0].decode()
                            return
                        self.first_at = now
                    if b"event: done\n" in received:
                        self.done_at = now
        except OSError as error:
            self.error = f"{type(error).__name__}: {error}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    args = parse_args()
    if args.finish:
        finish_jobs(args.rate)
        return
    with bench_services() as env, ExitStack() as stack:
        env = {**env, "GUNICORN_WORKERS": "1", "GUNICORN_WORKER_CONNECTIONS": str(args.streams * 2 + 200)}
        base = start_api(stack, env)
        port = int(base.rsplit(":", 1)[1])
        master = next(p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and f"127.0.0.1:{port}"
                      in " ".join(p.info["cmdline"]) and "gunicorn" in " ".join(p.info["cmdline"]))
        [worker] = master.children()
        key = api_key(env)
        headers = {"Authorization": f"ApiKey {key}"}
        print(f"{args.streams} streams on one gevent worker (pid {worker.pid}); jobs finished at {args.rate:g}/s "
              f"through tasks.lifecycle.store with a fixed result; {args.submitters} submitters, "
              f"{args.duration:g}s per throughput measurement; {os.cpu_count()} CPUs shared by everything",
              flush=True)
        ids = create_jobs(base, headers, args.streams, args.submitters)
        before = submit_rate(base, headers, args.submitters, args.duration)
        print(f"submit without streams: {before:.1f} jobs/s", flush=True)
        baseline_kb = memory_kb(worker.pid)["VmRSS"]

        streams = [Stream(port, key, job_id) for job_id in ids]
        greenlets = [gevent.spawn(stream.run) for stream in streams]
        peak_kb = [baseline_kb]

        def sample() -> None:
            while True:
                peak_kb[0] = max(peak_kb[0], memory_kb(worker.pid)["VmRSS"])
                gevent.sleep(0.2)

        sampler = gevent.spawn(sample)
        deadline = time.monotonic() + 120
        while sum(stream.first_at is not None or stream.error is not None for stream in streams) < len(streams):
            if time.monotonic() > deadline:
                raise RuntimeError("streams not all open after 120 s")
            gevent.sleep(0.2)
        failed = [stream.error for stream in streams if stream.error]
        if failed:
            raise RuntimeError(f"{len(failed)} streams failed to open, first: {failed[0]}")
        print(f"{len(streams)} streams open; worker RSS {baseline_kb / 1024:.1f} -> "
              f"{memory_kb(worker.pid)['VmRSS'] / 1024:.1f} MB", flush=True)
        during = submit_rate(base, headers, args.submitters, args.duration)
        print(f"submit with {len(streams)} streams open: {during:.1f} jobs/s", flush=True)

        finisher = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--finish", "--rate",
                                     str(args.rate)], env=env, cwd=ROOT, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        finisher.stdin.write(json.dumps(ids))
        finisher.stdin.close()
        committed = dict(line.split() for line in finisher.stdout)
        finisher.wait()
        gevent.joinall(greenlets, timeout=60)
        sampler.kill()
        hwm_kb = memory_kb(worker.pid)["VmHWM"]
        after = submit_rate(base, headers, args.submitters, args.duration)
        print(f"submit after the streams closed: {after:.1f} jobs/s", flush=True)

    delays = [(stream.done_at - float(committed[stream.job_id])) * 1000 for stream in streams
              if stream.done_at is not None and committed.get(stream.job_id, "nan") != "nan"]
    missing = len(streams) - len(delays)
    p50, p99 = statistics.median(delays), percentile(delays, 0.99)
    growth_mb = (max(peak_kb[0], hwm_kb) - baseline_kb) / 1024
    ratio = during / statistics.mean([before, after])
    print(f"commit to done event: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(delays):.1f} ms over "
          f"{len(delays)} jobs ({missing} without a done event); goal p99 <= {GOAL_P99_MS:g} ms: "
          f"{'met' if p99 <= GOAL_P99_MS and not missing else 'NOT met'}")
    print(f"worker RSS: {baseline_kb / 1024:.1f} MB before the streams, peak {max(peak_kb[0], hwm_kb) / 1024:.1f} MB "
          f"(VmHWM {hwm_kb / 1024:.1f} MB); growth {growth_mb:.1f} MB (goal <= {GOAL_RSS_MB:g}): "
          f"{'met' if growth_mb <= GOAL_RSS_MB else 'NOT met'}")
    print(f"submit throughput with streams open / without: {ratio:.2f} (goal >= {GOAL_RATIO}): "
          f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}")


if __name__ == "__main__":
    main()
