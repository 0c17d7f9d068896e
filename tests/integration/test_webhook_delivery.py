"""Webhook delivery end to end: a real `webhooks` worker, a real HTTP receiver on localhost.

The worker's allow-list admits 127.0.0.1 (and nothing else) so it may call the receiver; its
retry schedule is shortened to fractions of a second. Events come from the real fan-out
(``tasks.webhook_events.stage_job_events``) on job rows stored finished, except in the first
test, where a real model worker finishes a real job.
"""
from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pytest
import requests
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from db.models import Job, JobStatus, WebhookDelivery, WebhookEndpoint, utcnow
from db.session import session_scope
from tests.support import audio
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import serve_app_in_thread


@pytest.fixture(scope="module")
def webhook_app(settings):
    """The API with the same allow-list as the worker, so it accepts the local receiver's URLs."""
    from api import create_app

    allowed = dataclasses.replace(settings, webhook_allowed_destinations=("127.0.0.1",))
    return create_app(allowed, {"TESTING": True})


@pytest.fixture
def client(webhook_app):
    return webhook_app.test_client()


@pytest.fixture(scope="module")
def api_url(webhook_app):
    with serve_app_in_thread(webhook_app) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def celery(settings):
    from config.celery import make_celery

    return make_celery(settings)


def register(client, tenant, url, events=("job.succeeded",)) -> dict:
    response = client.post("/v1/webhooks/endpoints", json={"url": url, "events": list(events)}, headers=tenant.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def finished_job(settings, tenant, status=JobStatus.SUCCEEDED, **webhook) -> uuid.UUID:
    """A job row stored as a worker would store it, optionally with its own webhook."""
    from db.webhooks import add_subscription

    with session_scope(settings.database_url) as session:
        job = Job(id=uuid.uuid4(), tenant_id=tenant.tenant_id, type="emotion", status=status, queue="cpu",
                  input={"text": "hi"}, options={}, result={"top_emotion": "joy"}, attempts=1,
                  started_at=utcnow(), finished_at=utcnow())
        session.add(job)
        session.flush()
        if webhook:
            add_subscription(session, tenant.tenant_id, webhook["url"], webhook["events"], job_id=job.id)
        return job.id


def emit(settings, celery, job_id, status="succeeded"):
    """The job's event staged and published as a worker storing its state would."""
    from tasks.webhook_events import publish, stage_job_events

    with session_scope(settings.database_url) as session:
        delivery_ids = stage_job_events(settings, session, [job_id], status)
    publish(settings, celery, delivery_ids)
    return delivery_ids


def delivery_when(settings, delivery_id, done, timeout_s=30) -> WebhookDelivery:
    def current():
        with session_scope(settings.database_url) as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            return delivery if done(delivery) else None
    return wait_until(current, timeout_s=timeout_s, interval_s=0.1, message=f"delivery {delivery_id}")


def finished(delivery) -> bool:
    return delivery.status != "pending"


def test_a_finished_job_calls_its_webhook_signed_per_standard_webhooks(
        api_url, cpu_worker, webhooks_worker, receiver, make_tenant):
    live_server = api_url
    tenant = make_tenant()
    secret = requests.get(f"{live_server}/v1/webhooks/signing-secret", headers=tenant.headers, timeout=10).json()
    url = receiver.url("/job-hook")
    body = {"type": "emotion", "input": {"text": "Thank you so much for your help!"},
            "webhook": {"url": url, "events": ["job.succeeded"]}}
    job = requests.post(f"{live_server}/v1/jobs", json=body, headers=tenant.headers, timeout=10).json()
    done = wait_for_job(live_server, job["id"], tenant.headers)
    calls = wait_until(lambda: receiver.received("/job-hook"), timeout_s=30, message="webhook received")

    payload = Webhook(secret["secret"]).verify(calls[0]["body"], calls[0]["headers"])
    assert payload["type"] == "job.succeeded"
    assert payload["data"] == done
    assert calls[0]["headers"]["Content-Type"] == "application/json"
    assert calls[0]["headers"]["Host"] == url.split("/")[2]
    time.sleep(0.5)
    assert len(receiver.received("/job-hook")) == 1


def test_a_transcribed_upload_calls_the_webhook_its_form_gave(
        api_url, cpu_worker, webhooks_worker, receiver, make_tenant, tmp_path):
    tenant = make_tenant()
    secret = requests.get(f"{api_url}/v1/webhooks/signing-secret", headers=tenant.headers, timeout=10).json()
    clip = audio.speak("Please call me back when the report is ready.", tmp_path / "note.wav")
    url = receiver.url("/voice-hook")
    with open(clip, "rb") as file:
        job = requests.post(f"{api_url}/v1/jobs", headers=tenant.headers, timeout=30, files={"file": file},
                            data={"type": "transcribe", "webhook": json.dumps({"url": url})}).json()
    done = wait_for_job(api_url, job["id"], tenant.headers, timeout_s=120)
    assert done["status"] == "succeeded", done
    calls = wait_until(lambda: receiver.received("/voice-hook"), timeout_s=30, message="webhook received")
    payload = Webhook(secret["secret"]).verify(calls[0]["body"], calls[0]["headers"])
    assert payload["type"] == "job.succeeded" and payload["data"] == done


def test_an_event_commits_with_its_state_so_a_crash_before_publishing_loses_nothing(
        settings, celery, webhooks_worker, receiver, make_tenant):
    """The outbox: a job's deliveries are stored in the transaction that stores its terminal state."""
    from db.jobs import fail_unclaimed_job
    from tasks.webhook_events import stage_job_events
    from tasks.webhooks import dispatch_due_deliveries

    tenant = make_tenant()
    url = receiver.url("/outbox")
    job_id = finished_job(settings, tenant, status=JobStatus.RUNNING, url=url, events=["job.failed"])

    def fail_and_stage(session) -> list[uuid.UUID]:
        assert fail_unclaimed_job(session, job_id, "worker_lost", "The worker stopped.")
        return stage_job_events(settings, session, [job_id], "failed")

    with pytest.raises(RuntimeError):
        with session_scope(settings.database_url) as session:
            assert fail_and_stage(session)
            raise RuntimeError("the worker dies before its commit")
    with session_scope(settings.database_url) as session:
        assert session.get(Job, job_id).status == JobStatus.RUNNING
        assert not session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).all()

    with session_scope(settings.database_url) as session:
        delivery_ids = fail_and_stage(session)
    # The worker dies here, before publishing: the sweep sends the delivery once its message counts as lost.
    time.sleep(0.01)
    assert dispatch_due_deliveries(dataclasses.replace(settings, requeue_after_s=0), celery) >= 1
    delivered = delivery_when(settings, delivery_ids[0], finished)
    assert delivered.status == "succeeded"
    calls = receiver.received("/outbox")
    assert len(calls) == 1 and json.loads(calls[0]["body"])["type"] == "job.failed"


