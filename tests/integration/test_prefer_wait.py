"""`Prefer: wait=N` on `POST /v1/jobs`: the result in one round trip, or the usual 202 in time."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import requests
from sqlalchemy import event, select, update

from api.fastpath.waiting import requested_wait_s
from db.models import Job, JobStatus, utcnow
from db.session import get_engine, session_scope
from tests.support.polling import wait_until

TEXT_JOB = {"type": "emotion", "input": {"text": "Thank you so much, this made my day!"}}


@pytest.mark.parametrize(("header", "seconds"), [
    ("wait=5", 5), ("respond-async, wait=10", 10), ("wait=600", 60), ('Wait="7"', 7), ("wait=0", 0),
    ("handling=lenient", None), ("wait=soon", None), ("", None), (None, None),
])
def test_the_prefer_header_is_read_as_rfc_7240_says(header, seconds):
    assert requested_wait_s(header) == seconds


def test_a_short_job_answers_200_with_its_result_in_one_round_trip(live_server, cpu_worker, make_tenant):
    tenant = make_tenant()
    started = time.monotonic()
    response = requests.post(f"{live_server}/v1/jobs", json=TEXT_JOB,
                             headers={**tenant.headers, "Prefer": "wait=30"}, timeout=40)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "succeeded" and job["result"]["top_emotion"] in job["result"]["probabilities"]
    assert response.headers["Preference-Applied"] == "wait=30"
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert elapsed < 30


@pytest.fixture(scope="module")
def unserved_client(settings):
    """Jobs go to the `gpu` queue, which no test worker consumes: they cannot finish by themselves."""
    from api import create_app

    return create_app(dataclasses.replace(settings, gpu_workers_enabled=True), {"TESTING": True}).test_client()


def test_a_job_that_takes_longer_answers_202_when_the_wait_is_over(unserved_client, make_tenant):
    tenant = make_tenant()
    started = time.monotonic()
    response = unserved_client.post("/v1/jobs", json=TEXT_JOB, headers={**tenant.headers, "Prefer": "wait=1"})
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"
    assert response.headers["Preference-Applied"] == "wait=1"
    assert 1.0 <= elapsed < 3.0


def finish_the_tenants_job_soon(settings, tenant_id, delay_s=0.3) -> threading.Thread:
    """Play the worker: store a result for the tenant's job, then announce it as workers do."""
    from tasks.events import job_finished
    from tasks.services import Services

    def run():
        def pending_job():
            with session_scope(settings.database_url) as session:
                return session.scalar(select(Job.id).where(Job.tenant_id == tenant_id))
        job_id = wait_until(pending_job, timeout_s=10, message="job stored")
        time.sleep(delay_s)
        with session_scope(settings.database_url) as session:
            session.execute(update(Job).where(Job.id == job_id).values(
                status=JobStatus.SUCCEEDED, result={"top_emotion": "joy"}, finished_at=utcnow()))
        job_finished(Services(settings), job_id, "succeeded")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_wait_ends_on_the_completion_notification_and_is_capped_at_60s(unserved_client, settings, make_tenant):
    tenant = make_tenant()
    finisher = finish_the_tenants_job_soon(settings, tenant.tenant_id)
    started = time.monotonic()
    response = unserved_client.post("/v1/jobs", json=TEXT_JOB, headers={**tenant.headers, "Prefer": "wait=600"})
    elapsed = time.monotonic() - started
    finisher.join(timeout=10)
    assert response.status_code == 200
    assert response.get_json()["result"] == {"top_emotion": "joy"}
    assert response.headers["Preference-Applied"] == "wait=60"
    assert elapsed < 5


def test_a_cancel_ends_the_wait_at_once(unserved_client, settings, make_tenant):
    tenant = make_tenant()

    def cancel_soon():
        def pending_job():
            with session_scope(settings.database_url) as session:
                return session.scalar(select(Job.id).where(Job.tenant_id == tenant.tenant_id))
        job_id = wait_until(pending_job, timeout_s=10, message="job stored")
        time.sleep(0.3)
        assert unserved_client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers).status_code == 200

    canceler = threading.Thread(target=cancel_soon, daemon=True)
    canceler.start()
    started = time.monotonic()
    response = unserved_client.post("/v1/jobs", json=TEXT_JOB, headers={**tenant.headers, "Prefer": "wait=30"})
    elapsed = time.monotonic() - started
    canceler.join(timeout=10)
    assert response.status_code == 200 and response.get_json()["status"] == "canceled"
    assert elapsed < 5


def test_waiting_does_not_poll_the_database(unserved_client, settings, make_tenant):
    tenant = make_tenant()
    job_reads = []

    def count_job_reads(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM jobs" in statement:
            job_reads.append(statement)

    engine = get_engine(settings.database_url)
    event.listen(engine, "before_cursor_execute", count_job_reads)
    try:
        response = unserved_client.post("/v1/jobs", json=TEXT_JOB, headers={**tenant.headers, "Prefer": "wait=3"})
    finally:
        event.remove(engine, "before_cursor_execute", count_job_reads)
    assert response.status_code == 202
    # The in-flight limit check, one read after subscribing, one after the wait: not one per tick.
    assert len(job_reads) <= 4, job_reads


def test_waiting_requests_share_their_process_subscription(unserved_client, make_tenant, redis):
    def subscribers() -> int:
        return sum(1 for client in redis.client_list()
                   if int(client.get("sub", 0)) > 0 or int(client.get("psub", 0)) > 0)

    tenant = make_tenant()
    before = subscribers()
    answers = []
    waiting = [threading.Thread(target=lambda: answers.append(unserved_client.post(
        "/v1/jobs", json=TEXT_JOB, headers={**tenant.headers, "Prefer": "wait=2"}).status_code)) for _ in range(4)]
    for thread in waiting:
        thread.start()
    time.sleep(1.0)
    during = subscribers()
    for thread in waiting:
        thread.join(timeout=10)
    assert answers == [202] * 4
    assert during <= before + 1  # the app's one listener, whether or not it was started before
