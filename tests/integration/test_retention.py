"""Retention: the sweep deletes exactly the finished jobs past their date, in chunks, on its own queue.

The cut-off is exact (a job due at the cut-off goes, one due a microsecond later stays); end to
end, a tenant's retention set with the CLI dates its jobs, a real `retention` worker deletes
those past their date (input, result, scores, deliveries: a sweep finds their text nowhere)
while the subject's timeline keeps counting them, and a job may not ask for more than its tenant keeps.
"""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import redis as redis_lib
import requests
from click.testing import CliRunner
from sqlalchemy import func, select, update

from api.cli import cli
from db.models import EmotionScore, Job, JobStatus, Tenant, WebhookDelivery, utcnow
from db.retention import purge_expired
from db.session import session_scope
from tests.conftest import settings_env
from tests.support.jobs import stored_job
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import CeleryWorker
from tests.support.traces import places_holding


@pytest.fixture(scope="module")
def retention_worker(settings):
    """A real worker on the `retention` queue, deleting one job per transaction."""
    worker = CeleryWorker({**settings_env(settings), "SAMO_RETENTION_CHUNK_SIZE": "1"}, queues=("retention",))
    worker.start()
    yield worker
    worker.stop()


def finished_job(session, tenant_id, purge_after, status=JobStatus.SUCCEEDED, text="An ordinary day.") -> Job:
    job = Job(tenant_id=tenant_id, type="emotion", status=status, queue="cpu", input={"text": text},
              options={}, result={"top_emotion": "neutral", "probabilities": {"neutral": 0.9}, "emotions": []},
              created_at=utcnow(), finished_at=utcnow() if status != JobStatus.RUNNING else None,
              purge_after=purge_after)
    session.add(job)
    session.flush()
    return job


def test_the_sweep_deletes_exactly_what_is_due_at_the_cut_off(settings, make_tenant):
    tenant = make_tenant()
    cutoff = utcnow().replace(microsecond=500_000)
    with session_scope(settings.database_url) as session:
        due = {name: finished_job(session, tenant.tenant_id, cutoff + offset).id for name, offset in (
            ("a microsecond before", -timedelta(microseconds=1)), ("at", timedelta(0)),
            ("a day before", -timedelta(days=1)))}
        kept = {"a microsecond after": finished_job(session, tenant.tenant_id, cutoff + timedelta(microseconds=1)).id,
                "no date": finished_job(session, tenant.tenant_id, None).id,
                "running, past its date": finished_job(session, tenant.tenant_id, cutoff - timedelta(hours=1),
                                                       status=JobStatus.RUNNING).id}
        session.add(EmotionScore(job_id=due["at"], tenant_id=tenant.tenant_id, label="neutral", probability=0.9))
        session.add(WebhookDelivery(tenant_id=tenant.tenant_id, url="https://example.com/hook",
                                    event_type="job.succeeded", body='{"input": "An ordinary day."}',
                                    job_id=due["at"]))
    with session_scope(settings.database_url) as session:
        purged = purge_expired(session, cutoff, 2, frozenset())
        rest = purge_expired(session, cutoff, 2, frozenset())
    mine = set(due.values()) | set(kept.values())
    assert len(purged.jobs) == 2 and set(purged.jobs) | set(rest.jobs) >= set(due.values())
    assert not (set(purged.jobs) | set(rest.jobs)) & set(kept.values())
    with session_scope(settings.database_url) as session:
        left = set(session.scalars(select(Job.id).where(Job.id.in_(mine))))
        assert left == set(kept.values())
        assert session.scalar(select(func.count()).select_from(EmotionScore)
                              .where(EmotionScore.job_id == due["at"])) == 0
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.job_id == due["at"])) == 0
    with session_scope(settings.database_url) as session:
        assert purge_expired(session, cutoff, 10, frozenset()).jobs == []


