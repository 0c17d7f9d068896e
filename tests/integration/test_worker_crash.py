"""A worker killed with SIGKILL in the middle of a job: the job still completes, exactly once."""
from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from db.models import EmotionScore, JobStatus
from tests.conftest import settings_env
from tests.support.jobs import stored_job
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import CeleryWorker, serve_app_in_thread
from tests.support.services import claimed_redis_database


@pytest.fixture(scope="module")
def isolated_stack(settings):
    """An API on its own Redis database, so the session's shared worker cannot take this job."""
    from api import create_app

    with claimed_redis_database() as redis_url:
        isolated = dataclasses.replace(settings, redis_url=redis_url)
        with serve_app_in_thread(create_app(isolated, {"TESTING": True})) as base_url:
            yield isolated, base_url


def test_sigkilled_worker_mid_job_then_restarted_completes_the_job_once(isolated_stack, make_tenant, db_session):
    settings, base_url = isolated_stack
    env = settings_env(settings)
    slow = CeleryWorker({**env, "SAMO_TEST_PREDICT_DELAY_S": "30"}, module="tests.support.slow_worker")
    slow.start()
    tenant = make_tenant()
    response = requests.post(f"{base_url}/v1/jobs", json={"type": "emotion", "input": {"text": "I'm so scared"}},
                             headers=tenant.headers, timeout=10)
    job_id = response.json()["id"]
    try:
        wait_until(lambda: stored_job(db_session, job_id).status == JobStatus.RUNNING, timeout_s=60,
                   message="job running on the slow worker")
    finally:
        slow.kill()
    assert stored_job(db_session, job_id).status == JobStatus.RUNNING

    restarted = CeleryWorker(env)
    restarted.start()
    try:
        done = wait_for_job(base_url, job_id, tenant.headers, timeout_s=settings.broker_visibility_timeout_s + 60)
        time.sleep(2)
    finally:
        restarted.stop()

    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    count = db_session.scalar(select(func.count()).select_from(EmotionScore)
                              .where(EmotionScore.job_id == uuid.UUID(job_id)))
    assert count == 28
