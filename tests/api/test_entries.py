"""Subjects, `occurred_at` and `metadata` on jobs: checked, stored, returned and filtered, on
PostgreSQL and SQLite and on both submission paths (no worker)."""
from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest

from tests.support import audio
from tests.support.http import submit
from tests.support.problems import assert_problem

ENTRY = {"type": "emotion", "input": {"text": "A long walk by the sea today."}, "subject": "user-42",
         "occurred_at": "2026-03-08T07:30:00-05:00", "metadata": {"tags": ["walk", "sea"], "mood_app": "v2"}}


@pytest.fixture(scope="module")
def settings(settings, tmp_path_factory):
    """Uploads in a media directory of this module's own: a worker of the session may run (and
    remove) other modules' uploads, never these."""
    return dataclasses.replace(settings, media_dir=str(tmp_path_factory.mktemp("entries-media")))


@pytest.fixture(scope="module")
def apps(settings):
    from api import create_app

    return {path: create_app(dataclasses.replace(settings, group_commit=on), {"TESTING": True})
            for path, on in (("group-commit", True), ("plain", False))}


@pytest.fixture
def app(apps, submit_path):
    return apps[submit_path]


def test_entry_fields_are_stored_and_read_back(client, make_tenant):
    tenant = make_tenant()
    accepted = submit(client, tenant, ENTRY)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    job = client.get(accepted.headers["Location"], headers=tenant.headers).get_json()
    assert job["subject"] == "user-42"
    assert job["occurred_at"] == "2026-03-08T12:30:00Z"
    assert job["metadata"] == {"tags": ["walk", "sea"], "mood_app": "v2"}
    assert accepted.get_json()["occurred_at"] == job["occurred_at"]


def test_occurred_at_defaults_to_the_submission_time(client, make_tenant):
    tenant = make_tenant()
    job = submit(client, tenant).get_json()
    assert job["occurred_at"] == job["created_at"]
    assert job["subject"] is None and job["metadata"] is None


@pytest.mark.parametrize("field, value", [
    ("subject", ""), ("subject", "x" * 129), ("subject", 42), ("subject", "tab\there"),
    ("occurred_at", "2026-03-08T07:30:00"), ("occurred_at", "yesterday"), ("occurred_at", 1767225600),
    ("occurred_at", "2026-02-30T07:30:00Z"),
    ("metadata", {f"k{n}": "v" for n in range(17)}), ("metadata", {"tags": [1, 2]}), ("metadata", {"n": 3}),
    ("metadata", {"k": "v" * 257}), ("metadata", {"k" * 65: "v"}), ("metadata", {"tags": ["t"] * 33}),
    ("metadata", ["tags"]), ("metadata", {"deep": {"er": "x"}}),
])
def test_bad_entry_fields_are_422_problems(client, make_tenant, field, value):
    body = assert_problem(submit(client, make_tenant(), {**ENTRY, field: value}), 422, "validation-error")
    assert body["errors"][0]["field"].startswith(field)


