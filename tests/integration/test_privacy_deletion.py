"""Deleting a job or a batch and erasing a subject, with a real model worker and a real maintenance worker.

After each, a sweep of every table, the media directory and the Redis database
(``tests.support.traces``) finds no trace of the sentinel text, while another subject's data is
untouched and the rollups hold exactly the jobs left.
"""
from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select

from db.models import TENANT_SERIES, AuditEvent, EmotionScore, Job, WebhookDelivery, emotion_rollups
from db.result_cache_keys import job_index_key, tenant_prefix
from tests.conftest import settings_env
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import CeleryWorker, serve_app_in_thread
from tests.support.scored_entries import Entry, leaning, store_entries
from tests.support.traces import places_holding

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
def api_url(settings):
    """The API over HTTP, accepting webhooks to localhost (they are stored, never sent: no webhooks worker)."""
    from api import create_app

    allowed = dataclasses.replace(settings, webhook_allowed_destinations=("127.0.0.1",))
    with serve_app_in_thread(create_app(allowed, {"TESTING": True})) as base_url:
        yield base_url


def sentinel() -> str:
    return f"My sentinel diary line {uuid.uuid4().hex} about feeling hopeful."


def submit(api_url, tenant, text, subject, **extra) -> str:
    body = {"type": "emotion", "input": {"text": text}, "subject": subject,
            "webhook": {"url": HOOK, "events": ["job.succeeded"]}, **extra}
    response = requests.post(f"{api_url}/v1/jobs", json=body, headers=tenant.headers, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def tenant_series_entries(session, tenant_id) -> int:
    session.expire_all()
    return session.scalar(select(func.coalesce(func.sum(emotion_rollups.c.entries), 0))
                          .where(emotion_rollups.c.tenant_id == tenant_id,
                                 emotion_rollups.c.subject == TENANT_SERIES))


def subject_series_entries(session, tenant_id, subject) -> int:
    return session.scalar(select(func.coalesce(func.sum(emotion_rollups.c.entries), 0))
                          .where(emotion_rollups.c.tenant_id == tenant_id, emotion_rollups.c.subject == subject))


def cache_keys(redis, tenant_id) -> list[str]:
    return list(redis.scan_iter(match=tenant_prefix(tenant_id) + "*"))


def test_a_deleted_job_leaves_no_trace_and_answers_404_for_ever(api_url, cpu_worker, make_tenant, settings,
                                                                redis, db_session):
    tenant = make_tenant()
    text, other_text = sentinel(), sentinel()
    job_id = submit(api_url, tenant, text, "alice")
    other_id = submit(api_url, tenant, other_text, "bob")
    for each in (job_id, other_id):
        assert wait_for_job(api_url, each, tenant.headers)["status"] == "succeeded"
    wait_until(lambda: db_session.scalar(select(func.count()).select_from(WebhookDelivery)
                                         .where(WebhookDelivery.job_id == uuid.UUID(job_id))),
               message="the job's delivery stored")
    assert redis.exists(job_index_key(job_id)) and cache_keys(redis, tenant.tenant_id)
    found = places_holding(text, settings, redis)
    assert "table jobs.input" in found and "table webhook_deliveries.body" in found
    assert tenant_series_entries(db_session, tenant.tenant_id) == 2

    response = requests.delete(f"{api_url}/v1/jobs/{job_id}", headers=tenant.headers, timeout=10)
    assert response.status_code == 204 and response.content == b""

    assert places_holding(text, settings, redis) == []
    assert not redis.exists(job_index_key(job_id))
    for method in (requests.get, requests.delete):
        gone = method(f"{api_url}/v1/jobs/{job_id}", headers=tenant.headers, timeout=10)
        assert gone.status_code == 404 and gone.headers["Content-Type"] == "application/problem+json"
    assert tenant_series_entries(db_session, tenant.tenant_id) == 1
    assert subject_series_entries(db_session, tenant.tenant_id, "alice") == 0
    assert subject_series_entries(db_session, tenant.tenant_id, "bob") == 1
    assert db_session.scalar(select(func.count()).select_from(EmotionScore)
                             .where(EmotionScore.job_id == uuid.UUID(job_id))) == 0
    assert {"table jobs.input", "table webhook_deliveries.body"} <= set(places_holding(other_text, settings, redis))
    assert redis.exists(job_index_key(other_id))
    again = requests.post(f"{api_url}/v1/jobs", json={"type": "emotion", "input": {"text": other_text}},
                          headers=tenant.headers, timeout=10).json()
    assert wait_for_job(api_url, again["id"], tenant.headers)["result"]["cached"] is True

    events = db_session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.tenant_id)).all()
    assert [(event.action, event.target) for event in events] == [("job.deleted", {"job_id": job_id})]
    assert events[0].rows >= 1 + 28 + 1


def test_a_running_batch_is_canceled_then_deleted_with_its_items(api_url, make_tenant, settings, redis, db_session):
    """No `bulk` worker runs here: the items are still queued when the batch is deleted."""
    tenant = make_tenant()
    text = sentinel()
    items = [{"text": f"{text} #{row}", "subject": "carol"} for row in range(5)]
    response = requests.post(f"{api_url}/v1/batches", json={"items": items}, headers=tenant.headers, timeout=10)
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    assert "table jobs.input" in places_holding(text, settings, redis)

    assert requests.delete(f"{api_url}/v1/batches/{batch_id}", headers=tenant.headers, timeout=10).status_code == 204

    assert places_holding(text, settings, redis) == []
    assert requests.get(f"{api_url}/v1/batches/{batch_id}", headers=tenant.headers, timeout=10).status_code == 404
    assert requests.delete(f"{api_url}/v1/batches/{batch_id}", headers=tenant.headers, timeout=10).status_code == 404
    assert db_session.scalar(select(func.count()).select_from(Job).where(Job.tenant_id == tenant.tenant_id)) == 0
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.tenant_id)).one()
    assert (event.action, event.target, event.rows) == ("batch.deleted", {"batch_id": batch_id}, 6)


