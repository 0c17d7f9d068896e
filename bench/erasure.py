"""Erasing one subject among many, while another tenant submits: ``python bench/erasure.py [--total N]``.

1. A temporary PostgreSQL database on the test server (made and dropped like the tests' own),
   migrated to head, and a Redis database of its own (``tests/support/services``).
2. Tenant A: ``--total`` succeeded emotion jobs (input text, result, subject, ``occurred_at``
   over a year) with their 28 score rows each, written with ``COPY`` in chunks; ``--entries`` of
   them belong to the subject to erase, each with a webhook delivery row holding its payload and
   a result-cache entry with its per-job index in Redis. The rollups are built with
   ``db.rollups.rebuild`` (what ``python -m api.cli analytics rebuild`` runs).
3. The API in this process over real HTTP (werkzeug, threaded; the group-commit writer on),
   with ``--clients`` threads submitting emotion jobs for tenant B: jobs per second over
   ``--window`` seconds before the erasure, then during it.
4. The erasure in a process of its own, as the `maintenance` worker runs it
   (``db.erasures.run_erasure``, chunks of ``SAMO_ERASURE_CHUNK_SIZE``), timed there.

Printed: the erasure's time and rows touched, and tenant B's submit throughput during the
erasure as a ratio of before. Goal: under 10 s, without blocking other tenants' submissions.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.valence import LABELS  # noqa: E402

GOAL_S = 10.0
ROWS_PER_COPY = 20_000
SUBJECT = "subject-erased"
THRESHOLD = 0.5

ERASE_SCRIPT = """
import json, sys, time, uuid
import redis
from config.settings import Settings
from db.erasures import request_erasure, run_erasure
from db.session import session_scope
settings = Settings.from_env()
with session_scope(settings.database_url) as session:
    erasure, _ = request_erasure(session, uuid.UUID(sys.argv[1]), sys.argv[2], {"cli": "bench/erasure.py"})
    erasure_id = erasure.id
started = time.perf_counter()
run_erasure(settings, redis.Redis.from_url(settings.redis_url), erasure_id)
elapsed = time.perf_counter() - started
from db.models import Erasure
with session_scope(settings.database_url) as session:
    counts = session.get(Erasure, erasure_id).counts
print(json.dumps({"seconds": elapsed, "counts": counts}))
"""


def copy_chunk(cursor, tenant_id: uuid.UUID, subjects: list[str], count: int, start: datetime, erased: int,
               chance: random.Random) -> list[uuid.UUID]:
    """``count`` jobs with their scores; the first ``erased`` of them are the erased subject's (with deliveries)."""
    jobs, scores, deliveries, erased_ids = io.StringIO(), io.StringIO(), io.StringIO(), []
    year_s = 365 * 86400
    for n in range(count):
        job_id = uuid.uuid4()
        subject = SUBJECT if n < erased else chance.choice(subjects)
        occurred = (start + timedelta(seconds=chance.randrange(year_s))).isoformat()
        probabilities = [chance.random() * 0.1 for _ in LABELS]
        probabilities[chance.randrange(len(LABELS))] = 0.4 + chance.random() * 0.6
        top = LABELS[max(range(len(LABELS)), key=probabilities.__getitem__)]
        text = json.dumps({"text": f"Entry {n} of {subject}: a long day, and I am glad it is over."})
        result = json.dumps({"top_emotion": top})
        jobs.write(f"{job_id}\t{tenant_id}\temotion\tsucceeded\tcpu\t{text}\t{{}}\t{result}\t{occurred}\t"
                   f"{occurred}\t1\t{subject}\t{occurred}\n")
        for label, p in zip(LABELS, probabilities):
            scores.write(f"{job_id}\t{label}\t{tenant_id}\t{p:.6f}\t{'t' if label == top else 'f'}\t"
                         f"{'t' if p > THRESHOLD else 'f'}\t{occurred}\n")
        if subject == SUBJECT:
            erased_ids.append(job_id)
            body = json.dumps({"type": "job.succeeded", "data": {"id": str(job_id), "input": json.loads(text)}})
            deliveries.write(f"{uuid.uuid4()}\t{tenant_id}\thttps://hooks.example/in\tjob.succeeded\t"
                             f"{body.replace(chr(92), chr(92) * 2)}\t{job_id}\tsucceeded\t1\t0\t{occurred}\n")
    for buffer in (jobs, scores, deliveries):
        buffer.seek(0)
    cursor.copy_expert("COPY jobs (id, tenant_id, type, status, queue, input, options, result, created_at, "
                       "finished_at, attempts, subject, occurred_at) FROM STDIN", jobs)
    cursor.copy_expert("COPY emotion_scores (job_id, label, tenant_id, probability, is_top, above_threshold, "
                       "created_at) FROM STDIN", scores)
    cursor.copy_expert("COPY webhook_deliveries (id, tenant_id, url, event_type, body, job_id, status, attempts, "
                       "round_started_attempts, created_at) FROM STDIN", deliveries)
    return erased_ids


