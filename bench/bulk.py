"""Bulk upload throughput end to end, against the raw model's best, in one run: ``python bench/bulk.py``.

1. The stack as deployed: gunicorn (scripts/gunicorn.conf.py) and one `bulk` worker as the
   Procfile starts it (``-Q bulk``: one process per CPU, one torch thread each), on a temporary
   PostgreSQL database and a redis-server of its own. The worker runs at the priority of this
   process (SAMO_BULK_WORKER_NICE=0), as the raw measurement does.
2. Raw: the model, loaded exactly as the worker loads it (SAMO_EMOTION_MODEL, _DEVICE, _INT8),
   classifies a sample of the texts with ``predict(texts, batch_size=B)``, length-sorted, for
   each B, in this process with every CPU's torch thread; the fastest B then classifies all N
   texts in both layouts: this one process with all threads, and one process per CPU with one
   thread each, the N texts split between them (model loading not timed). The faster layout is
   the raw throughput, and B becomes the worker's forward-pass size (SAMO_BULK_BATCH_SIZE), so
   both sides run the same configuration.
3. End to end: the N texts as one JSON array to ``POST /v1/batches``; the clock runs from the
   request to the batch's ``finished_at`` (upload, validation, insert, chunked enqueue, claims,
   cache lookups, inference, result and score writes, completion), with the CPU per text of the
   API, the worker, the database's backends and Redis over it (bench/cpu.py).
4. Raw again; the ratio is taken against the better of the two raw runs (the machine is shared).

N texts are unique GoEmotions texts (dev, then train): the result cache never answers. With
``--subjects K`` each item carries one of K subjects and an ``occurred_at`` spread over the past
year, so every stored result also adds to its subject's rollups and presence rows (what
``bench/analytics.py --bulk`` runs). Goal: end-to-end texts/s >= 0.85 x raw.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu import Figures, per_job_ms  # noqa: E402
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

GOAL = 0.85


def raw_throughput(classifier, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    classifier.predict(texts, batch_size=batch_size)
    rate = len(texts) / (time.perf_counter() - started)
    print(f"  raw, batch {batch_size}, {len(texts)} texts, 1 process x {classifier_threads()} threads: "
          f"{rate:7.1f} texts/s", flush=True)
    return rate


def _classify_share(texts: list[str], batch_size: int, processes: int, barrier, results) -> None:
    """One process of the parallel layout: torch threads as a worker of ``processes`` processes
    sets them (one each, unless SAMO_TORCH_THREADS says otherwise), its share of the texts, timed
    from the barrier."""
    from config.settings import Settings
    from workers.devices import configure_torch_threads

    configure_torch_threads(Settings.from_env().torch_threads, processes)
    classifier = load_classifier()
    classifier.predict(texts[:batch_size], batch_size=batch_size)
    barrier.wait()
    started = time.perf_counter()
    classifier.predict(texts, batch_size=batch_size)
    results.put(time.perf_counter() - started)


def raw_parallel_throughput(texts: list[str], batch_size: int, processes: int) -> float:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    children = [context.Process(target=_classify_share,
                                args=(texts[n::processes], batch_size, processes, barrier, results))
                for n in range(processes)]
    for child in children:
        child.start()
    elapsed = max(results.get(timeout=3600) for _ in children)
    for child in children:
        child.join()
    rate = len(texts) / elapsed
    print(f"  raw, batch {batch_size}, {len(texts)} texts, {processes} processes x 1 thread: {rate:7.1f} texts/s",
          flush=True)
    return rate


def raw_best(classifier, texts: list[str], batch_size: int) -> float:
    """Texts/s of the faster layout: this process with every thread, or one single-threaded process per CPU."""
    rates = [raw_throughput(classifier, texts, batch_size)]
    if (os.cpu_count() or 1) > 1:
        rates.append(raw_parallel_throughput(texts, batch_size, os.cpu_count()))
    return max(rates)


def classifier_threads() -> int:
    import torch

    return torch.get_num_threads()


def best_batch_size(classifier, sample: list[str], batch_sizes: list[int]) -> int:
    classifier.predict(sample[:256], batch_size=max(batch_sizes))
    rates = {size: raw_throughput(classifier, sample, size) for size in batch_sizes}
    return max(rates, key=rates.get)


def worker_model_seconds(port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = re.search(r'^samo_worker_inference_seconds_sum\{queue="bulk"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def wait_for_batch(base: str, headers: dict, batch_id: str, timeout_s: float, every_s: float = 2.0) -> dict:
    """Poll as an attentive client would; the end time read is the batch's own ``finished_at``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = requests.get(f"{base}/v1/batches/{batch_id}", headers=headers, timeout=30).json()
        if batch["status"] != "running":
            return batch
        time.sleep(every_s)
    raise TimeoutError(f"batch {batch_id} still running after {timeout_s}s")


def worker_environment(services: Services, batch_size: int, metrics_port: int,
                       chunk_size: int | None = None) -> dict[str, str]:
    env = {**services.env, "SAMO_BULK_BATCH_SIZE": str(batch_size), "SAMO_BULK_WORKER_NICE": "0",
           "SAMO_WORKER_METRICS_PORT": str(metrics_port)}
    return {**env, "SAMO_BULK_CHUNK_SIZE": str(chunk_size)} if chunk_size else env