def maintenance_worker(settings, module: str | None = None, **env) -> CeleryWorker:
    return CeleryWorker({**settings_env(settings), **env}, queues=("maintenance",), module=module)


def wait_for_erasure(api_url, tenant, erasure_id, timeout_s: float = 120) -> dict:
    def completed():
        document = requests.get(f"{api_url}/v1/erasures/{erasure_id}", headers=tenant.headers, timeout=10).json()
        return document if document["status"] == "completed" else None
    return wait_until(completed, timeout_s=timeout_s, interval_s=0.2, message=f"erasure {erasure_id} completed")


def test_erasing_a_subject_removes_every_trace_and_leaves_other_subjects(api_url, cpu_worker, make_tenant, settings,
                                                                         redis, db_session):
    tenant = make_tenant()
    text, other_text = sentinel(), sentinel()
    ids = [submit(api_url, tenant, f"{text} #{n}", "dana") for n in range(3)]
    kept = submit(api_url, tenant, other_text, "erin")
    for each in [*ids, kept]:
        assert wait_for_job(api_url, each, tenant.headers)["status"] == "succeeded"
    assert "table jobs.input" in places_holding(text, settings, redis)

    first = requests.delete(f"{api_url}/v1/subjects/dana", headers=tenant.headers, timeout=10)
    second = requests.delete(f"{api_url}/v1/subjects/dana", headers=tenant.headers, timeout=10)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"] and first.headers["Location"] == first.json()["links"]["self"]
    assert first.json()["status"] == "queued"

    worker = maintenance_worker(settings)
    worker.start()
    try:
        done = wait_for_erasure(api_url, tenant, first.json()["id"])
    finally:
        worker.stop()

    assert done["counts"]["jobs"] == 3 and done["counts"]["scores"] == 3 * 28 and done["finished_at"]
    assert places_holding(text, settings, redis) == []
    for job_id in ids:
        assert requests.get(f"{api_url}/v1/jobs/{job_id}", headers=tenant.headers, timeout=10).status_code == 404
        assert not redis.exists(job_index_key(job_id))
    assert {"table jobs.input", "table webhook_deliveries.body"} <= set(places_holding(other_text, settings, redis))
    assert tenant_series_entries(db_session, tenant.tenant_id) == 1
    assert subject_series_entries(db_session, tenant.tenant_id, "dana") == 0
    assert subject_series_entries(db_session, tenant.tenant_id, "erin") == 1
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.tenant_id)).one()
    assert event.action == "subject.erased" and event.target == {"erasure_id": done["id"], "subject": "dana"}
    assert event.actor["via"] == "api_key" and event.rows >= 3 + 3 * 28 + 3
    third = requests.delete(f"{api_url}/v1/subjects/dana", headers=tenant.headers, timeout=10).json()
    assert third["id"] != done["id"]


def test_an_erasure_interrupted_by_a_sigkilled_worker_completes_after_restart(api_url, make_tenant, settings,
                                                                              redis, db_session):
    """Chunks of one job; the slow worker pauses inside each chunk's transaction and is killed in the second."""
    tenant = make_tenant()
    text = sentinel()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rng = random.Random(16)
    entries = [Entry(start + timedelta(hours=n), leaning(rng, "joy"), subject="finn") for n in range(4)]
    store_entries(settings.database_url, tenant.tenant_id, entries, text=text)
    store_entries(settings.database_url, tenant.tenant_id, [Entry(start, leaning(rng, "joy"), subject="gwen")])
    chunked = {"SAMO_ERASURE_CHUNK_SIZE": "1"}
    slow = maintenance_worker(settings, "tests.support.slow_erasure_worker", SAMO_TEST_ERASURE_CHUNK_DELAY_S="30",
                              **chunked)
    slow.start()
    erasure_id = requests.delete(f"{api_url}/v1/subjects/finn", headers=tenant.headers, timeout=10).json()["id"]

    def erased_jobs():
        document = requests.get(f"{api_url}/v1/erasures/{erasure_id}", headers=tenant.headers, timeout=10).json()
        return (document["counts"] or {}).get("jobs", 0)
    try:
        wait_until(lambda: erased_jobs() >= 1, timeout_s=90, interval_s=0.2, message="the first chunk committed")
    finally:
        slow.kill()
    assert erased_jobs() < 4

    restarted = maintenance_worker(settings, **chunked)
    restarted.start()
    try:
        done = wait_for_erasure(api_url, tenant, erasure_id, timeout_s=settings.broker_visibility_timeout_s + 90)
    finally:
        restarted.stop()

    assert done["counts"]["jobs"] == 4 and done["counts"]["scores"] == 4 * 28
    assert places_holding(text, settings, redis) == []
    assert tenant_series_entries(db_session, tenant.tenant_id) == 1
    assert subject_series_entries(db_session, tenant.tenant_id, "gwen") == 1
    assert db_session.scalar(select(func.count()).select_from(Job).where(Job.tenant_id == tenant.tenant_id)) == 1
