"""The jobs API through the Flask client, against the session's database and real Redis (no worker)."""
from __future__ import annotations

import uuid

import pytest

from tests.support.http import submit
from tests.support.problems import assert_problem


@pytest.fixture
def app(app, plain_app, submit_path):
    """Every test here runs on both submission paths (tests/api/conftest.py)."""
    return app if submit_path == "group-commit" else plain_app


def test_submit_answers_202_with_location_and_queued_job(client, make_tenant):
    tenant = make_tenant()
    response = submit(client, tenant)
    assert response.status_code == 202
    job = response.get_json()
    assert job["status"] == "queued"
    assert job["type"] == "emotion"
    assert job["input"] == {"text": "Thank you so much!"}
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    polled = client.get(response.headers["Location"], headers=tenant.headers)
    assert polled.status_code == 200
    assert polled.get_json()["id"] == job["id"]
    # SQLite once read its timestamps back naive, without the Z the 202 had.
    assert polled.get_json()["created_at"] == job["created_at"] and job["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"type": "emotion", "input": {}}, "validation-error"),
        ({"type": "emotion", "input": {"text": ""}}, "empty-text"),
        ({"type": "emotion", "input": {"text": "   \n\t"}}, "empty-text"),
        ({"type": "emotion", "input": {"text": 42}}, "validation-error"),
        ({"type": "horoscope", "input": {"text": "hi"}}, "unknown-job-type"),
        ({"input": {"text": "hi"}}, "unknown-job-type"),
        ({"type": "emotion", "input": {"text": "hi"}, "surprise": 1}, "validation-error"),
        (["not", "an", "object"], "validation-error"),
    ],
)
def test_bad_job_bodies_get_422_problems(client, make_tenant, body, slug):
    assert_problem(submit(client, make_tenant(), body), 422, slug)


def test_text_over_the_limit_is_refused_with_the_limit(client, make_tenant, settings):
    body = {"type": "emotion", "input": {"text": "a" * (settings.max_document_chars + 1)}}
    problem = assert_problem(submit(client, make_tenant(), body), 422, "text-too-long")
    assert problem["max_chars"] == settings.max_document_chars


def test_invalid_json_is_a_400_problem(client, make_tenant):
    response = client.post("/v1/jobs", data="{not json", content_type="application/json",
                           headers=make_tenant().headers)
    assert_problem(response, 400, "invalid-json")


def test_non_json_body_is_a_415_problem(client, make_tenant):
    response = client.post("/v1/jobs", data="text=hi", content_type="application/x-www-form-urlencoded",
                           headers=make_tenant().headers)
    assert_problem(response, 415, "unsupported-media-type")


def test_body_over_the_size_limit_is_a_413_problem(client, make_tenant, settings):
    huge = '{"type": "emotion", "input": {"text": "' + "a" * settings.max_request_bytes + '"}}'
    response = client.post("/v1/jobs", data=huge, content_type="application/json", headers=make_tenant().headers)
    assert_problem(response, 413, "payload-too-large")


def test_unknown_route_and_method_are_problems(client, make_tenant):
    assert_problem(client.get("/v1/nothing-here", headers=make_tenant().headers), 404, "not-found")
    assert_problem(client.delete("/v1/jobs", headers=make_tenant().headers), 405, "method-not-allowed")