def test_the_list_filters_by_subject_and_occurred_at(client, make_tenant):
    tenant = make_tenant()
    for subject, day in (("a", "01"), ("a", "02"), ("a", "03"), ("b", "02")):
        assert submit(client, tenant, {**ENTRY, "subject": subject,
                                       "occurred_at": f"2026-05-{day}T10:00:00+02:00"}).status_code == 202

    def listed(query: str) -> list[tuple]:
        response = client.get(f"/v1/jobs?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return sorted((job["subject"], job["occurred_at"][:10]) for job in response.get_json()["data"])

    assert listed("subject=a") == [("a", "2026-05-01"), ("a", "2026-05-02"), ("a", "2026-05-03")]
    assert listed("subject=a&occurred_after=2026-05-02T08:00:00Z&occurred_before=2026-05-03T08:00:00Z") == [
        ("a", "2026-05-02")]
    assert listed("occurred_after=2026-05-02T00:00:00Z&occurred_before=2026-05-03T00:00:00Z") == [
        ("a", "2026-05-02"), ("b", "2026-05-02")]
    assert listed("subject=c") == []
    assert_problem(client.get("/v1/jobs?occurred_after=monday", headers=tenant.headers), 400, "invalid-entry-filter")
    assert_problem(client.get("/v1/jobs?subject=", headers=tenant.headers), 400, "invalid-entry-filter")


def test_another_tenants_subject_is_not_listed(client, make_tenant):
    mine, theirs = make_tenant(), make_tenant()
    submit(client, theirs, ENTRY)
    assert client.get("/v1/jobs?subject=user-42", headers=mine.headers).get_json()["data"] == []


def test_the_openapi_document_describes_the_entry_fields(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    create = schemas["JobCreate"]["properties"]
    assert {"subject", "occurred_at", "metadata"} <= set(create)
    assert {"subject", "occurred_at", "metadata"} <= set(schemas["JobOut"]["properties"])


@pytest.fixture(scope="module")
def tone(tmp_path_factory):
    return audio.tone(tmp_path_factory.mktemp("entry-audio") / "tone.wav", 1.0)


def upload(client, tenant, path, **fields):
    data = {"type": "transcribe", "file": (io.BytesIO(path.read_bytes()), path.name), **fields}
    return client.post("/v1/jobs", data=data, content_type="multipart/form-data", headers=tenant.headers)


def test_form_fields_carry_the_entry(client, make_tenant, tone):
    tenant = make_tenant()
    response = upload(client, tenant, tone, subject="user-7", occurred_at="2026-01-05T23:50:00+05:45",
                      metadata='{"tags": ["voice"]}')
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()
    assert (job["subject"], job["occurred_at"], job["metadata"]) == ("user-7", "2026-01-05T18:05:00Z",
                                                                     {"tags": ["voice"]})
    body = assert_problem(upload(client, tenant, tone, metadata="[1]"), 422, "validation-error")
    assert body["errors"][0]["field"] == "metadata"
    assert_problem(upload(client, tenant, tone, occurred_at="noon"), 422, "validation-error")


def test_batch_items_carry_the_entry_into_their_jobs_and_results(client, make_tenant, db_session, settings):
    from sqlalchemy import update

    from db.models import Job, JobStatus
    from db.session import session_scope

    tenant = make_tenant()
    jsonl = "\n".join(json.dumps(item) for item in (
        {"text": "Fine day.", "subject": "s1", "occurred_at": "2026-04-01T09:00:00+05:30", "metadata": {"k": "v"}},
        {"text": "Bad day.", "subject": "s1", "occurred_at": "not a time"},
        {"text": "No subject."},
    ))
    response = client.post("/v1/batches", data=jsonl, content_type="application/x-ndjson", headers=tenant.headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    batch = response.get_json()
    assert batch["errors"] == [{"row": 2, "code": "invalid-occurred-at",
                                "message": batch["errors"][0]["message"]}]
    csv_upload = "text,subject,occurred_at,metadata\nHello,=cmd,2026-04-01T00:00:00Z,\"{\"\"tags\"\": [\"\"a\"\"]}\"\n"
    from_csv = client.post("/v1/batches", data=csv_upload, content_type="text/csv", headers=tenant.headers)
    assert from_csv.status_code == 202, from_csv.get_data(as_text=True)
    with session_scope(settings.database_url) as session:
        session.execute(update(Job).where(Job.tenant_id == tenant.tenant_id)
                        .values(status=JobStatus.SUCCEEDED, result={"top_emotion": "joy", "emotions": []}))
    lines = [json.loads(line) for line in client.get(f"/v1/batches/{batch['id']}/results",
                                                     headers=tenant.headers).get_data(as_text=True).splitlines()]
    assert [(line["row"], line["subject"], line["occurred_at"], line["metadata"]) for line in lines][0] == (
        1, "s1", "2026-04-01T03:30:00Z", {"k": "v"})
    assert lines[1]["subject"] is None and lines[1]["occurred_at"]
    rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/batches/{from_csv.get_json()['id']}/results?format=csv",
                                                      headers=tenant.headers).get_data(as_text=True))))
    assert (rows[0]["subject"], rows[0]["occurred_at"], json.loads(rows[0]["metadata"])) == (
        "'=cmd", "2026-04-01T00:00:00Z", {"tags": ["a"]})
