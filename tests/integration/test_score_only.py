"""Score-only mode end to end: real API over HTTP, real `cpu`, `bulk` and `webhooks` workers, the database, Redis.

Until the worker scores it, a score-only job's text is in one place only, its row's ``input``
(the broker's message names the job's id); once scored, a sweep of every table, the media
directory and the Redis keyspace finds it nowhere, the webhook carried none of it, the result
cache gained no entry, and the subject's timeline counts the entry all the same.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from sqlalchemy import update

from db.models import Tenant
from db.result_cache_keys import KEY_PREFIX
from db.session import session_scope
from tests.support.jobs import stored_job
from tests.support.polling import wait_for_job, wait_until
from tests.support.stack import isolated_stack
from tests.support.traces import places_holding
from tests.support.webhook_receiver import WORKER_ENV


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """Touched, it lets the workers load their models (``tests.support.gated_worker``)."""
    return tmp_path_factory.mktemp("score-only") / "load-models"


@pytest.fixture(scope="module")
def stack(settings, gate):
    workers = {"cpu": ("cpu",), "bulk": ("bulk",), "webhooks": ("webhooks",)}
    with isolated_stack(settings, workers, module="tests.support.gated_worker", bulk_chunk_size=20,
                        webhook_allowed_destinations=("127.0.0.1",),
                        extra_env={"SAMO_TEST_PRELOAD_GATE": str(gate), **WORKER_ENV}) as stack:
        yield stack


@pytest.fixture
def scoring(stack, gate):
    gate.touch()
    return stack


@pytest.fixture
def stack_redis(stack):
    return redis_lib.Redis.from_url(stack.settings.redis_url)


def sentinel() -> str:
    return f"I told nobody about the lighthouse dream {uuid.uuid4().hex}, and it still scares me."


def submit(stack, tenant, body: dict) -> dict:
    response = requests.post(f"{stack.base_url}/v1/jobs", json=body, headers=tenant.headers, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()


def cache_entries(client) -> int:
    return sum(1 for _ in client.scan_iter(match=KEY_PREFIX + "*", count=500))


def test_until_it_is_scored_the_text_is_only_in_its_row_then_nowhere(stack, gate, receiver, make_tenant,
                                                                      db_session, stack_redis):
    assert not gate.exists(), "this test must run before the module's workers load their models"
    tenant, text = make_tenant(), sentinel()
    path = f"/score-only-{uuid.uuid4().hex[:6]}"
    hook = receiver.url(path)
    job = submit(stack, tenant, {"type": "emotion", "input": {"text": text}, "subject": "journal-7",
                                 "options": {"store_input": False, "granularity": "sentence"},
                                 "webhook": {"url": hook, "events": ["job.succeeded"]}})
    assert job["options"]["store_input"] is False and job["input"] == {"text": text}
    assert places_holding(text, stack.settings, stack_redis) == ["table jobs.input"]
    cached_before = cache_entries(stack_redis)

    gate.touch()
    done = wait_for_job(stack.base_url, job["id"], tenant.headers, timeout_s=240)
    assert done["status"] == "succeeded", done
    row = stored_job(db_session, job["id"])
    assert row.input is None and done["input"] is None
    assert [(s["start"], s["end"]) for s in row.result["sentences"]] == [(0, len(text))]
    assert all("text" not in s for s in row.result["sentences"])
    assert set(row.result["probabilities"]) and row.result["top_emotion"]
    assert places_holding(text, stack.settings, stack_redis) == []
    assert cache_entries(stack_redis) == cached_before

    calls = wait_until(lambda: receiver.received(path), timeout_s=60, message="webhook received")
    payload = json.loads(calls[0]["body"])
    assert payload["data"]["input"] is None and text not in calls[0]["body"].decode()
    assert payload["data"]["result"]["probabilities"] == done["result"]["probabilities"]


def test_a_stored_text_of_the_same_words_still_uses_the_cache(scoring, make_tenant, stack_redis):
    tenant, text = make_tenant(), sentinel()
    cached_before = cache_entries(stack_redis)
    kept = wait_for_job(scoring.base_url, submit(scoring, tenant, {"type": "emotion", "input": {"text": text}})["id"],
                        tenant.headers, timeout_s=240)
    assert kept["input"] == {"text": text} and cache_entries(stack_redis) == cached_before + 1
    private = wait_for_job(scoring.base_url, submit(scoring, tenant, {
        "type": "emotion", "input": {"text": text}, "options": {"store_input": False}})["id"], tenant.headers)
    assert private["result"]["cached"] is False
    assert private["result"]["probabilities"] == pytest.approx(kept["result"]["probabilities"], abs=1e-6)


def test_a_tenant_default_keeps_no_text_and_the_timeline_still_counts_the_entries(
        scoring, make_tenant, db_session, stack_redis):
    tenant = make_tenant()
    with session_scope(scoring.settings.database_url) as session:
        session.execute(update(Tenant).where(Tenant.id == tenant.tenant_id).values(store_input=False))
    texts = {"2026-11-30T09:00:00Z": sentinel(), "2026-12-01T21:00:00Z": sentinel()}
    jobs = [submit(scoring, tenant, {"type": "emotion", "input": {"text": text}, "subject": "journal-9",
                                     "occurred_at": occurred_at})
            for occurred_at, text in texts.items()]
    assert {job["options"]["store_input"] for job in jobs} == {False}
    done = [wait_for_job(scoring.base_url, job["id"], tenant.headers, timeout_s=240) for job in jobs]
    assert {job["status"] for job in done} == {"succeeded"}
    for text in texts.values():
        assert places_holding(text, scoring.settings, stack_redis) == []

    response = requests.get(f"{scoring.base_url}/v1/subjects/journal-9/emotions", headers=tenant.headers,
                            params={"from": "2026-11-29", "to": "2026-12-03", "bucket": "day"}, timeout=30)
    assert response.status_code == 200, response.text
    buckets = {bucket["start"][:10]: bucket for bucket in response.json()["buckets"]}
    assert {day: bucket["entries"] for day, bucket in buckets.items()} == {"2026-11-30": 1, "2026-12-01": 1}
    assert buckets["2026-11-30"]["mean_probabilities"]["joy"] == pytest.approx(
        done[0]["result"]["probabilities"]["joy"], abs=1e-6)

    kept = submit(scoring, tenant, {"type": "emotion", "input": {"text": "Kept on purpose."},
                                    "options": {"store_input": True}})
    assert wait_for_job(scoring.base_url, kept["id"], tenant.headers)["input"] == {"text": "Kept on purpose."}


def test_a_batch_uploaded_score_only_keeps_no_item_text(scoring, make_tenant, db_session, stack_redis):
    tenant = make_tenant()
    texts = [sentinel() for _ in range(25)]
    response = requests.post(f"{scoring.base_url}/v1/batches", headers=tenant.headers, timeout=60, json={
        "items": [{"text": text, "id": f"r{i}", "subject": "journal-3"} for i, text in enumerate(texts)],
        "options": {"store_input": False}})
    assert response.status_code == 202, response.text
    batch = response.json()
    wait_until(lambda: requests.get(f"{scoring.base_url}/v1/batches/{batch['id']}", headers=tenant.headers,
                                    timeout=30).json()["status"] == "completed",
               timeout_s=240, interval_s=0.5, message="batch completed")
    lines = requests.get(f"{scoring.base_url}/v1/batches/{batch['id']}/results", headers=tenant.headers,
                         timeout=30).text.splitlines()
    results = [json.loads(line) for line in lines]
    assert len(results) == 25 and {r["status"] for r in results} == {"succeeded"}
    assert all(r["result"]["top_emotion"] for r in results)
    for text in texts:
        assert places_holding(text, scoring.settings, stack_redis) == []
    assert stored_job(db_session, results[0]["job_id"]).input is None


@pytest.mark.parametrize("options, field", [
    ({"store_input": "no"}, "options.store_input"),
    ({"retention_days": 0}, "options.retention_days"),
    ({"store_transcript": True, "store_input": False, "retention_days": 1.5}, "options.retention_days"),
])
def test_bad_data_options_are_422(stack, make_tenant, options, field):
    tenant = make_tenant()
    response = requests.post(f"{stack.base_url}/v1/jobs", headers=tenant.headers, timeout=30,
                             json={"type": "summarize", "input": {"text": "A day."}, "options": options})
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert field in [error["field"] for error in response.json()["errors"]]


def test_a_score_only_recording_keeps_neither_upload_nor_transcript_unless_asked(scoring, make_tenant, db_session,
                                                                                 spoken_clips):
    tenant = make_tenant()
    done = {}
    for name, options in (("score-only", {"store_input": False}),
                          ("transcript kept", {"store_input": False, "store_transcript": True})):
        with open(spoken_clips["wav"], "rb") as clip:
            response = requests.post(f"{scoring.base_url}/v1/jobs", headers=tenant.headers, timeout=30,
                                     data={"type": "transcribe", "options": json.dumps(options)},
                                     files={"file": ("voice-note.wav", clip)})
        assert response.status_code == 202, response.text
        done[name] = wait_for_job(scoring.base_url, response.json()["id"], tenant.headers, timeout_s=300)
        assert done[name]["status"] == "succeeded", done[name]
        assert done[name]["input"] is None and stored_job(db_session, done[name]["id"]).input is None
    private = done["score-only"]["result"]
    assert "text" not in private and all("text" not in segment for segment in private["segments"])
    assert private["segments"][0]["emotion"]["top_emotion"] and private["emotion"]["probabilities"]
    assert "birds" not in json.dumps(private)
    assert "birds" in done["transcript kept"]["result"]["text"].lower()
    assert not [path for path in Path(scoring.settings.media_dir).rglob("*")
                if any(job["id"] in path.name for job in done.values())]