def set_retention(settings, tenant, *args) -> str:
    result = CliRunner().invoke(cli, ["tenants", "set-retention", tenant.name, *args], env=settings_env(settings),
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_tenants_retention_deletes_its_entries_past_their_date_and_keeps_their_timeline(
        settings, live_server, cpu_worker, retention_worker, services, make_tenant, db_session):
    tenant = make_tenant()
    assert "retention 2 days" in set_retention(settings, tenant, "2")
    texts = [f"Entry {i} about the move to the coast {uuid.uuid4().hex}." for i in range(4)]
    jobs = []
    for i, text in enumerate(texts):
        options = {"retention_days": 1} if i == 3 else {}
        response = requests.post(f"{live_server}/v1/jobs", headers=tenant.headers, timeout=30, json={
            "type": "emotion", "input": {"text": text}, "subject": "journal-5", "options": options,
            "occurred_at": f"2026-11-2{i}T10:00:00Z"})
        assert response.status_code == 202, response.text
        jobs.append(wait_for_job(live_server, response.json()["id"], tenant.headers, timeout_s=180))
    created = {job["id"]: stored_job(db_session, job["id"]).created_at for job in jobs}
    dates = {job["id"]: stored_job(db_session, job["id"]).purge_after for job in jobs}
    assert [dates[job["id"]] - created[job["id"]] for job in jobs] == [timedelta(days=2)] * 3 + [timedelta(days=1)]

    # Two days pass for the first three entries' dates: two of them are now due, the third a minute from now.
    now = utcnow()
    due = [jobs[0]["id"], jobs[1]["id"], jobs[3]["id"]]
    with session_scope(settings.database_url) as session:
        for job_id, when in ((jobs[0]["id"], now - timedelta(minutes=5)), (jobs[1]["id"], now - timedelta(seconds=1)),
                             (jobs[3]["id"], now - timedelta(hours=3)), (jobs[2]["id"], now + timedelta(minutes=1))):
            session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(purge_after=when))
    services.celery.send_task("tasks.retention.purge_expired_jobs")
    wait_until(lambda: all(requests.get(f"{live_server}/v1/jobs/{job_id}", headers=tenant.headers,
                                        timeout=30).status_code == 404 for job_id in due),
               timeout_s=60, interval_s=0.5, message="due jobs deleted")
    kept = requests.get(f"{live_server}/v1/jobs/{jobs[2]['id']}", headers=tenant.headers, timeout=30)
    assert kept.status_code == 200 and kept.json()["input"] == {"text": texts[2]}
    client = redis_lib.Redis.from_url(settings.redis_url)
    for i in (0, 1, 3):
        assert places_holding(texts[i], settings, client) == []
    # One job per transaction (SAMO_RETENTION_CHUNK_SIZE=1), all in one run; earlier tests' rows may be due too.
    assert re.search(r"retention: deleted ([3-9]|\d\d+) jobs", retention_worker.log())

    response = requests.get(f"{live_server}/v1/subjects/journal-5/emotions", headers=tenant.headers, timeout=30,
                            params={"from": "2026-11-19", "to": "2026-11-25", "bucket": "week"})
    assert response.status_code == 200, response.text
    assert sum(bucket["entries"] for bucket in response.json()["buckets"]) == 4


def test_set_retention_reschedules_existing_jobs_and_sets_the_store_input_default(settings, make_tenant):
    tenant = make_tenant()
    with session_scope(settings.database_url) as session:
        own = finished_job(session, tenant.tenant_id, None)
        own.options = {"retention_days": 3}
        plain = finished_job(session, tenant.tenant_id, None)
        ids, created = (own.id, plain.id), {own.id: own.created_at, plain.id: plain.created_at}
    assert "2 jobs rescheduled" in set_retention(settings, tenant, "10", "--no-store-input")
    with session_scope(settings.database_url) as session:
        rows = session.scalars(select(Job).where(Job.id.in_(ids)))
        dates = {job.id: job.purge_after - created[job.id] for job in rows}
        assert dates == {ids[0]: timedelta(days=3), ids[1]: timedelta(days=10)}
        assert session.get(Tenant, tenant.tenant_id).store_input is False
    assert "store_input false; 1 jobs rescheduled" in set_retention(settings, tenant, "none")
    with session_scope(settings.database_url) as session:
        assert session.get(Job, ids[1]).purge_after is None
        assert session.get(Job, ids[0]).purge_after - created[ids[0]] == timedelta(days=3)
    result = CliRunner().invoke(cli, ["tenants", "set-retention", tenant.name, "0"], env=settings_env(settings))
    assert result.exit_code == 2 and "DAYS must be" in result.output


def test_a_job_may_not_keep_longer_than_its_tenant(settings, live_server, make_tenant):
    tenant = make_tenant()
    body = {"type": "emotion", "input": {"text": "A long walk."}, "options": {"retention_days": 8}}
    first = requests.post(f"{live_server}/v1/jobs", headers=tenant.headers, timeout=30, json=body)
    assert first.status_code == 202, first.text
    # The API process holds the key, and its tenant's policy, in its cache: the CLI's change reaches it at once.
    set_retention(settings, tenant, "7")
    response = requests.post(f"{live_server}/v1/jobs", headers=tenant.headers, timeout=30, json={
        "type": "emotion", "input": {"text": "A long walk."}, "options": {"retention_days": 8}})
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"] == [{"field": "options.retention_days",
                                          "message": "at most the tenant's retention, 7 days"}]
    batch = requests.post(f"{live_server}/v1/batches", headers=tenant.headers, timeout=30, json={
        "items": ["A long walk."], "options": {"retention_days": 30}})
    assert batch.status_code == 422, batch.text
    assert batch.json()["errors"][0]["field"] == "options.retention_days"