def entries(texts: list[str], subjects: int) -> list:
    """The upload's items: plain texts, or with ``subjects`` > 0 texts of subjects over the past year."""
    if not subjects:
        return texts
    now = datetime.now(UTC)
    return [{"text": text, "subject": f"subject-{n % subjects:05d}",
             "occurred_at": (now - timedelta(days=365 * n / len(texts))).isoformat()} for n, text in enumerate(texts)]


def end_to_end(services: Services, api: Process, worker: Process, base: str, headers: dict,
               texts: list[str], subjects: int = 0) -> tuple[Figures, dict]:
    """The upload, timed from the request to the batch's ``finished_at``, with the CPU of every part
    from the request to the poll that saw the batch finish; the figures and the batch."""
    meter = stack_meter(services, api, worker)
    with meter:
        started_wall = datetime.now(UTC)
        started = time.perf_counter()
        response = requests.post(f"{base}/v1/batches", json=entries(texts, subjects), headers=headers,
                                 timeout=600)
        accepted_s = time.perf_counter() - started
        response.raise_for_status()
        batch = wait_for_batch(base, headers, response.json()["id"], timeout_s=3600, every_s=1.0)
    elapsed = (datetime.fromisoformat(batch["finished_at"]) - started_wall).total_seconds()
    first_item = (datetime.fromisoformat(batch["started_at"]) - started_wall).total_seconds()
    succeeded = batch["counts"]["succeeded"]
    figures = Figures(rate=succeeded / elapsed, cpu_ms=per_job_ms(meter.seconds(), succeeded))
    print(f"  upload accepted in {accepted_s:.2f}s, first chunk started at {first_item:.2f}s, "
          f"batch {batch['status']} at {elapsed:.2f}s: {batch['counts']}", flush=True)
    print(f"  end to end: {figures.line('texts')}", flush=True)
    if succeeded != len(texts):
        print(f"WARNING: {len(texts) - succeeded} items did not succeed", flush=True)
    return figures, batch


def bulk_round(root: Path, texts: list[str], batch_size: int, chunk_size: int | None = None,
               subjects: int = 0) -> Figures:
    """One upload on a fresh stack run from ``root``: what bench/compare.py measures for each tree."""
    with metered_services(root) as services, ExitStack() as stack:
        env = worker_environment(services, batch_size, free_port(), chunk_size)
        api, base = start_api_process(stack, env, root=root)
        worker = start_worker(stack, env, "bulk", "bulk", concurrency=None, root=root)
        headers = {"Authorization": f"ApiKey {api_key(env, root)}"}
        return end_to_end(services, api, worker, base, headers, texts, subjects)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="texts in the upload")
    parser.add_argument("--batch-sizes", default="32,64,128", help="raw batch sizes to try")
    parser.add_argument("--sample", type=int, default=2000, help="texts per batch-size trial")
    parser.add_argument("--chunk-size", type=int, default=None, help="SAMO_BULK_CHUNK_SIZE (default: the setting)")
    parser.add_argument("--subjects", type=int, default=0,
                        help="items carry one of this many subjects and a date in the past year (0: plain texts)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    texts = unique_texts(args.n)
    print(f"{len(texts)} unique texts, {sum(map(len, texts)) / len(texts):.0f} characters on average; "
          f"{os.cpu_count()} CPUs", flush=True)

    with metered_services(ROOT) as services, ExitStack() as stack:
        classifier = load_classifier()
        print(f"model {classifier.name} {classifier.version} on {classifier.device}; batch sizes on "
              f"{min(args.sample, len(texts))} texts:", flush=True)
        best_size = best_batch_size(classifier, texts[:args.sample], sizes)
        print("raw run 1:", flush=True)
        first = raw_best(classifier, texts, best_size)
        metrics_port = free_port()
        env = worker_environment(services, best_size, metrics_port, args.chunk_size)
        api, base = start_api_process(stack, env)
        worker = start_worker(stack, env, "bulk", "bulk", concurrency=None)
        headers = {"Authorization": f"ApiKey {api_key(env)}"}

        print(f"end to end: POST /v1/batches with {len(texts)} texts"
              f"{f' of {args.subjects} subjects' if args.subjects else ''}, worker passes of {best_size}", flush=True)
        figures, _ = end_to_end(services, api, worker, base, headers, texts, args.subjects)
        model_s = worker_model_seconds(metrics_port)
        print(f"  model time inside the worker: {model_s:.2f}s summed over its processes "
              f"({len(texts) / model_s:.1f} texts/s per process)", flush=True)

        print("raw run 2:", flush=True)
        second = raw_best(classifier, texts, best_size)
    raw = max(first, second)
    ratio = figures.rate / raw
    print(f"raw model best: {raw:.1f} texts/s (batch {best_size}, best layout of two runs); "
          f"end to end: {figures.rate:.1f} texts/s")
    print(f"ratio {ratio:.3f} (goal >= {GOAL}): {'met' if ratio >= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
