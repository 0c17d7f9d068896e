"""Which path ``POST /v1/jobs`` takes with ``SAMO_GROUP_COMMIT`` on and off, against
the session's database and real Redis (no worker)."""
from __future__ import annotations

import dataclasses
import uuid

import pytest

from db.models import Job

JOB = {"type": "emotion", "input": {"text": "What a lovely surprise."}}


def app_on_the_gpu_queue(settings, group_commit: bool):
    """Model jobs routed to `gpu`, which no worker of these tests consumes (a `cpu` one may run,
    tests/api/test_health.py), so a published message stays on the broker's list to be seen."""
    from api import create_app

    return create_app(dataclasses.replace(settings, gpu_workers_enabled=True, group_commit=group_commit),
                      {"TESTING": True})


@pytest.fixture(scope="module")
def plain_gpu_app(settings):
    return app_on_the_gpu_queue(settings, group_commit=False)


@pytest.fixture(scope="module")
def group_commit_gpu_app(settings):
    return app_on_the_gpu_queue(settings, group_commit=True)


def published(redis, queue: str, job_id: str) -> bool:
    """Whether a message on the broker's list for ``queue`` carries the job (in its ``argsrepr`` header)."""
    return any(job_id in message for message in redis.lrange(queue, 0, -1))


def stored_and_published(client, tenant, db_session, redis) -> None:
    """Two submissions: a new tenant's first is counted exactly, under a lock held in the request's
    transaction; the second is admitted on the in-flight estimate, where the paths part."""
    for _ in range(2):
        submitted_and_published(client, tenant, db_session, redis)


def submitted_and_published(client, tenant, db_session, redis) -> None:
    response = client.post("/v1/jobs", json=JOB, headers=tenant.headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["id"]
    job = db_session.get(Job, uuid.UUID(job_id))
    assert job is not None and job.enqueued_at is not None
    assert published(redis, "gpu", job_id)


def test_without_group_commit_the_request_stores_and_publishes_its_job(plain_gpu_app, make_tenant, db_session,
                                                                       redis):
    stored_and_published(plain_gpu_app.test_client(), make_tenant(), db_session, redis)
    assert "samo_job_writer" not in plain_gpu_app.extensions
    assert plain_gpu_app.extensions["samo_ratelimit"].hits is None  # rate-limit hits made one per request


def test_with_group_commit_the_process_writer_stores_and_publishes_the_job(group_commit_gpu_app, make_tenant,
                                                                            db_session, redis):
    stored_and_published(group_commit_gpu_app.test_client(), make_tenant(), db_session, redis)
    assert "samo_job_writer" in group_commit_gpu_app.extensions
    assert group_commit_gpu_app.extensions["samo_ratelimit"].hits is not None
