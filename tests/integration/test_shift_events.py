"""`subject.shift_detected` end to end: entries submitted over HTTP with back-dated `occurred_at`, scored by a
real model worker, checked after their results are stored, delivered by a real `webhooks` worker to a
real HTTP receiver and verified as Standard Webhooks."""
from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from db.models import WebhookDelivery, utcnow
from db.session import session_scope
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import serve_app_in_thread

JOYFUL = ("I had a wonderful day with my friends and laughed a lot.", "So happy today, everything went great!",
          "What a joyful morning, I feel fantastic.", "I'm delighted, the trip was amazing!",
          "Best day ever, I am so glad.", "We celebrated and I was full of joy.", "I'm really happy with how it went.")
SAD = ("I'm so sad today.", "I feel down and I miss my old friends.", "It was a sad, grey day and I cried.",
       "I am heartbroken about the news.", "Feeling sad and alone again.", "I cried myself to sleep, so sad.",
       "Such a sad ending, I can't stop crying.")


@pytest.fixture(scope="module")
def api_url(settings):
    """The API over real HTTP, accepting the local receiver as an endpoint."""
    from api import create_app

    app = create_app(dataclasses.replace(settings, webhook_allowed_destinations=("127.0.0.1",)), {"TESTING": True})
    with serve_app_in_thread(app) as base_url:
        yield base_url


def submit(api_url, tenant, subject: str, text: str, days_ago: float) -> dict:
    body = {"type": "emotion", "input": {"text": text}, "subject": subject,
            "occurred_at": (utcnow() - timedelta(days=days_ago)).isoformat()}
    response = requests.post(f"{api_url}/v1/jobs", json=body, headers=tenant.headers, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()


def shift_deliveries(settings, tenant) -> list[dict]:
    with session_scope(settings.database_url) as session:
        bodies = session.scalars(select(WebhookDelivery.body).where(
            WebhookDelivery.tenant_id == tenant.tenant_id, WebhookDelivery.event_type == "subject.shift_detected"))
        return [json.loads(body) for body in bodies]


def test_a_turn_from_joy_to_sadness_fires_once_and_a_steady_subject_never(
        api_url, cpu_worker, webhooks_worker, receiver, make_tenant, settings):
    tenant = make_tenant()
    response = requests.post(f"{api_url}/v1/webhooks/endpoints", headers=tenant.headers, timeout=30,
                             json={"url": receiver.url("/shifts"), "events": ["subject.shift_detected"]})
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]

    jobs = []
    for number, text in enumerate(JOYFUL):
        jobs.append(submit(api_url, tenant, "turning", text, days_ago=10 + 2 * number))
        jobs.append(submit(api_url, tenant, "steady", text, days_ago=11 + 2 * number))
    for number, (sad, joyful) in enumerate(zip(SAD, reversed(JOYFUL), strict=True)):
        jobs.append(submit(api_url, tenant, "turning", sad, days_ago=3 - 0.4 * number))
        jobs.append(submit(api_url, tenant, "steady", joyful, days_ago=3 - 0.4 * number))
    for job in jobs:
        assert wait_for_job(api_url, job["id"], tenant.headers, timeout_s=180)["status"] == "succeeded"
    # The worker runs one task at a time: once this one is done, every check before it has run.
    sentinel = submit(api_url, tenant, "someone-else", JOYFUL[0], days_ago=0)
    wait_for_job(api_url, sentinel["id"], tenant.headers, timeout_s=180)

    assert [event["data"]["subject"] for event in shift_deliveries(settings, tenant)] == ["turning"]
    # Later entries of the same window, each checked on its own, find the shift again but send nothing.
    for text in SAD[:2]:
        later = submit(api_url, tenant, "turning", text, days_ago=0.1)
        assert wait_for_job(api_url, later["id"], tenant.headers, timeout_s=180)["status"] == "succeeded"
    sentinel = submit(api_url, tenant, "someone-else", JOYFUL[1], days_ago=0)
    wait_for_job(api_url, sentinel["id"], tenant.headers, timeout_s=180)
    assert [event["data"]["subject"] for event in shift_deliveries(settings, tenant)] == ["turning"]

    calls = wait_until(lambda: receiver.received("/shifts"), timeout_s=30, message="shift webhook received")
    payload = Webhook(secret).verify(calls[0]["body"], calls[0]["headers"])
    assert payload["type"] == "subject.shift_detected"
    data = payload["data"]
    assert data["subject"] == "turning" and data["shift_score"] >= data["threshold"]
    assert data["window"]["entries"] >= data["min_entries"] and data["baseline"]["entries"] == len(JOYFUL)
    assert "sadness" in [change["label"] for change in data["rose"]]

    steady = requests.get(f"{api_url}/v1/subjects/steady/insights", headers=tenant.headers, timeout=30).json()
    assert steady["enough_entries"] is True and steady["shift_score"] < data["threshold"]
    assert len(receiver.received("/shifts")) == 1


def test_a_journal_imported_in_bulk_is_checked_too(batching_stack, make_tenant, settings):
    """Bulk items are stored by the `bulk` worker: their subjects are checked the same way."""
    from db.secrets import secret_box
    from db.webhooks import create_endpoint

    tenant = make_tenant()
    with session_scope(settings.database_url) as session:
        create_endpoint(session, secret_box(settings), tenant.tenant_id, "https://hooks.example.com/shifts",
                        ["subject.shift_detected"])
    now = utcnow()
    items = [{"text": text, "subject": "imported", "occurred_at": (now - timedelta(days=10 + n)).isoformat()}
             for n, text in enumerate(JOYFUL)]
    items += [{"text": text, "subject": "imported", "occurred_at": (now - timedelta(days=2, hours=n)).isoformat()}
              for n, text in enumerate(SAD)]
    jsonl = ("journal.jsonl", "\n".join(json.dumps(item) for item in items).encode(), "application/x-ndjson")
    response = requests.post(f"{batching_stack.base_url}/v1/batches", files={"file": jsonl}, headers=tenant.headers,
                             timeout=60)
    assert response.status_code == 202, response.text
    batch_url = f"{batching_stack.base_url}/v1/batches/{response.json()['id']}"
    done = wait_until(lambda: (b := requests.get(batch_url, headers=tenant.headers, timeout=30).json())["status"]
                      == "completed" and b, timeout_s=240, interval_s=0.5, message="batch completed")
    assert done["counts"]["succeeded"] == len(items)
    staged = wait_until(lambda: shift_deliveries(settings, tenant), timeout_s=30, message="shift event staged")
    assert [event["data"]["subject"] for event in staged] == ["imported"]
