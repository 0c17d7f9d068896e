"""The batches API through the Flask client, against the session's database and real Redis (no worker)."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid

import pytest
from sqlalchemy import func, select, update

from db.models import Batch, Job, JobStatus
from tests.support.problems import assert_problem


def create(client, tenant, **kwargs):
    return client.post("/v1/batches", headers={**tenant.headers, **kwargs.pop("headers", {})}, **kwargs)


def accepted(response):
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def test_json_array_upload_stores_items_as_queued_jobs_and_reports_bad_rows(client, make_tenant, db_session):
    tenant = make_tenant()
    batch = accepted(create(client, tenant, json=["I love it", {"text": "So sad", "id": "c-2"}, {"text": ""}, 5]))
    assert batch["status"] == "running"
    assert batch["format"] == "json"
    assert batch["total_items"] == 2 and batch["invalid_items"] == 2
    assert [(e["row"], e["code"]) for e in batch["errors"]] == [(3, "empty-text"), (4, "invalid-item")]
    assert batch["counts"]["queued"] == 2 and batch["progress"] == 0
    jobs = db_session.scalars(select(Job).where(Job.batch_id == uuid.UUID(batch["id"])).order_by(Job.batch_item)).all()
    assert [(job.batch_item, job.client_id, job.input, job.status, job.queue) for job in jobs] == [
        (1, None, {"text": "I love it"}, JobStatus.QUEUED, "bulk"),
        (2, "c-2", {"text": "So sad"}, JobStatus.QUEUED, "bulk"),
    ]
    assert all(job.tenant_id == tenant.tenant_id and job.type == "emotion" for job in jobs)


def test_items_are_enqueued_in_chunks_not_one_message_each(client, make_tenant, settings, redis):
    tenant = make_tenant()
    before = redis.llen("bulk")
    count = settings.bulk_chunk_size * 2 + 1
    accepted(create(client, tenant, json={"items": [f"text {i}" for i in range(count)]}))
    assert redis.llen("bulk") - before == 3


def test_jsonl_body_and_multipart_csv_and_jsonl_files(client, make_tenant):
    tenant = make_tenant()
    jsonl = '{"text": "one", "id": 1}\n{"text": "two"}\nnot json\n'
    batch = accepted(create(client, tenant, data=jsonl, content_type="application/x-ndjson"))
    assert (batch["format"], batch["total_items"], batch["errors"][0]["row"]) == ("jsonl", 2, 3)

    csv_file = (io.BytesIO(b"id,text\na,Great work!\nb,\n"), "items.csv")
    batch = accepted(create(client, tenant, data={"file": csv_file}, content_type="multipart/form-data"))
    assert (batch["format"], batch["total_items"], batch["errors"]) == (
        "csv", 1, [{"row": 2, "code": "empty-text", "message": "`text` must contain non-whitespace characters."}])

    jsonl_file = (io.BytesIO(jsonl.encode()), "upload.bin")
    batch = accepted(create(client, tenant, data={"file": jsonl_file, "format": "jsonl"},
                            content_type="multipart/form-data"))
    assert batch["format"] == "jsonl"


@pytest.mark.parametrize("kwargs, status, slug", [
    ({"json": []}, 422, "empty-batch"),
    ({"json": ["", "  "]}, 422, "no-valid-items"),
    ({"json": {"items": ["a"], "surprise": 1}}, 422, "validation-error"),
    ({"json": {"text": "not a list"}}, 422, "validation-error"),
    ({"data": "text\nhi\n", "content_type": "application/xml"}, 415, "unsupported-media-type"),
    ({"data": "body\nhi\n", "content_type": "text/csv"}, 422, "invalid-csv-header"),
    ({"data": {"format": "csv"}, "content_type": "multipart/form-data"}, 422, "missing-file"),
    ({"data": {"file": (io.BytesIO(b"x"), "a.xml")}, "content_type": "multipart/form-data"}, 422, "unknown-format"),
])
def test_uploads_refused_as_a_whole(client, make_tenant, kwargs, status, slug):
    assert_problem(create(client, make_tenant(), **kwargs), status, slug)


def test_upload_limits_on_items_and_bytes(app, client, make_tenant, settings):
    tenant = make_tenant()
    small = dataclasses.replace(settings, batch_max_items=3, batch_max_bytes=200)
    app.config["SAMO_SETTINGS"] = small
    try:
        problem = assert_problem(create(client, tenant, json=["a", "b", "c", "d"]), 413, "too-many-items")
        assert problem["max_items"] == 3
        assert_problem(create(client, tenant, data="\n".join(['"x"'] * 100), content_type="application/x-ndjson"),
                       413, "payload-too-large")
    finally:
        app.config["SAMO_SETTINGS"] = settings


def test_a_batch_upload_may_be_larger_than_the_json_body_limit(client, make_tenant, settings):
    texts = ["a fairly long sentence about feelings " * 20] * (settings.max_request_bytes // 700 + 10)
    body = json.dumps(texts)
    assert len(body) > settings.max_request_bytes
    response = create(client, make_tenant(), data=body, content_type="application/json")
    assert accepted(response)["total_items"] == len(texts)


def test_batches_in_flight_are_limited_per_tenant(app, client, make_tenant, settings):
    tenant = make_tenant()
    app.config["SAMO_SETTINGS"] = dataclasses.replace(settings, batches_in_flight=1)
    try:
        accepted(create(client, tenant, json=["one"]))
        problem = assert_problem(create(client, tenant, json=["two"]), 429, "too-many-batches-in-flight")
        assert problem["limit"] == 1
        accepted(create(client, make_tenant(), json=["another tenant"]))
    finally:
        app.config["SAMO_SETTINGS"] = settings


def test_batch_items_do_not_count_toward_the_jobs_in_flight_cap(client, make_tenant):
    tenant = make_tenant(tier="oneflight")
    accepted(create(client, tenant, json=["a", "b", "c"]))
    response = client.post("/v1/jobs", json={"type": "emotion", "input": {"text": "hi"}}, headers=tenant.headers)
    assert response.status_code == 202, response.get_data(as_text=True)


def test_get_list_and_items_of_a_batch(client, make_tenant):
    tenant = make_tenant()
    first = accepted(create(client, tenant, json=["x"]))
    second = accepted(create(client, tenant, json=[{"text": t, "id": f"c{i}"} for i, t in enumerate("abc")]))
    got = client.get(f"/v1/batches/{second['id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.headers["Retry-After"]
    assert got.get_json()["counts"] == {"queued": 3, "running": 0, "succeeded": 0, "failed": 0, "canceled": 0}

    page = client.get("/v1/batches?limit=1", headers=tenant.headers).get_json()
    assert [b["id"] for b in page["data"]] == [second["id"]]
    rest = client.get(f"/v1/batches?limit=1&cursor={page['next_cursor']}", headers=tenant.headers).get_json()
    assert [b["id"] for b in rest["data"]] == [first["id"]] and rest["next_cursor"] is None
    assert rest["data"][0]["counts"]["queued"] == 1

    jobs = client.get(f"/v1/batches/{second['id']}/jobs?limit=2", headers=tenant.headers).get_json()
    assert [(j["row"], j["client_id"], j["input"]["text"]) for j in jobs["data"]] == [(1, "c0", "a"), (2, "c1", "b")]
    more = client.get(f"/v1/batches/{second['id']}/jobs?cursor={jobs['next_cursor']}", headers=tenant.headers)
    assert [j["row"] for j in more.get_json()["data"]] == [3]
    item = client.get(jobs["data"][0]["links"]["self"], headers=tenant.headers)
    assert item.status_code == 200 and item.get_json()["status"] == "queued"


def test_results_stream_finished_items_in_row_order_as_jsonl_or_csv(client, make_tenant, db_session):
    tenant = make_tenant()
    batch = accepted(create(client, tenant, json=[{"text": "happy", "id": "h"}, "pending", "broken"]))
    batch_id = uuid.UUID(batch["id"])
    result = {"top_emotion": "joy", "confidence": 0.9, "emotions": ["joy", "love"], "probabilities": {"joy": 0.9},
              "truncated": False, "cached": True}
    db_session.execute(update(Job).where(Job.batch_id == batch_id, Job.batch_item == 1)
                       .values(status=JobStatus.SUCCEEDED, result=result))
    db_session.execute(update(Job).where(Job.batch_id == batch_id, Job.batch_item == 3)
                       .values(status=JobStatus.FAILED, error_code="invalid_input", error_message="bad"))
    db_session.commit()

    response = client.get(f"/v1/batches/{batch_id}/results", headers=tenant.headers)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.headers["X-Batch-Status"] == "running"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [(line["row"], line["id"], line["status"]) for line in lines] == [(1, "h", "succeeded"), (3, None, "failed")]
    assert lines[0]["result"] == result
    assert lines[1]["error"] == {"code": "invalid_input", "message": "bad"}

    csv_response = client.get(f"/v1/batches/{batch_id}/results", headers={**tenant.headers, "Accept": "text/csv"})
    assert csv_response.mimetype == "text/csv"
    rows = csv_response.get_data(as_text=True).splitlines()
    assert rows[0] == ("row,id,job_id,status,top_emotion,confidence,emotions,cached,error_code,error_message,"
                       "subject,occurred_at,metadata")
    assert rows[1].startswith("1,h,") and ",succeeded,joy,0.9,joy;love,true,,,," in rows[1]
    assert ",failed,,,,,invalid_input,bad,," in rows[2]
    assert_problem(client.get(f"/v1/batches/{batch_id}/results?format=xml", headers=tenant.headers),
                   400, "invalid-format")


def test_cancel_cancels_unfinished_items_once(client, make_tenant, db_session):
    tenant = make_tenant()
    batch = accepted(create(client, tenant, json=["a", "b"]))
    db_session.execute(update(Job).where(Job.batch_id == uuid.UUID(batch["id"]), Job.batch_item == 1)
                       .values(status=JobStatus.SUCCEEDED, result={}))
    db_session.commit()
    response = client.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers)
    assert response.status_code == 200
    canceled = response.get_json()
    assert canceled["status"] == "canceled" and canceled["finished_at"]
    assert canceled["counts"]["succeeded"] == 1 and canceled["counts"]["canceled"] == 1
    assert canceled["progress"] == 1.0 and canceled["eta_s"] is None
    assert_problem(client.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers),
                   409, "batch-not-cancelable")
    stored = db_session.get(Batch, uuid.UUID(batch["id"]))
    db_session.refresh(stored)
    assert stored.status.value == "canceled"


def test_other_tenants_batches_are_not_found_and_scopes_are_enforced(client, make_tenant):
    owner, other = make_tenant(), make_tenant()
    batch = accepted(create(client, owner, json=["mine"]))
    for path in ("", "/results", "/jobs"):
        assert_problem(client.get(f"/v1/batches/{batch['id']}{path}", headers=other.headers), 404, "batch-not-found")
    assert_problem(client.post(f"/v1/batches/{batch['id']}/cancel", headers=other.headers), 404, "batch-not-found")
    assert client.get("/v1/batches", headers=other.headers).get_json()["data"] == []
    reader = make_tenant(scopes=["batches:read"])
    assert_problem(create(client, reader, json=["x"]), 403, "insufficient-scope")
    jobs_only = make_tenant(scopes=["jobs:read", "jobs:write"])
    assert_problem(client.get("/v1/batches", headers=jobs_only.headers), 403, "insufficient-scope")


def test_a_large_upload_is_stored_whole(client, make_tenant, db_session):
    tenant = make_tenant()
    batch = accepted(create(client, tenant, json=[f"text number {i}" for i in range(5000)]))
    stored = db_session.scalar(select(func.count()).select_from(Job).where(Job.batch_id == uuid.UUID(batch["id"])))
    assert stored == 5000


def test_openapi_documents_the_batch_endpoints(client):
    document = client.get("/openapi.json").get_json()
    for path in ("/v1/batches", "/v1/batches/{batch_id}", "/v1/batches/{batch_id}/results",
                 "/v1/batches/{batch_id}/cancel", "/v1/batches/{batch_id}/jobs"):
        assert path in document["paths"], path
    assert {"BatchOut", "BatchCreate", "BatchResultLine"} <= set(document["components"]["schemas"])


def test_stale_chunks_are_rebuilt_from_items_whose_message_may_be_lost(client, make_tenant, db_session):
    from datetime import timedelta

    from db.batches import stale_chunks
    from db.models import utcnow

    tenant = make_tenant()
    batch_id = uuid.UUID(accepted(create(client, tenant, json=[f"t{i}" for i in range(5)]))["id"])
    canceled_id = uuid.UUID(accepted(create(client, tenant, json=["gone"]))["id"])
    client.post(f"/v1/batches/{canceled_id}/cancel", headers=tenant.headers)
    db_session.execute(update(Batch).where(Batch.id == batch_id).values(chunk_size=2))
    long_ago = utcnow() - timedelta(hours=1)
    db_session.execute(update(Job).where(Job.batch_id == batch_id, Job.batch_item.in_([1, 2, 4]))
                       .values(enqueued_at=None, created_at=long_ago))
    db_session.execute(update(Job).where(Job.batch_id == batch_id, Job.batch_item == 5)
                       .values(enqueued_at=long_ago))
    db_session.commit()

    def mine(chunks):
        return [rows for chunk_batch, rows in chunks if chunk_batch in (batch_id, canceled_id)]

    assert mine(stale_chunks(db_session, None, 7200, 30)) == [[1, 2], [4]]
    assert mine(stale_chunks(db_session, 300, 7200, 30)) == [[1, 2], [4, 5]]


def test_a_batch_webhook_is_stored_with_the_batch_from_json_or_multipart(client, make_tenant, db_session):
    from db.models import WebhookSubscription

    tenant = make_tenant()
    hook = {"url": "https://hooks.example.com/samo", "events": ["batch.completed", "batch.progress"]}
    batch = accepted(create(client, tenant, json={"items": ["a"], "webhook": hook}))
    from_form = accepted(create(client, tenant, content_type="multipart/form-data",
                                data={"file": (io.BytesIO(b'"b"\n'), "x.jsonl"), "webhook": json.dumps(hook)}))
    for batch_id in (batch["id"], from_form["id"]):
        subscription = db_session.scalar(select(WebhookSubscription)
                                         .where(WebhookSubscription.batch_id == uuid.UUID(batch_id)))
        assert subscription is not None and subscription.url == hook["url"]
    assert_problem(create(client, tenant, json={"items": ["a"], "webhook": {"url": "http://127.0.0.1/x"}}),
                   422, "invalid-webhook-url")
    bad_form = create(client, tenant, content_type="multipart/form-data",
                      data={"file": (io.BytesIO(b'"b"\n'), "x.jsonl"), "webhook": '{"url": 3}'})
    assert assert_problem(bad_form, 422, "validation-error")["errors"][0]["field"].startswith("webhook.")


def test_the_jobs_list_filters_by_batch(client, make_tenant):
    tenant = make_tenant()
    batch = create(client, tenant, json=["one", "two"]).get_json()
    interactive = client.post("/v1/jobs", json={"type": "emotion", "input": {"text": "alone"}},
                              headers=tenant.headers).get_json()
    items = client.get(f"/v1/jobs?batch={batch['id']}", headers=tenant.headers).get_json()["data"]
    assert sorted(job["input"]["text"] for job in items) == ["one", "two"]
    alone = client.get("/v1/jobs?batch=none", headers=tenant.headers).get_json()["data"]
    assert [job["id"] for job in alone] == [interactive["id"]]
    other = make_tenant()
    assert client.get(f"/v1/jobs?batch={batch['id']}", headers=other.headers).get_json()["data"] == []


def test_an_idempotency_key_replays_the_same_upload_and_refuses_a_different_one(client, make_tenant, db_session):
    tenant = make_tenant()
    headers = {**tenant.headers, "Idempotency-Key": "upload-1"}
    first = client.post("/v1/batches", json=["one", "", "two"], headers=headers)
    assert first.status_code == 202
    again = client.post("/v1/batches", data='[ "one",  "", "two" ]', content_type="application/json", headers=headers)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["total_items"] == 2 and again.get_json()["invalid_items"] == 1
    items = db_session.scalar(select(func.count()).select_from(Job).where(Job.tenant_id == tenant.tenant_id))
    assert items == 2
    different = client.post("/v1/batches", json=["one", "three"], headers=headers)
    assert_problem(different, 409, "idempotency-key-reused")
    assert client.post("/v1/batches", json=["one", "three"], headers={**headers, "Idempotency-Key": "upload-2"}
                       ).status_code == 202
    other_tenant = make_tenant()
    assert client.post("/v1/batches", json=["one", "three"],
                       headers={**other_tenant.headers, "Idempotency-Key": "upload-1"}).status_code == 202


def test_the_same_file_is_the_same_upload_whatever_the_multipart_boundary(client, make_tenant):
    tenant = make_tenant()
    headers = {**tenant.headers, "Idempotency-Key": "file-1"}
    body = b'{"text": "I love it", "id": "a"}\n{"text": "So sad", "id": "b"}\n'
    first = client.post("/v1/batches", data={"file": (io.BytesIO(body), "rows.jsonl")}, headers=headers)
    again = client.post("/v1/batches", data={"file": (io.BytesIO(body), "rows.jsonl")}, headers=headers)
    assert first.status_code == 202 and again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"


def test_csv_results_neutralise_cells_a_spreadsheet_would_run_as_formulas(client, make_tenant, db_session):
    tenant = make_tenant()
    ids = ["=HYPERLINK(\"http://evil.example\")", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", "a=b"]
    batch = accepted(create(client, tenant, json=[{"text": f"text {i}", "id": value} for i, value in enumerate(ids)]))
    batch_id = uuid.UUID(batch["id"])
    db_session.execute(update(Job).where(Job.batch_id == batch_id)
                       .values(status=JobStatus.FAILED, error_code="invalid_input", error_message="=cmd|' /C calc'!A0"))
    db_session.commit()

    response = client.get(f"/v1/batches/{batch_id}/results?format=csv", headers=tenant.headers)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["id"] for row in rows] == ["'" + value for value in ids[:6]] + ["plain", "a=b"]
    assert {row["error_message"] for row in rows} == {"'=cmd|' /C calc'!A0"}
    jsonl = client.get(f"/v1/batches/{batch_id}/results?format=jsonl", headers=tenant.headers)
    assert [json.loads(line)["id"] for line in jsonl.get_data(as_text=True).splitlines()] == ids