def test_failing_twice_then_succeeding_gives_one_delivery_after_two_recorded_failures(
        settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    endpoint = register(client, tenant, receiver.script("/flaky", 500, 503))
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant))
    delivery = delivery_when(settings, delivery_id, finished)

    assert delivery.status == "succeeded" and delivery.attempts == 3
    calls = receiver.received("/flaky")
    assert len(calls) == 3
    assert len({call["headers"]["webhook-id"] for call in calls}) == 1
    for call in calls:
        Webhook(endpoint["secret"]).verify(call["body"], call["headers"])

    listed = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=tenant.headers).get_json()
    [document] = listed["data"]
    assert document["status"] == "succeeded" and document["webhook_id"] == calls[0]["headers"]["webhook-id"]
    assert [a["status_code"] for a in document["attempt_log"]] == [500, 503, 204]
    assert all(a["latency_ms"] is not None and a["attempted_at"] for a in document["attempt_log"])
    assert [a["error"] for a in document["attempt_log"]] == ["HTTP 500", "HTTP 503", None]

    from tasks.webhooks import deliver_once
    assert deliver_once(settings, celery, delivery_id) == "skipped"
    assert len(receiver.received("/flaky")) == 3


def test_410_gone_disables_the_endpoint(settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    endpoint = register(client, tenant, receiver.script("/gone", 410))
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant))
    delivery = delivery_when(settings, delivery_id, finished)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 410)

    state = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=tenant.headers).get_json()
    assert state["enabled"] is False and "410" in state["disabled_reason"]
    assert emit(settings, celery, finished_job(settings, tenant)) == []


