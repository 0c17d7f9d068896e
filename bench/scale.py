"""Scaling out and tracing overhead, in one run: ``python bench/scale.py [--n 20000]``.

1. Scaling: the same bulk load (N unique GoEmotions texts as one ``POST /v1/batches``) on the
   stack as deployed (gunicorn, scripts/gunicorn.conf.py; a Celery worker as the Procfile runs
   it on the bulk-load queue), with 1, 2 and 3 worker processes, each pinned to one torch thread
   (SAMO_TORCH_THREADS=1), one model copy each. Each run gets a fresh database and Redis
   database, so the result cache never answers. The clock runs from the upload to the batch's
   ``finished_at``; throughput is printed as a ratio of the one-process run, with the workers'
   peak resident memory (the numbers the Kubernetes manifests size their requests from). The
   curve flattens where the processes outnumber the machine's cores.
2. Tracing: job submissions (``POST /v1/jobs``, C concurrent clients, no worker needed) against
   the API with tracing off and on (SAMO_OTEL_ENABLED, OTLP to a local receiver), alternated
   off, on, off, on; overhead is the best "on" rate against the best "off" rate. Goal: <= 5 %.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bulk import wait_for_batch  # noqa: E402
from bench.stack import api_key, bench_services, start_api, start_worker, unique_texts  # noqa: E402
from tests.support.otlp import otlp_receiver  # noqa: E402

TRACING_GOAL = 0.05


class PeakMemory:
    """The peak summed RSS of a process and its children, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopping.wait(0.2):
            try:
                processes = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in processes))
            except psutil.Error:
                return

    def stop(self) -> int:
        self.stopping.set()
        self.thread.join(timeout=2)
        return self.peak


def bulk_run(texts: list[str], processes: int) -> tuple[float, int, dict]:
    """(texts per second, peak worker RSS in bytes, the batch's counts) with ``processes`` worker processes."""
    with bench_services() as env, ExitStack() as stack:
        env = {**env, "SAMO_TORCH_THREADS": "1", "SAMO_BULK_WORKER_NICE": "0"}
        base = start_api(stack, env)
        worker = start_worker(stack, env, "bulk", f"scale{processes}", concurrency=processes)
        memory = PeakMemory(worker.process.pid)
        headers = {"Authorization": f"ApiKey {api_key(env)}"}
        started = datetime.now(UTC)
        response = requests.post(f"{base}/v1/batches", json=texts, headers=headers, timeout=600)
        response.raise_for_status()
        batch = wait_for_batch(base, headers, response.json()["id"], timeout_s=7200, every_s=1.0)
        elapsed = (datetime.fromisoformat(batch["finished_at"]) - started).total_seconds()
        return batch["counts"]["succeeded"] / elapsed, memory.stop(), batch["counts"]


def submission_rate(base: str, headers: dict, requests_total: int, clients: int) -> float:
    body = {"type": "emotion", "input": {"text": "A steady stream of small, happy submissions."}}

    def client(count: int) -> None:
        with requests.Session() as session:
            for _ in range(count):
                session.post(f"{base}/v1/jobs", json=body, headers=headers, timeout=30).raise_for_status()

    share = requests_total // clients
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [share] * clients))
    return share * clients / (time.perf_counter() - started)


def tracing_rates(requests_total: int, clients: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"off": [], "on": []}
    with bench_services() as env, otlp_receiver() as (endpoint, spans):
        key = api_key(env)
        headers = {"Authorization": f"ApiKey {key}"}
        for mode in ("off", "on", "off", "on"):
            traced = {**env, "SAMO_OTEL_ENABLED": "true" if mode == "on" else "false",
                      "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "samo-api-bench"}
            with ExitStack() as stack:
                base = start_api(stack, traced)
                submission_rate(base, headers, max(clients * 10, requests_total // 10), clients)  # warm-up
                rates[mode].append(submission_rate(base, headers, requests_total, clients))
            print(f"  tracing {mode}: {rates[mode][-1]:7.1f} submissions/s", flush=True)
        print(f"  spans received with tracing on: {len(spans.snapshot())}", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="texts in the bulk load")
    parser.add_argument("--processes", default="1,2,3", help="worker process counts to run")
    parser.add_argument("--submissions", type=int, default=2000, help="submissions per tracing run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the tracing runs")
    args = parser.parse_args()
    texts = unique_texts(args.n)
    load = os.getloadavg()
    print(f"{len(texts)} unique texts; {os.cpu_count()} CPUs; load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)

    print("scaling (bulk load, one torch thread per worker process):", flush=True)
    rates = {}
    for processes in (int(p) for p in args.processes.split(",")):
        rate, peak, counts = bulk_run(texts, processes)
        rates[processes] = rate
        print(f"  {processes} process(es): {rate:7.1f} texts/s, ratio to one "
              f"{rate / rates[min(rates)]:.2f}, worker peak RSS {peak / 2**20:.0f} MiB "
              f"({peak / 2**20 / (processes + 1):.0f} MiB per process incl. the main one), {counts}", flush=True)
    best = max(rates, key=rates.get)
    print(f"  highest throughput at {best} process(es) on {os.cpu_count()} CPUs", flush=True)

    print(f"tracing overhead ({args.submissions} submissions, {args.clients} clients):", flush=True)
    traced = tracing_rates(args.submissions, args.clients)
    overhead = 1 - max(traced["on"]) / max(traced["off"])
    print(f"  overhead {overhead * 100:.1f} % (best on against best off; goal <= {TRACING_GOAL * 100:.0f} %): "
          f"{'met' if overhead <= TRACING_GOAL else 'NOT met'}")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
