"""Jobs and batch chunks whose broker messages died with Redis are sent again and finish once
Redis is back, empty.

A stack of its own on a Redis of its own: jobs are accepted while no model worker runs, Redis is
killed and started again without its data, and the sweep (beat on the `maintenance` worker)
must notice the loss and send every queued job again, without waiting ``SAMO_REQUEUE_AFTER_S``
(left at its default here). How long that takes is measured by ``bench/faults.py``.
"""
from __future__ import annotations

import uuid

import requests
from sqlalchemy import select

from db.models import Batch, BatchStatus, Job, JobStatus
from db.session import session_scope
from tests.support.http import post_job
from tests.support.polling import wait_until
from tests.support.processes import CeleryWorker
from tests.support.redis_server import own_redis
from tests.support.stack import isolated_stack
from tests.support.tenants import new_tenant

JOBS = 6
SWEEP_EVERY_S = "2"


def statuses(database_url: str, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, JobStatus]:
    with session_scope(database_url) as session:
        return dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))).all())


def test_jobs_lost_with_redis_finish_after_it_returns_empty(settings, tmp_path):
    with own_redis() as server, isolated_stack(settings, {"cpu": ("cpu", "bulk")}, start_workers=False,
                                               redis_url=server.url,
                                               extra_env={"SAMO_REQUEUE_INTERVAL_S": SWEEP_EVERY_S}) as stack:
        maintenance = CeleryWorker(stack.env, queues=("maintenance",),
                                   extra_args=["--beat", "--schedule", str(tmp_path / "beat-schedule")])
        maintenance.start()
        try:
            tenant = new_tenant(stack.settings.database_url)
            job_ids = [uuid.UUID(post_job(stack.base_url, tenant.headers, f"Lost with the broker, number {n}.")["id"])
                       for n in range(JOBS)]
            accepted = requests.post(f"{stack.base_url}/v1/batches", headers=tenant.headers, timeout=60,
                                     json=[f"A batch item lost with the broker, number {n}." for n in range(JOBS)])
            assert accepted.status_code == 202, accepted.text
            batch_id = uuid.UUID(accepted.json()["id"])
            server.kill()
            server.start()
            assert server.process is not None
            stack.workers["cpu"].start()

            def all_succeeded():
                found = statuses(stack.settings.database_url, job_ids)
                with session_scope(stack.settings.database_url) as session:
                    batch = session.get(Batch, batch_id).status
                    items = set(session.scalars(select(Job.status).where(Job.batch_id == batch_id)))
                return (len(found) == JOBS and set(found.values()) == {JobStatus.SUCCEEDED}
                        and batch == BatchStatus.COMPLETED and items == {JobStatus.SUCCEEDED})

            wait_until(all_succeeded, timeout_s=180, interval_s=0.5,
                       message=f"jobs and a batch lost with Redis finished (maintenance log:\n{maintenance.log()})")
        finally:
            maintenance.stop()