def test_retry_after_is_honoured(settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    register(client, tenant, receiver.script("/busy", (429, {"Retry-After": "2"})))
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant))
    assert delivery_when(settings, delivery_id, finished).status == "succeeded"
    first, second = receiver.received("/busy")
    assert second["at"] - first["at"] >= 2.0


def test_other_4xx_answers_stop_without_retrying(settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    register(client, tenant, receiver.script("/bad", 400))
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant))
    delivery = delivery_when(settings, delivery_id, finished)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 1, "HTTP 400")
    time.sleep(1)
    assert len(receiver.received("/bad")) == 1


def test_repeated_failure_disables_the_endpoint_and_says_why(
        settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    endpoint = register(client, tenant, receiver.script("/down", 500, 500, 500, 500))
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant))
    delivery = delivery_when(settings, delivery_id, finished)
    assert delivery.status == "failed" and "disabled" in delivery.last_error
    assert len(receiver.received("/down")) == 3
    state = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=tenant.headers).get_json()
    assert state["enabled"] is False
    assert "3 consecutive failed attempts" in state["disabled_reason"] and "HTTP 500" in state["disabled_reason"]


def test_the_retry_schedule_ends_in_a_dead_delivery(settings, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    url = receiver.script("/always-down", 502, 502, 502, 502, 502)
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant, url=url, events=["job.succeeded"]))
    delivery = delivery_when(settings, delivery_id, finished)
    assert (delivery.status, delivery.attempts) == ("dead", 4)


def test_event_filters_hold(settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    register(client, tenant, receiver.url("/only-failures"), events=["job.failed"])
    register(client, tenant, receiver.url("/only-successes"), events=["job.succeeded"])
    job_id = finished_job(settings, tenant, url=receiver.url("/own-failures"), events=["job.failed"])
    deliveries = emit(settings, celery, job_id, "succeeded")
    assert len(deliveries) == 1
    delivery_when(settings, deliveries[0], finished)
    failed_job = finished_job(settings, tenant, status=JobStatus.FAILED, url=receiver.url("/own-failures"),
                              events=["job.failed"])
    for delivery_id in emit(settings, celery, failed_job, "failed"):
        delivery_when(settings, delivery_id, finished)
    assert [json.loads(r["body"])["type"] for r in receiver.received("/only-successes")] == ["job.succeeded"]
    assert [json.loads(r["body"])["type"] for r in receiver.received("/only-failures")] == ["job.failed"]
    assert [json.loads(r["body"])["data"]["id"] for r in receiver.received("/own-failures")] == [str(failed_job)]


def test_redeliver_sends_the_same_message_again(settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    register(client, tenant, receiver.url("/again"))
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant))
    delivery_when(settings, delivery_id, finished)
    response = client.post(f"/v1/webhooks/deliveries/{delivery_id}/redeliver", headers=tenant.headers)
    assert response.status_code == 202
    delivery = delivery_when(settings, delivery_id, lambda d: d.status == "succeeded" and d.attempts == 2)
    first, second = receiver.received("/again")
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == f"msg_{delivery.id.hex}"
    assert first["body"] == second["body"]


def test_during_a_rotation_both_secrets_verify(settings, client, celery, webhooks_worker, receiver, make_tenant):
    tenant = make_tenant()
    endpoint = register(client, tenant, receiver.url("/rotated"))
    rotated = client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret", headers=tenant.headers).get_json()
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant))
    delivery_when(settings, delivery_id, finished)
    [call] = receiver.received("/rotated")
    assert len(call["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(call["body"], call["headers"])
    Webhook(rotated["secret"]).verify(call["body"], call["headers"])


@pytest.mark.parametrize("url_template", ["http://localhost:{port}/ssrf", "http://[::1]:{port}/ssrf",
                                          "http://[::ffff:127.0.0.1]:{port}/ssrf", "http://10.0.0.1:{port}/ssrf"])
def test_the_worker_refuses_internal_destinations_even_if_stored(
        settings, celery, webhooks_worker, receiver, make_tenant, url_template):
    """The API refuses these URLs; the worker checks again (DNS may change, rows may be old)."""
    tenant = make_tenant()
    url = url_template.format(port=receiver.server.server_port)
    [delivery_id] = emit(settings, celery, finished_job(settings, tenant, url=url, events=["job.succeeded"]))
    delivery = delivery_when(settings, delivery_id, finished)
    assert delivery.status == "failed" and delivery.last_error.startswith("destination refused")
    assert receiver.received("/ssrf") == []


def test_the_sweep_sends_deliveries_whose_message_was_lost(settings, celery, webhooks_worker, receiver, make_tenant):
    from tasks.webhooks import dispatch_due_deliveries

    tenant = make_tenant()
    job_id = finished_job(settings, tenant, url=receiver.url("/swept"), events=["job.succeeded"])
    with session_scope(settings.database_url) as session:
        from db.webhooks import create_deliveries
        [delivery_id] = create_deliveries(session, tenant.tenant_id, "job.succeeded", lambda: "{}", 0,
                                          broker_schedules=False, job_id=job_id)
    assert dispatch_due_deliveries(settings, celery) >= 1
    assert delivery_when(settings, delivery_id, finished).status == "succeeded"
    assert dispatch_due_deliveries(settings, celery) == 0 or receiver.received("/swept")
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant.tenant_id)) is None


