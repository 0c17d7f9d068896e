"""Scaling out and tracing overhead, in one run: ``python bench/scale.py [--n 20000] [--skip-scaling]``.

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
   round after round: off; on with every submission traced (sample ratio 1.0), first with the
   SQL and Redis spans of the API's requests too (SAMO_OTEL_CLIENT_SPANS=all), then without them
   (the default); and on with the sampler a production deployment would use (parent-based, 1 in
   10: SAMO_OTEL_SAMPLE_RATIO=0.1), and with none sampled (0.0: what a sampled-out submission
   costs, which should be next to nothing). Overhead is the best rate of a mode against the best "off"
   rate (goal: <= 5 %), and the API's CPU per submission (gunicorn's processes, from /proc)
   against "off"'s, the steadier figure on a loaded machine. The receiver runs in a process of its
   own at nice 19 (bench/otlp_receiver.py); its CPU per submission is reported apart.
"""
from __future__ import annotations

import argparse
import os
import subprocess
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

TRACING_GOAL = 0.05
#: The tracing runs of one round, in order: name -> environment.
TRACING_MODES = {
    "off": {"SAMO_OTEL_ENABLED": "false"},
    "on, all, SQL+Redis spans": {"SAMO_OTEL_ENABLED": "true", "SAMO_OTEL_SAMPLE_RATIO": "1.0",
                                 "SAMO_OTEL_CLIENT_SPANS": "all"},
    "on, all": {"SAMO_OTEL_ENABLED": "true", "SAMO_OTEL_SAMPLE_RATIO": "1.0"},
    "on, 1 in 10": {"SAMO_OTEL_ENABLED": "true", "SAMO_OTEL_SAMPLE_RATIO": "0.1"},
    "on, none sampled": {"SAMO_OTEL_ENABLED": "true", "SAMO_OTEL_SAMPLE_RATIO": "0.0"},
}


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


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children, the ones that exited included."""
    process = psutil.Process(pid)
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue
        total += child_times.user + child_times.system
    return total


def gunicorn_master() -> int:
    """The pid of the API this benchmark started (bench.stack.start_api runs one at a time)."""
    (master,) = [child for child in psutil.Process().children() if "gunicorn" in " ".join(child.cmdline())]
    return master.pid


class Receiver:
    """bench/otlp_receiver.py at nice 19: its endpoint, the spans it has, the CPU it has used."""

    def __init__(self, stack: ExitStack) -> None:
        command = ["nice", "-n", "19", sys.executable, str(Path(__file__).parent / "otlp_receiver.py")]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        stack.callback(self.process.kill)
        self.endpoint = self.process.stdout.readline().strip()

    def spans(self) -> int:
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


def tracing_runs(requests_total: int, clients: int, rounds: int) -> dict[str, list[dict]]:
    """Each mode's runs: submissions/s, the API's and the receiver's CPU µs and spans per submission."""
    runs: dict[str, list[dict]] = {mode: [] for mode in TRACING_MODES}
    with bench_services() as env, ExitStack() as receiving:
        receiver = Receiver(receiving)
        headers = {"Authorization": f"ApiKey {api_key(env)}"}
        for _ in range(rounds):
            for mode, mode_env in TRACING_MODES.items():
                traced = {**env, **mode_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                          "OTEL_SERVICE_NAME": "samo-api-bench"}
                with ExitStack() as stack:
                    base = start_api(stack, traced)
                    api = gunicorn_master()
                    submission_rate(base, headers, max(clients * 10, requests_total // 10), clients)  # warm-up
                    time.sleep(1)  # the warm-up's spans leave the exporter's queue
                    before = (cpu_seconds(api), receiver.cpu_seconds(), receiver.spans())
                    rate = submission_rate(base, headers, requests_total, clients)
                    time.sleep(1)
                    after = (cpu_seconds(api), receiver.cpu_seconds(), receiver.spans())
                run = {"rate": rate, "api_us": (after[0] - before[0]) / requests_total * 1e6,
                       "receiver_us": (after[1] - before[1]) / requests_total * 1e6,
                       "spans": (after[2] - before[2]) / requests_total}
                runs[mode].append(run)
                print(f"  {mode:26s} {rate:7.1f} submissions/s, API CPU {run['api_us']:6.0f} µs/submission, "
                      f"receiver CPU {run['receiver_us']:5.0f} µs/submission, {run['spans']:.2f} spans/submission",
                      flush=True)
    return runs


def report_tracing(runs: dict[str, list[dict]]) -> None:
    best_off = max(run["rate"] for run in runs["off"])
    least_off_cpu = min(run["api_us"] for run in runs["off"])
    for mode in list(TRACING_MODES)[1:]:
        overhead = 1 - max(run["rate"] for run in runs[mode]) / best_off
        cpu_overhead = min(run["api_us"] for run in runs[mode]) / least_off_cpu - 1
        receiver = min(run["receiver_us"] for run in runs[mode])
        print(f"  {mode:26s} overhead on submissions/s {overhead * 100:5.1f} % "
              f"({'met' if overhead <= TRACING_GOAL else 'NOT met'}, goal <= {TRACING_GOAL * 100:.0f} %), "
              f"on the API's CPU per submission {cpu_overhead * 100:5.1f} %; "
              f"receiver {receiver:.0f} µs/submission apart",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="texts in the bulk load")
    parser.add_argument("--processes", default="1,2,3", help="worker process counts to run")
    parser.add_argument("--submissions", type=int, default=2000, help="submissions per tracing run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the tracing runs")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the tracing modes")
    parser.add_argument("--skip-scaling", action="store_true", help="run only the tracing part")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    if not args.skip_scaling:
        scaling(unique_texts(args.n), args.processes)

    print(f"tracing overhead ({args.submissions} submissions, {args.clients} clients, {args.rounds} rounds):",
          flush=True)
    report_tracing(tracing_runs(args.submissions, args.clients, args.rounds))
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def scaling(texts: list[str], processes_list: str) -> None:
    print(f"scaling (bulk load of {len(texts)} unique texts, one torch thread per worker process):", flush=True)
    rates = {}
    for processes in (int(p) for p in processes_list.split(",")):
        rate, peak, counts = bulk_run(texts, processes)
        rates[processes] = rate
        print(f"  {processes} process(es): {rate:7.1f} texts/s, ratio to one "
              f"{rate / rates[min(rates)]:.2f}, worker peak RSS {peak / 2**20:.0f} MiB "
              f"({peak / 2**20 / (processes + 1):.0f} MiB per process incl. the main one), {counts}", flush=True)
    best = max(rates, key=rates.get)
    print(f"  highest throughput at {best} process(es) on {os.cpu_count()} CPUs", flush=True)


if __name__ == "__main__":
    main()
