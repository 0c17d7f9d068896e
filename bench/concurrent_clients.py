"""Dynamic batching under concurrent single-text clients, against batches of one: ``python bench/concurrent.py``.

The stack as deployed (gunicorn with scripts/gunicorn.conf.py, one `cpu` worker as the Procfile
starts it, here with ``--concurrency 1``) on a temporary PostgreSQL database and a redis-server of
its own. 32 clients each submit one text at a time (``POST /v1/jobs`` with ``Prefer: wait``,
polling if the answer is a 202) and submit the next when it finished. Jobs finished per second
over the measured window are compared between two workers of the same count and concurrency,
started one after the other in this run: dynamic batching as configured (SAMO_CPU_BATCH_MAX_SIZE,
_MAX_WAIT_MS), then ``SAMO_CPU_BATCH_MAX_SIZE=1``. Goal: ratio >= 2.5. Each mode also prints p50
and p99 of a job's time from submission to result as its client saw it, and the CPU per finished
job of the API, the worker, the database's backends and Redis over the window (bench/cpu.py).

Then, on the idle batching worker, lone jobs one at a time: the median time from a job's
creation (its message is published right after) to its stored result (``finished_at``), beside
the model's batch-1 time on the same texts, measured in this process with the same settings
between the jobs (the machine is shared: both see the same load). Goal: within 25 ms.
Every text is a distinct GoEmotions text, so the result cache never answers.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu import Figures, window_figures  # noqa: E402
from bench.stack import (  # noqa: E402
    ROOT,
    Process,
    Services,
    api_key,
    free_port,
    load_classifier,
    metered_services,
    stack_meter,
    start_api_process,
    start_worker,
    unique_texts,
)

GOAL_RATIO = 2.5
GOAL_LATENCY_MS = 25.0
TERMINAL = {"succeeded", "failed", "canceled"}


class Texts:
    """Distinct texts handed out to the client threads."""

    def __init__(self, texts: list[str]):
        self._texts = iter(texts)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return next(self._texts)


def run_job(session: requests.Session, base: str, headers: dict, text: str) -> dict:
    response = session.post(f"{base}/v1/jobs", json={"type": "emotion", "input": {"text": text}},
                            headers={**headers, "Prefer": "wait=30"}, timeout=60)
    job = response.json()
    if response.status_code not in (200, 202):
        raise RuntimeError(f"submission failed: {response.status_code} {job}")
    while job["status"] not in TERMINAL:
        time.sleep(0.05)
        job = session.get(f"{base}/v1/jobs/{job['id']}", headers=headers, timeout=30).json()
    return job


def closed_loop(base: str, headers: dict, texts: Texts, clients: int, warmup_s: float, duration_s: float,
                meter) -> Figures:
    """``clients`` closed-loop clients; the figures of the jobs that finished between the end of the
    warm-up and the end of the window, with the CPU ``meter`` measured over that window."""
    window_start = time.monotonic() + warmup_s
    window_end = window_start + duration_s
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < window_end:
            submitted = time.monotonic()
            job = run_job(session, base, headers, texts.next())
            done = time.monotonic()
            if job["status"] != "succeeded":
                raise RuntimeError(f"job failed: {job}")
            with lock:
                spans.append((submitted, done))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window_start - time.monotonic()))
    with meter:
        time.sleep(max(0.0, window_end - time.monotonic()))
    for thread in threads:
        thread.join()
    latencies = [done - submitted for submitted, done in spans if window_start <= done < window_end]
    return window_figures(latencies, duration_s, meter.seconds())


def lone_jobs_ms(base: str, headers: dict, texts: Texts, count: int, classifier) -> list[tuple[float, float, float]]:
    """Per lone job, in ms: the model's batch-1 time on its text in this process, measured just
    before (the machine is shared: both see the same load), then the job's creation to stored
    result and creation to claim by the worker."""
    session = requests.Session()
    spans = []
    classifier.predict([texts.next()], batch_size=1)
    for _ in range(count):
        text = texts.next()
        time.sleep(0.3)
        started = time.perf_counter()
        classifier.predict([text], batch_size=1)
        model_ms = (time.perf_counter() - started) * 1000
        time.sleep(0.3)
        job = run_job(session, base, headers, text)
        created, claimed, finished = (datetime.fromisoformat(job[key]) for key in
                                      ("created_at", "started_at", "finished_at"))
        spans.append((model_ms, (finished - created).total_seconds() * 1000,
                      (claimed - created).total_seconds() * 1000))
    return spans


def histogram(port: int, name: str) -> tuple[float, float]:
    """(count, sum) of a worker histogram for the `cpu` queue."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = dict(re.findall(rf'^{name}_(count|sum)\{{queue="cpu"\}} (\S+)$', text, re.MULTILINE))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def mean_batch_size(port: int) -> str:
    count, total = histogram(port, "samo_worker_batch_size")
    return f"{total / count:.1f} texts per forward pass over {count:.0f} passes" if count else "no passes"