def stored_batch(settings, tenant, items=((JobStatus.SUCCEEDED, 2), (JobStatus.FAILED, 1))) -> uuid.UUID:
    from db.models import Batch, BatchStatus

    with session_scope(settings.database_url) as session:
        batch = Batch(id=uuid.uuid4(), tenant_id=tenant.tenant_id, status=BatchStatus.COMPLETED,
                      source_format="csv", total_items=sum(n for _, n in items), chunk_size=100,
                      finished_at=utcnow())
        session.add(batch)
        session.flush()
        row = 0
        for status, count in items:
            for _ in range(count):
                row += 1
                session.add(Job(tenant_id=tenant.tenant_id, type="emotion", status=status, queue="bulk",
                                input={"text": "x"}, options={}, batch_id=batch.id, batch_item=row))
        return batch.id


def test_a_completed_batch_sends_batch_completed_with_its_counts(
        settings, services, client, celery, webhooks_worker, receiver, make_tenant):
    from tasks.events import batch_finished

    tenant = make_tenant()
    register(client, tenant, receiver.url("/batches"), events=["batch.completed"])
    register(client, tenant, receiver.url("/batch-items"), events=["job.succeeded"])
    batch_id = stored_batch(settings, tenant)
    batch_finished(services, batch_id, "completed")
    [call] = wait_until(lambda: receiver.received("/batches"), timeout_s=30, message="batch webhook")
    payload = json.loads(call["body"])
    assert payload["type"] == "batch.completed"
    assert payload["data"]["id"] == str(batch_id) and payload["data"]["status"] == "completed"
    assert payload["data"]["counts"]["succeeded"] == 2 and payload["data"]["counts"]["failed"] == 1
    with session_scope(settings.database_url) as session:
        item_ids = session.scalars(select(Job.id).where(Job.batch_id == batch_id)).all()
    assert all(emit(settings, celery, item) == [] for item in item_ids)
    assert receiver.received("/batch-items") == []


def test_batch_completed_carries_what_get_batch_answers(settings, services, client, webhooks_worker, receiver,
                                                       make_tenant):
    """One batch document: the webhook's ``data`` is the API's body, links included (the app is mounted at /)."""
    from tasks.events import batch_finished

    tenant = make_tenant()
    register(client, tenant, receiver.url("/batch-document"), events=["batch.completed"])
    batch_id = stored_batch(settings, tenant)
    batch_finished(services, batch_id, "completed")
    [call] = wait_until(lambda: receiver.received("/batch-document"), timeout_s=30, message="batch webhook")
    answered = client.get(f"/v1/batches/{batch_id}", headers=tenant.headers)
    assert answered.status_code == 200
    data, body = json.loads(call["body"])["data"], answered.get_json()
    assert {k: v for k, v in data.items() if k != "links"} == {k: v for k, v in body.items() if k != "links"}
    assert data["links"] == body["links"]


def test_batch_progress_is_throttled(settings, services, client, webhooks_worker, receiver, make_tenant):
    from tasks.events import batch_progress

    tenant = make_tenant()
    register(client, tenant, receiver.url("/progress"), events=["batch.progress"])
    batch_id = stored_batch(settings, tenant)
    for _ in range(5):
        batch_progress(services, batch_id)
    wait_until(lambda: receiver.received("/progress"), timeout_s=30, message="progress webhook")
    time.sleep(1)
    assert [json.loads(c["body"])["type"] for c in receiver.received("/progress")] == ["batch.progress"]