def test_same_idempotency_key_and_body_returns_the_same_job(client, make_tenant):
    tenant = make_tenant()
    first = submit(client, tenant, headers={"Idempotency-Key": "order-1"})
    again = submit(client, tenant, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_same_idempotency_key_with_another_body_is_a_409(client, make_tenant):
    tenant = make_tenant()
    submit(client, tenant, headers={"Idempotency-Key": "order-2"})
    other = {"type": "emotion", "input": {"text": "Something else entirely"}}
    assert_problem(submit(client, tenant, other, headers={"Idempotency-Key": "order-2"}), 409,
                   "idempotency-key-reused")


def test_idempotency_keys_are_per_tenant(client, make_tenant):
    first = submit(client, make_tenant(), headers={"Idempotency-Key": "shared"})
    second = submit(client, make_tenant(), headers={"Idempotency-Key": "shared"})
    assert first.get_json()["id"] != second.get_json()["id"]


def test_another_tenants_job_is_a_404(client, make_tenant):
    owner, stranger = make_tenant(), make_tenant()
    job_id = submit(client, owner).get_json()["id"]
    assert_problem(client.get(f"/v1/jobs/{job_id}", headers=stranger.headers), 404, "job-not-found")
    assert_problem(client.post(f"/v1/jobs/{job_id}/cancel", headers=stranger.headers), 404, "job-not-found")
    assert_problem(client.get(f"/v1/jobs/{uuid.uuid4()}", headers=owner.headers), 404, "job-not-found")


def test_cancel_a_queued_job_then_cancel_again_is_a_409(client, make_tenant):
    tenant = make_tenant()
    job_id = submit(client, tenant).get_json()["id"]
    canceled = client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers)
    assert canceled.status_code == 200
    assert canceled.get_json()["status"] == "canceled"
    assert canceled.get_json()["finished_at"]
    assert_problem(client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers), 409, "job-not-cancelable")


def test_a_cancel_sends_job_canceled_to_who_asked_for_it_once(client, make_tenant, db_session):
    from sqlalchemy import select

    from db.models import WebhookDelivery

    tenant = make_tenant()
    asked = {"type": "emotion", "input": {"text": "never mind"},
             "webhook": {"url": "https://hooks.example.com/c", "events": ["job.canceled"]}}
    not_asked = {**asked, "webhook": {"url": "https://hooks.example.com/s", "events": ["job.succeeded"]}}
    ids = [submit(client, tenant, body).get_json()["id"] for body in (asked, not_asked)]
    for job_id in ids:
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers).status_code == 200
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers).status_code == 409
    deliveries = db_session.scalars(select(WebhookDelivery)
                                    .where(WebhookDelivery.job_id.in_([uuid.UUID(i) for i in ids]))).all()
    assert [(str(d.job_id), d.event_type) for d in deliveries] == [(ids[0], "job.canceled")]


def test_list_is_newest_first_paginated_by_cursor_and_filtered_by_status(client, make_tenant):
    tenant = make_tenant()
    ids = [submit(client, tenant, {"type": "emotion", "input": {"text": f"text {n}"}}).get_json()["id"]
           for n in range(5)]
    client.post(f"/v1/jobs/{ids[0]}/cancel", headers=tenant.headers)

    seen, cursor = [], None
    while True:
        page = client.get("/v1/jobs", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=tenant.headers).get_json()
        seen += [job["id"] for job in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))

    canceled = client.get("/v1/jobs?status=canceled", headers=tenant.headers).get_json()["data"]
    assert [job["id"] for job in canceled] == [ids[0]]


@pytest.mark.parametrize(("query", "slug"), [("limit=0", "invalid-limit"), ("limit=abc", "invalid-limit"),
                                              ("status=done", "invalid-status-filter"),
                                              ("batch=last-week", "invalid-batch-filter"),
                                              ("cursor=%%%", "invalid-cursor")])
def test_bad_list_parameters_are_400_problems(client, make_tenant, query, slug):
    assert_problem(client.get(f"/v1/jobs?{query}", headers=make_tenant().headers), 400, slug)


def test_jobs_in_flight_are_capped_per_tenant(client, make_tenant):
    tenant = make_tenant(tier="oneflight")
    assert submit(client, tenant).status_code == 202
    response = submit(client, tenant)
    problem = assert_problem(response, 429, "too-many-jobs-in-flight")
    assert response.headers["Retry-After"]
    assert problem["detail"]


def test_openapi_document_describes_the_jobs_api(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert "post" in document["paths"]["/v1/jobs"]
    create = document["components"]["schemas"]["JobCreate"]
    assert set(create["required"]) >= {"type", "input"}
    assert b"/openapi.json" in client.get("/docs").data
