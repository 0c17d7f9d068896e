"""A rolling restart under load: API processes replaced one by one, a worker SIGTERMed mid-batch.

Real processes throughout: gunicorn as deployed (scripts/gunicorn.conf.py, two gevent workers),
Celery workers with the real model, PostgreSQL and Redis. Clients submit steadily, some with
`Prefer: wait`; meanwhile each gunicorn worker in turn gets SIGTERM (the master starts its
replacement, the old one drains), then the master gets HUP (gunicorn replaces them all), and the
model worker gets SIGTERM while a batch runs (Celery's warm shutdown), a new one taking over as
a Kubernetes rollout would. Every request must succeed and every accepted job succeed once.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests
from sqlalchemy import func, select

from db.models import EmotionScore, Job, JobStatus
from tests.conftest import settings_env
from tests.support.gunicorn import GunicornServer
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.processes import CeleryWorker
from tests.support.services import claimed_redis_database
from tests.support.tenants import new_tenant

CLIENTS = 3
REQUEST_INTERVAL_S = 0.1
#: A model worker's grace period in this test (Kubernetes: terminationGracePeriodSeconds).
WORKER_GRACE_S = 30
#: Every model pass of the first worker is slowed down by this, so the SIGTERM lands mid-batch.
SLOW_PASS_S = "1.5"


class SteadyLoad:
    """``CLIENTS`` threads submitting until stopped, each as its own tenant, a new connection per request."""

    def __init__(self, base_url: str, tenants):
        self.base_url = base_url
        self.tenants = tenants
        self.stopping = threading.Event()
        self.statuses: Counter = Counter()
        self.failures: list[str] = []
        self.accepted: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def client(self, index: int) -> None:
        tenant = self.tenants[index]
        sent = 0
        while not self.stopping.is_set():
            sent += 1
            headers = {**tenant.headers, "Connection": "close"}
            if sent % 4 == 0:
                headers["Prefer"] = "wait=20"
            body = {"type": "emotion", "input": {"text": f"client {index} request {sent}: what a relief it is"}}
            try:
                response = requests.post(f"{self.base_url}/v1/jobs", json=body, headers=headers, timeout=60)
            except requests.RequestException as error:
                with self.lock:
                    self.failures.append(f"{type(error).__name__}: {error}")
                continue
            with self.lock:
                self.statuses[response.status_code] += 1
                if response.status_code in (200, 202):
                    self.accepted.append(response.json()["id"])
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
            self.stopping.wait(REQUEST_INTERVAL_S)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=90)


def running_jobs(db_session) -> int:
    db_session.rollback()
    return db_session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING))


def tenant_jobs(db_session, tenant) -> int:
    db_session.rollback()
    return db_session.scalar(select(func.count()).select_from(Job).where(Job.tenant_id == tenant.tenant_id))


def test_rolling_restart_under_load_fails_no_request_and_runs_every_job_once(settings, db_session, tmp_path):
    with claimed_redis_database() as redis_url:
        isolated = dataclasses.replace(settings, redis_url=redis_url)
        env = settings_env(isolated)
        ready_file = tmp_path / "worker-ready"
        api = GunicornServer(env, free_port(), workers=2)
        first = CeleryWorker({**env, "SAMO_TEST_PREDICT_DELAY_S": SLOW_PASS_S,
                              "SAMO_WORKER_READY_FILE": str(ready_file)}, module="tests.support.slow_worker")
        second = CeleryWorker({**env, "SAMO_WORKER_READY_FILE": str(tmp_path / "second-ready")})
        tenants = [new_tenant(isolated.database_url) for _ in range(CLIENTS)]
        try:
            api.start()
            first.start()
            wait_until(ready_file.exists, timeout_s=120, message="first worker's models loaded")
            with SteadyLoad(api.base_url, tenants) as load:
                time.sleep(2)
                for pid in api.wait_for_workers(30):
                    os.kill(pid, signal.SIGTERM)
                    api.wait_for_workers(60, replacing=frozenset({pid}))
                    time.sleep(1)
                before_hup = frozenset(api.worker_pids())
                os.kill(api.process.pid, signal.SIGHUP)
                api.wait_for_workers(60, replacing=before_hup)

                wait_until(lambda: running_jobs(db_session) > 0, timeout_s=60, interval_s=0.02,
                           message="a batch running on the first worker")
                # As Kubernetes does: to the container's main process only, not its pool processes.
                first.process.send_signal(signal.SIGTERM)
                second.start()
                first.process.wait(timeout=WORKER_GRACE_S)
                time.sleep(3)
            accepted = set(load.accepted)
            print(f"\nrollout: requests {sum(load.statuses.values()) + len(load.failures)}, "
                  f"by status {dict(sorted(load.statuses.items()))}, failed {len(load.failures)}, "
                  f"accepted jobs {len(accepted)}")
            assert load.failures == [], load.failures[:5]
            assert first.process.returncode == 0, first.log()
            assert not ready_file.exists(), "a stopped worker still looks ready"

            ids = [uuid.UUID(job_id) for job_id in accepted]

            def all_finished():
                db_session.rollback()
                return db_session.scalar(select(func.count()).select_from(Job).where(
                    Job.id.in_(ids), Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED]))) == len(ids)

            wait_until(all_finished, timeout_s=isolated.broker_visibility_timeout_s + 120, interval_s=0.5,
                       message="every accepted job finished")
        finally:
            second.stop()
            first.stop()
            api.stop()

    jobs = db_session.execute(select(Job.id, Job.status, Job.attempts).where(Job.id.in_(ids))).all()
    stored = Counter(dict(db_session.execute(
        select(EmotionScore.job_id, func.count()).where(EmotionScore.job_id.in_(ids)).group_by(EmotionScore.job_id)
    ).all()))
    tenant_jobs = db_session.scalar(select(func.count()).select_from(Job).where(
        Job.tenant_id.in_([t.tenant_id for t in tenants])))
    statuses = Counter(status.value for _id, status, _attempts in jobs)
    attempts = Counter(attempt for _id, _status, attempt in jobs)
    print(f"rollout: jobs by status {dict(statuses)}, by attempts {dict(attempts)}, stored for the tenants "
          f"{tenant_jobs}, score rows per job {set(stored.values())}")
    assert statuses == {"succeeded": len(ids)}
    assert tenant_jobs == len(ids), "a job was stored twice or a stored job was never acknowledged"
    assert set(stored.values()) == {28} and len(stored) == len(ids), "scores missing or stored twice"
    # Warm shutdown: the batch the SIGTERM interrupted was finished, the buffered messages handed back
    # unclaimed, so no job was claimed twice.
    assert attempts == {1: len(ids)}
    assert "Warm shutdown" in Path(first.log_path).read_text()


def test_a_stopping_api_process_answers_its_waiting_requests_within_the_grace_period(settings, make_tenant,
                                                                                     db_session):
    """No worker: the job never finishes. A `Prefer: wait=60` caller still gets its 202 when the API
    process is told to stop, rather than a connection cut off at the end of the grace period."""
    with claimed_redis_database() as redis_url:
        isolated = dataclasses.replace(settings, redis_url=redis_url)
        api = GunicornServer({**settings_env(isolated), "GUNICORN_GRACEFUL_TIMEOUT": "5"}, free_port(), workers=1)
        tenant = make_tenant()
        answers: list = []

        def wait_for_job():
            try:
                answers.append(requests.post(
                    f"{api.base_url}/v1/jobs", json={"type": "emotion", "input": {"text": "a long wait"}},
                    headers={**tenant.headers, "Prefer": "wait=60"}, timeout=90))
            except requests.RequestException as error:
                answers.append(error)

        try:
            api.start()
            (pid,) = api.wait_for_workers(30)
            caller = threading.Thread(target=wait_for_job)
            caller.start()
            wait_until(lambda: tenant_jobs(db_session, tenant) == 1, timeout_s=30, message="the job stored")
            time.sleep(1)  # from storing the job to waiting on it
            os.kill(pid, signal.SIGTERM)
            caller.join(timeout=60)
        finally:
            api.stop()
    (answer,) = answers
    assert isinstance(answer, requests.Response), answer
    assert answer.status_code == 202 and answer.headers["Preference-Applied"] == "wait=60"
    assert answer.json()["status"] == "queued"
    assert "Worker graceful timeout" not in api.log()