def measure_mode(services: Services, api: Process, base: str, headers: dict, texts: Texts, args, label: str,
                 extra_env: dict[str, str], lone_with=None, root: Path = ROOT) -> tuple[Figures, list]:
    port = free_port()
    with ExitStack() as workers:
        worker = start_worker(workers, {**services.env, **extra_env, "SAMO_WORKER_METRICS_PORT": str(port)},
                              "cpu", label, root=root)
        figures = closed_loop(base, headers, texts, args.clients, args.warmup, args.duration,
                              stack_meter(services, api, worker))
        print(f"{label}: {figures.line()} ({mean_batch_size(port)})", flush=True)
        spans = []
        if lone_with is not None and args.lone_jobs:
            before = histogram(port, "samo_worker_inference_seconds")
            spans = lone_jobs_ms(base, headers, texts, args.lone_jobs, lone_with)
            after = histogram(port, "samo_worker_inference_seconds")
            batches, seconds = after[0] - before[0], after[1] - before[1]
            print(f"lone jobs: {batches:.0f} batches, model time inside the worker {seconds * 1000 / batches:.1f} ms "
                  "on average", flush=True)
    return figures, spans


def api_threads(clients: int) -> int:
    """Every client waits on its job in an API thread: one per client over the two workers, and a few spare."""
    return clients // 2 + 8


def interactive_round(root: Path, texts: Texts, args) -> Figures:
    """One closed-loop window on a fresh stack run from ``root`` (batching as configured): what
    bench/compare.py measures for each tree."""
    with metered_services(root) as services, ExitStack() as stack:
        api, base = start_api_process(stack, services.env, threads=api_threads(args.clients), root=root)
        headers = {"Authorization": f"ApiKey {api_key(services.env, root)}"}
        figures, _ = measure_mode(services, api, base, headers, texts, args, "interactive", {}, root=root)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per mode")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window opens")
    parser.add_argument("--lone-jobs", type=int, default=30)
    args = parser.parse_args()
    pool = unique_texts(20_000)
    texts = Texts(pool)

    with metered_services() as services, ExitStack() as stack:
        classifier = load_classifier()
        api, base = start_api_process(stack, services.env, threads=api_threads(args.clients))
        headers = {"Authorization": f"ApiKey {api_key(services.env)}"}
        print(f"{args.clients} clients, {args.duration:g}s measured after {args.warmup:g}s warm-up per mode; "
              f"one cpu worker, concurrency 1; {os.cpu_count()} CPUs shared by clients, API, database and worker",
              flush=True)
        batching, spans = measure_mode(services, api, base, headers, texts, args, "dynamic batching", {},
                                       lone_with=classifier)
        single, _ = measure_mode(services, api, base, headers, texts, args, "max_batch_size=1",
                                 {"SAMO_CPU_BATCH_MAX_SIZE": "1"})
    ratio = batching.rate / single.rate
    print(f"ratio {ratio:.2f} (goal >= {GOAL_RATIO}): {'met' if ratio >= GOAL_RATIO else 'NOT met'}")
    if not spans:
        return
    totals = sorted(total for _, total, _ in spans)
    lone_median, model_median = statistics.median(totals), statistics.median(model for model, _, _ in spans)
    gap = lone_median - model_median
    print(f"lone job, creation to stored result: median {lone_median:.1f} ms over {len(spans)} jobs "
          f"(p90 {totals[int(len(totals) * 0.9)]:.1f} ms; creation to claim: median "
          f"{statistics.median(claimed for _, _, claimed in spans):.1f} ms)")
    print(f"model batch-1 time, same texts, measured between the jobs: median {model_median:.1f} ms; "
          f"difference {gap:.1f} ms (goal <= {GOAL_LATENCY_MS:g}): {'met' if gap <= GOAL_LATENCY_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
