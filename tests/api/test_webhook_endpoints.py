"""The `/v1/webhooks` API through the Flask client, against the session's database (no worker)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from db.models import WebhookEndpoint, WebhookSubscription, WebhookTenantSecret
from tests.support.http import EMOTION_JOB, submit
from tests.support.problems import PROBLEM

RECEIVER = "https://hooks.example.com/samo"


def register(client, tenant, **body):
    return client.post("/v1/webhooks/endpoints", json={"url": RECEIVER, **body}, headers=tenant.headers)


def problem_slug(response) -> str:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return response.get_json()["type"].rsplit("/", 1)[-1]


def test_an_endpoint_is_created_with_a_secret_shown_once(client, make_tenant, db_session):
    tenant = make_tenant()
    created = register(client, tenant, events=["job.succeeded"], description="prod receiver")
    assert created.status_code == 201
    endpoint = created.get_json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["events"] == ["job.succeeded"] and endpoint["enabled"] is True
    assert created.headers["Location"] == f"/v1/webhooks/endpoints/{endpoint['id']}"
    assert created.headers["Cache-Control"] == "no-store"

    fetched = client.get(created.headers["Location"], headers=tenant.headers).get_json()
    assert "secret" not in fetched and fetched["description"] == "prod receiver"
    listed = client.get("/v1/webhooks/endpoints", headers=tenant.headers).get_json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]

    stored = db_session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
    assert endpoint["secret"] not in stored.secret_ciphertext


def test_events_default_to_job_and_batch_completion(client, make_tenant):
    endpoint = register(client, make_tenant()).get_json()
    assert endpoint["events"] == ["batch.completed", "job.failed", "job.succeeded"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://localhost:8080/hook",
    "ftp://hooks.example.com/x", "https://user:pw@hooks.example.com/",
    "http://2130706433/", "http://127.1/", "http://0x7f.1/", "http://017700000001/",
])
def test_internal_and_non_http_urls_are_refused_at_registration(client, make_tenant, url):
    response = client.post("/v1/webhooks/endpoints", json={"url": url}, headers=make_tenant().headers)
    assert response.status_code == 422
    assert problem_slug(response) == "invalid-webhook-url"


def test_a_loopback_refusal_says_which_setting_allows_it(client, make_tenant):
    response = client.post("/v1/webhooks/endpoints", json={"url": "http://127.1/hook"}, headers=make_tenant().headers)
    assert problem_slug(response) == "invalid-webhook-url"
    assert "SAMO_WEBHOOK_ALLOWED_DESTINATIONS" in response.get_json()["detail"]


def test_unknown_events_are_refused(client, make_tenant):
    response = register(client, make_tenant(), events=["job.exploded"])
    assert response.status_code == 422 and problem_slug(response) == "validation-error"


def test_an_endpoint_may_subscribe_to_subject_shifts(client, make_tenant):
    created = register(client, make_tenant(), events=["subject.shift_detected", "job.succeeded"])
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["events"] == ["job.succeeded", "subject.shift_detected"]


def test_update_disable_reenable_and_delete(client, make_tenant):
    tenant = make_tenant()
    location = register(client, tenant).headers["Location"]
    changed = client.patch(location, json={"events": ["job.failed"], "enabled": False}, headers=tenant.headers)
    assert changed.get_json()["events"] == ["job.failed"]
    assert changed.get_json()["enabled"] is False and changed.get_json()["disabled_reason"]
    enabled = client.patch(location, json={"enabled": True}, headers=tenant.headers).get_json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None
    refused = client.patch(location, json={"url": "http://10.1.1.1/"}, headers=tenant.headers)
    assert refused.status_code == 422
    assert client.delete(location, headers=tenant.headers).status_code == 204
    assert client.get(location, headers=tenant.headers).status_code == 404


def test_rotating_a_secret_keeps_the_old_one_valid_for_the_overlap(client, make_tenant, settings):
    tenant = make_tenant()
    created = register(client, tenant).get_json()
    rotated = client.post(f"/v1/webhooks/endpoints/{created['id']}/rotate-secret", headers=tenant.headers)
    assert rotated.status_code == 200
    document = rotated.get_json()
    assert document["secret"].startswith("whsec_") and document["secret"] != created["secret"]
    assert document["previous_secret_expires_at"] is not None


def test_another_tenants_endpoints_and_deliveries_answer_404(client, make_tenant):
    owner, other = make_tenant(), make_tenant()
    location = register(client, owner).headers["Location"]
    for method, path in (("get", location), ("patch", location), ("delete", location),
                         ("post", location + "/rotate-secret"), ("get", location + "/deliveries"),
                         ("get", f"/v1/webhooks/deliveries/{uuid.uuid4()}"),
                         ("post", f"/v1/webhooks/deliveries/{uuid.uuid4()}/redeliver")):
        response = getattr(client, method)(path, headers=other.headers, json={} if method == "patch" else None)
        assert response.status_code == 404, (method, path)


def test_webhook_management_needs_its_scope(client, make_tenant):
    tenant = make_tenant(scopes=["jobs:read", "jobs:write"])
    for response in (register(client, tenant), client.get("/v1/webhooks/endpoints", headers=tenant.headers),
                     client.get("/v1/webhooks/signing-secret", headers=tenant.headers)):
        assert response.status_code == 403 and problem_slug(response) == "insufficient-scope"


def test_the_submission_signing_secret_is_made_once_and_rotates(client, make_tenant, db_session):
    tenant = make_tenant()
    first = client.get("/v1/webhooks/signing-secret", headers=tenant.headers).get_json()
    again = client.get("/v1/webhooks/signing-secret", headers=tenant.headers).get_json()
    assert first["secret"].startswith("whsec_") and again["secret"] == first["secret"]
    rotated = client.post("/v1/webhooks/signing-secret/rotate", headers=tenant.headers).get_json()
    assert rotated["secret"] != first["secret"] and rotated["previous_secret_expires_at"]
    stored = db_session.get(WebhookTenantSecret, tenant.tenant_id)
    assert rotated["secret"] not in stored.secret_ciphertext


def test_a_job_can_carry_its_own_webhook(client, make_tenant, db_session):
    tenant = make_tenant()
    response = submit(client, tenant, {**EMOTION_JOB, "webhook": {"url": RECEIVER, "events": ["job.succeeded"]}})
    assert response.status_code == 202
    job_id = uuid.UUID(response.get_json()["id"])
    subscription = db_session.scalar(select(WebhookSubscription).where(WebhookSubscription.job_id == job_id))
    assert (subscription.url, subscription.events) == (RECEIVER, ["job.succeeded"])
    assert db_session.get(WebhookTenantSecret, tenant.tenant_id) is not None


@pytest.mark.parametrize(("webhook", "slug"), [
    ({"url": "http://169.254.169.254/"}, "invalid-webhook-url"),
    ({"url": "gopher://hooks.example.com/"}, "invalid-webhook-url"),
    ({"url": RECEIVER, "events": ["batch.completed"]}, "validation-error"),
    ({"url": RECEIVER, "surprise": True}, "validation-error"),
])
def test_bad_job_webhooks_are_refused_and_store_no_job(client, make_tenant, webhook, slug):
    tenant = make_tenant()
    response = submit(client, tenant, {**EMOTION_JOB, "webhook": webhook})
    assert response.status_code == 422 and problem_slug(response) == slug
    assert client.get("/v1/jobs", headers=tenant.headers).get_json()["data"] == []


def test_deliveries_list_is_empty_and_filters_are_checked(client, make_tenant):
    tenant = make_tenant()
    assert client.get("/v1/webhooks/deliveries", headers=tenant.headers).get_json() == {"data": [], "next_cursor": None}
    assert client.get("/v1/webhooks/deliveries?status=lost", headers=tenant.headers).status_code == 400
    assert client.get("/v1/webhooks/deliveries?job_id=nope", headers=tenant.headers).status_code == 400


def test_the_openapi_document_describes_webhooks_and_prefer_wait(client):
    document = client.get("/openapi.json").get_json()
    assert "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret" in document["paths"]
    assert "/v1/webhooks/deliveries/{delivery_id}/redeliver" in document["paths"]
    submit_job = document["paths"]["/v1/jobs"]["post"]
    assert any(p["name"] == "Prefer" for p in submit_job["parameters"]) and "200" in submit_job["responses"]
    assert "webhook" in document["components"]["schemas"]["JobCreate"]["properties"]
