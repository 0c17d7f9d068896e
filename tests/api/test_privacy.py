"""Deletion, erasure, export and audit over the API: scopes, documents, pagination, other tenants.

The end-to-end sweeps with real workers are in tests/integration/test_privacy_deletion.py.
"""
from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.problems import assert_problem
from tests.support.scored_entries import Entry, leaning, store_entries
from tests.support.traces import places_holding

START = datetime(2026, 10, 1, tzinfo=UTC)


def entries_of(subject: str, hours: list[int]) -> list[Entry]:
    rng = random.Random(16)
    return [Entry(START + timedelta(hours=hour), leaning(rng, "joy"), subject=subject,
                  metadata={"mood": "ok"}) for hour in hours]


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("DELETE", "/v1/jobs/{id}", "jobs:delete"),
    ("DELETE", "/v1/batches/{id}", "jobs:delete"),
    ("DELETE", "/v1/subjects/someone", "jobs:delete"),
    ("GET", "/v1/erasures/{id}", "jobs:delete"),
    ("GET", "/v1/subjects/someone/export", "subjects:export"),
    ("GET", "/v1/audit", "audit:read"),
])
def test_each_operation_needs_its_scope(client, make_tenant, method, path, scope):
    tenant = make_tenant(scopes=["jobs:read", "jobs:write", "batches:read", "batches:write", "analytics:read"])
    response = client.open(path.format(id=uuid.uuid4()), method=method, headers=tenant.headers)
    body = assert_problem(response, 403, "insufficient-scope")
    assert scope in json.dumps(body)


def test_new_keys_hold_the_privacy_scopes(client, make_tenant):
    tenant = make_tenant()
    assert client.get("/v1/audit", headers=tenant.headers).get_json() == {"data": [], "next_cursor": None}


def test_another_tenants_job_batch_and_erasure_answer_404_and_stay(client, make_tenant, settings):
    owner, other = make_tenant(), make_tenant()
    [job_id] = store_entries(settings.database_url, owner.tenant_id, entries_of("hana", [0]))
    assert_problem(client.delete(f"/v1/jobs/{job_id}", headers=other.headers), 404, "job-not-found")
    assert_problem(client.delete(f"/v1/batches/{uuid.uuid4()}", headers=other.headers), 404, "batch-not-found")
    erasure = client.delete("/v1/subjects/hana", headers=owner.headers).get_json()
    assert_problem(client.get(f"/v1/erasures/{erasure['id']}", headers=other.headers), 404, "erasure-not-found")
    assert client.get(f"/v1/jobs/{job_id}", headers=owner.headers).status_code == 200
    assert client.get("/v1/audit", headers=other.headers).get_json()["data"] == []


def test_a_subject_erasure_is_queued_once_while_pending(client, make_tenant):
    tenant = make_tenant()
    first = client.delete("/v1/subjects/ivan", headers=tenant.headers)
    second = client.delete("/v1/subjects/ivan", headers=tenant.headers)
    other = client.delete("/v1/subjects/jude", headers=tenant.headers)
    assert first.status_code == second.status_code == 202
    document = first.get_json()
    assert document == second.get_json()
    assert document["subject"] == "ivan" and document["status"] == "queued" and document["counts"] is None
    assert first.headers["Location"] == document["links"]["self"] == f"/v1/erasures/{document['id']}"
    assert other.get_json()["id"] != document["id"]
    polled = client.get(document["links"]["self"], headers=tenant.headers)
    assert polled.status_code == 200 and polled.get_json() == document and polled.headers["Retry-After"]


def test_an_invalid_subject_is_a_422(client, make_tenant):
    tenant = make_tenant()
    too_long = "x" * 129
    assert_problem(client.delete(f"/v1/subjects/{too_long}", headers=tenant.headers), 422, "invalid-subject")
    assert_problem(client.get(f"/v1/subjects/{too_long}/export", headers=tenant.headers), 422, "invalid-subject")


def test_export_streams_the_subjects_jobs_oldest_first_as_their_documents(client, make_tenant, settings):
    tenant = make_tenant()
    ids = store_entries(settings.database_url, tenant.tenant_id, entries_of("kira", [5, 1, 3]), text="kira's words")
    store_entries(settings.database_url, tenant.tenant_id, entries_of("liam", [2]))

    response = client.get("/v1/subjects/kira/export", headers=tenant.headers)

    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["id"] for line in lines] == [str(ids[1]), str(ids[2]), str(ids[0])]
    for line in lines:
        assert line == client.get(f"/v1/jobs/{line['id']}", headers=tenant.headers).get_json()
        assert line["input"] == {"text": "kira's words"} and line["metadata"] == {"mood": "ok"}
    [event] = client.get("/v1/audit", headers=tenant.headers).get_json()["data"]
    assert (event["action"], event["target"], event["rows"]) == ("subject.exported", {"subject": "kira"}, 3)
    assert event["actor"]["via"] == "api_key" and event["created_at"].endswith("Z")
    assert client.get("/v1/subjects/nobody/export", headers=tenant.headers).get_data() == b""


def test_the_audit_trail_pages_newest_first_and_holds_no_content(client, make_tenant, settings, redis):
    tenant = make_tenant()
    words = f"audit sentinel {uuid.uuid4().hex}"
    ids = store_entries(settings.database_url, tenant.tenant_id, entries_of("mia", [0, 1, 2]), text=words)
    for job_id in ids:
        assert client.delete(f"/v1/jobs/{job_id}", headers=tenant.headers).status_code == 204

    first = client.get("/v1/audit?limit=2", headers=tenant.headers).get_json()
    rest = client.get(f"/v1/audit?limit=2&cursor={first['next_cursor']}", headers=tenant.headers).get_json()

    events = first["data"] + rest["data"]
    assert rest["next_cursor"] is None
    assert [event["target"]["job_id"] for event in events] == [str(job_id) for job_id in reversed(ids)]
    assert {event["action"] for event in events} == {"job.deleted"}
    assert all(event["rows"] == 1 + 28 for event in events)
    assert places_holding(words, settings, redis) == []
    assert_problem(client.get("/v1/audit?cursor=nonsense", headers=tenant.headers), 400, "invalid-cursor")