def seed(engine, tenant_id: uuid.UUID, total: int, entries: int, start: datetime) -> list[uuid.UUID]:
    chance = random.Random(16)
    subjects = [f"subject-{n:05d}" for n in range(max(1, (total - entries) // 100))]
    erased_ids: list[uuid.UUID] = []
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            for done in range(0, total, ROWS_PER_COPY):
                count = min(ROWS_PER_COPY, total - done)
                erased = max(0, min(count, entries - done))
                erased_ids += copy_chunk(cursor, tenant_id, subjects, count, start, erased, chance)
                connection.commit()
            for table in ("jobs", "emotion_scores", "webhook_deliveries"):
                cursor.execute(f"ANALYZE {table}")
        connection.commit()
    finally:
        connection.close()
    return erased_ids


def seed_cache(redis_url: str, tenant_id: uuid.UUID, job_ids: list[uuid.UUID]) -> None:
    """One cache entry per erased job, with the job's index, as a worker leaves them (``workers.result_cache``)."""
    import redis

    from db.result_cache_keys import job_index_key, result_key

    client = redis.Redis.from_url(redis_url)
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            key = result_key(b"bench-secret", tenant_id, "bench-model", str(job_id))
            pipe.set(key, '{"probabilities":{}}', ex=3600)
            pipe.sadd(job_index_key(job_id), key)
        pipe.execute()


class Submitter:
    """Client threads posting jobs for one tenant; counts each accepted job with its completion time."""

    def __init__(self, base_url: str, api_key: str, clients: int) -> None:
        self.url = f"{base_url}/v1/jobs"
        self.headers = {"Authorization": f"ApiKey {api_key}"}
        self.accepted: list[float] = []
        self.errors = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        self._lock = threading.Lock()

    def _run(self) -> None:
        session = requests.Session()
        body = {"type": "emotion", "input": {"text": "Another tenant's ordinary entry."}}
        while not self.stopping.is_set():
            response = session.post(self.url, json=body, headers=self.headers, timeout=30)
            with self._lock:
                if response.status_code == 202:
                    self.accepted.append(time.monotonic())
                else:
                    self.errors += 1

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def rate(self, start: float, end: float) -> float:
        with self._lock:
            return sum(start <= moment < end for moment in self.accepted) / max(end - start, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=200_000, help="jobs of tenant A (the issue's size: 1000000)")
    parser.add_argument("--entries", type=int, default=10_000, help="of which the erased subject's")
    parser.add_argument("--clients", type=int, default=4, help="threads submitting for tenant B")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of submissions measured before")
    parser.add_argument("--chunk", type=int, default=500, help="SAMO_ERASURE_CHUNK_SIZE of the erasure")
    args = parser.parse_args()

    from api import create_app
    from config.settings import Settings, parse_tiers
    from db.api_keys import create_api_key, create_tenant
    from db.migrate import upgrade_to_head
    from db.rollups import rebuild
    from db.session import get_engine, session_scope
    from tests.support.processes import serve_app_in_thread
    from tests.support.services import claimed_redis_database, temporary_database

    start = datetime(2025, 12, 1, tzinfo=UTC)
    with temporary_database() as url, claimed_redis_database() as redis_url:
        upgrade_to_head(url)
        with session_scope(url) as session:
            tenant_a = create_tenant(session, "bench-erased").id
            other = create_tenant(session, "bench-other")
            api_key = create_api_key(session, other).key
        print(f"seeding {args.total:,} jobs with 28 scores each, {args.entries:,} of them the erased subject's "
              "(with deliveries and cache entries), with COPY ...", flush=True)
        started = time.perf_counter()
        erased_ids = seed(get_engine(url), tenant_a, args.total, args.entries, start)
        seed_cache(redis_url, tenant_a, erased_ids)
        with session_scope(url) as session:
            rollups = rebuild(session, tenant_a)
        with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
        print(f"  seeded in {time.perf_counter() - started:.1f}s ({rollups:,} rollup rows)", flush=True)

        settings = dataclasses.replace(Settings(), database_url=url, redis_url=redis_url, jwt_secret="bench-jwt",
                                       rate_limit_tiers=parse_tiers("free=100000000/60/100000000"))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SAMO_DATABASE_URL": url, "SAMO_REDIS_URL": redis_url,
               "SAMO_ERASURE_CHUNK_SIZE": str(args.chunk)}
        app = create_app(settings)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        with serve_app_in_thread(app) as base_url:
            submitter = Submitter(base_url, api_key, args.clients)
            submitter.start()
            time.sleep(1.0)
            before_start = time.monotonic()
            time.sleep(args.window)
            before_end = time.monotonic()
            eraser = subprocess.run([sys.executable, "-c", ERASE_SCRIPT, str(tenant_a), SUBJECT], env=env, cwd=ROOT,
                                    capture_output=True, text=True, timeout=1800)
            during_end = time.monotonic()
            submitter.stop()
        if eraser.returncode != 0:
            raise SystemExit(eraser.stderr[-3000:])
        outcome = json.loads(eraser.stdout.strip().splitlines()[-1])
        counts = outcome["counts"]
        rows = sum(number for name, number in counts.items() if name != "rollup_entries")
        before = submitter.rate(before_start, before_end)
        during = submitter.rate(before_end, during_end)
        print(f"erasure of {counts['jobs']:,} entries among {args.total:,}: {outcome['seconds']:.2f} s "
              f"(goal < {GOAL_S:g} s: {'met' if outcome['seconds'] < GOAL_S else 'NOT met'}); rows touched "
              f"{rows:,} ({', '.join(f'{name} {number:,}' for name, number in counts.items())})", flush=True)
        print(f"tenant B submits: {before:.1f} jobs/s before, {during:.1f} jobs/s during the erasure "
              f"(process start included): ratio {during / before if before else float('nan'):.2f}; "
              f"{submitter.errors} errors", flush=True)


if __name__ == "__main__":
    main()
