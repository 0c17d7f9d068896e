"""A job accepted while the broker is down is not lost: the requeue sweep publishes it later."""
from __future__ import annotations

import dataclasses
import time
import uuid

from db.models import Job, JobStatus
from tests.support.polling import wait_until

UNREACHABLE_BROKER = "redis://127.0.0.1:9/0"


def test_job_accepted_during_broker_outage_is_published_by_the_sweep(settings, cpu_worker, make_tenant, db_session):
    from api import create_app
    from config.celery import make_celery
    from tasks.maintenance import requeue_stale

    outage = create_app(dataclasses.replace(settings, broker_url=UNREACHABLE_BROKER), {"TESTING": True})
    tenant = make_tenant()
    started = time.monotonic()
    response = outage.test_client().post(
        "/v1/jobs", json={"type": "emotion", "input": {"text": "What a relief, it all worked out."}},
        headers=tenant.headers)
    assert response.status_code == 202
    assert time.monotonic() - started < 10
    job_id = uuid.UUID(response.get_json()["id"])
    stored = db_session.get(Job, job_id)
    assert stored.status == JobStatus.QUEUED
    assert stored.enqueued_at is None

    published = requeue_stale(dataclasses.replace(settings, requeue_unpublished_after_s=0), make_celery(settings))
    assert published >= 1

    def finished():
        db_session.expire_all()
        return db_session.get(Job, job_id).status == JobStatus.SUCCEEDED

    wait_until(finished, timeout_s=60, message="job published by the sweep and analysed")
