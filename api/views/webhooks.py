"""`/v1/webhooks`: endpoints, their secrets, deliveries and redelivery (scope `webhooks:manage`).

Endpoint secrets are shown once, when created or rotated. The account's signing secret for
webhooks given with a submission (``webhook: {url, events}``) is readable again through
`GET /v1/webhooks/signing-secret`: such webhooks have no registration step at which a secret
could be shown, and the receiver must know it before the first job ends.

URLs are checked here without DNS (scheme, credentials, literal addresses, local names); the
full check, with resolution, happens at every attempt because DNS answers change.
"""
from __future__ import annotations

import json
import uuid

from flask import Blueprint, request

from api.auth.principal import current_principal, require_scope
from api.extensions import celery_client, db_session, settings
from api.intake.pagination import newest_first_page, parse_limit
from api.intake.requests import parse_body
from api.problems import Problem
from api.schemas.webhooks import EndpointCreate, EndpointUpdate, JobWebhook
from api.views.owned import tenant_owned
from config.webhook_destinations import AllowList, DestinationRefused, parse_webhook_url
from db.documents import iso_datetime
from db.models import Job, WebhookDelivery, WebhookEndpoint, utcnow
from db.secrets import open_secret, secret_box
from db.webhooks import (
    DEAD,
    FAILED,
    PENDING,
    SUCCEEDED,
    add_subscription,
    attempts_of,
    create_endpoint,
    rearm_delivery,
    rotate_secret,
    tenant_deliveries_query,
    tenant_endpoints,
    tenant_secret,
)
from tasks.webhook_events import enqueue_delivery

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")

DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED, DEAD)


def check_url(url: str, field: str = "url") -> str:
    try:
        parse_webhook_url(url, AllowList.parse(settings().webhook_allowed_destinations))
    except DestinationRefused as refused:
        raise Problem(422, "invalid-webhook-url", "Webhook URL not allowed", f"`{field}`: {refused}.",
                      errors=[{"field": field, "message": str(refused)}]) from None
    return url


def attach_job_webhook(session, job: Job, webhook: JobWebhook | None) -> None:
    """Store the submission's ``webhook`` with its job (same transaction); no-op without one."""
    attach_webhook(session, job.tenant_id, webhook, "webhook.url", job_id=job.id)


def attach_batch_webhook(session, batch, webhook) -> None:
    """The same for a batch submission's ``webhook`` (``api.schemas.webhooks.BatchWebhook``)."""
    attach_webhook(session, batch.tenant_id, webhook, "webhook.url", batch_id=batch.id)


def attach_webhook(session, tenant_id: uuid.UUID, webhook, field: str, **subject) -> None:
    if webhook is None:
        return
    check_url(webhook.url, field)
    tenant_secret(session, secret_box(settings()), tenant_id)
    add_subscription(session, tenant_id, webhook.url, list(webhook.events), **subject)


def endpoint_document(endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    document = {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": iso_datetime(endpoint.disabled_at),
        "consecutive_failures": endpoint.consecutive_failures,
        "created_at": iso_datetime(endpoint.created_at),
        "secret_rotated_at": iso_datetime(endpoint.rotated_at),
        "previous_secret_expires_at": iso_datetime(endpoint.previous_secret_expires_at),
    }
    if secret is not None:
        document["secret"] = secret
    return document


def delivery_document(delivery: WebhookDelivery, attempts) -> dict:
    return {
        "id": str(delivery.id),
        "webhook_id": delivery.msg_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "endpoint_id": str(delivery.endpoint_id) if delivery.endpoint_id else None,
        "job_id": str(delivery.job_id) if delivery.job_id else None,
        "batch_id": str(delivery.batch_id) if delivery.batch_id else None,
        "url": delivery.url,
        "attempts": delivery.attempts,
        "next_attempt_at": iso_datetime(delivery.next_attempt_at) if delivery.status == PENDING else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": iso_datetime(delivery.created_at),
        "finished_at": iso_datetime(delivery.finished_at),
        "attempt_log": [
            {"number": a.number, "attempted_at": iso_datetime(a.attempted_at), "url": a.url,
             "status_code": a.status_code, "latency_ms": a.latency_ms, "error": a.error,
             "response_excerpt": a.response_excerpt}
            for a in attempts
        ],
        "payload": json.loads(delivery.body),
    }


def tenant_endpoint(endpoint_id: uuid.UUID | str) -> WebhookEndpoint:
    return tenant_owned(WebhookEndpoint, endpoint_id, "webhook endpoint")


def tenant_delivery(delivery_id: uuid.UUID | str) -> WebhookDelivery:
    return tenant_owned(WebhookDelivery, delivery_id, "webhook delivery")


@bp.post("/endpoints")
@require_scope("webhooks:manage")
def create():
    body, _ = parse_body(EndpointCreate)
    session = db_session()
    endpoint, secret = create_endpoint(session, secret_box(settings()), current_principal().tenant_id,
                                       check_url(body.url), list(body.events), body.description)
    session.commit()
    return endpoint_document(endpoint, secret), 201, {"Location": f"{bp.url_prefix}/endpoints/{endpoint.id}",
                                                      "Cache-Control": "no-store"}


@bp.get("/endpoints")
@require_scope("webhooks:manage")
def list_endpoints():
    endpoints = tenant_endpoints(db_session(), current_principal().tenant_id)
    return {"data": [endpoint_document(endpoint) for endpoint in endpoints]}


@bp.get("/endpoints/<uuid:endpoint_id>")
@require_scope("webhooks:manage")
def get_endpoint(endpoint_id: uuid.UUID | str):
    return endpoint_document(tenant_endpoint(endpoint_id))


@bp.patch("/endpoints/<uuid:endpoint_id>")
@require_scope("webhooks:manage")
def update_endpoint(endpoint_id: uuid.UUID | str):
    body, _ = parse_body(EndpointUpdate)
    endpoint = tenant_endpoint(endpoint_id)
    if body.url is not None:
        endpoint.url = check_url(body.url)
    if body.events is not None:
        endpoint.events = sorted(set(body.events))
    if body.description is not None:
        endpoint.description = body.description
    if body.enabled is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, None, None
        endpoint.consecutive_failures, endpoint.failing_since = 0, None
    elif body.enabled is False and endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, "Disabled through the API.", utcnow()
    db_session().commit()
    return endpoint_document(endpoint)


@bp.delete("/endpoints/<uuid:endpoint_id>")
@require_scope("webhooks:manage")
def delete_endpoint(endpoint_id: uuid.UUID | str):
    db_session().delete(tenant_endpoint(endpoint_id))
    db_session().commit()
    return "", 204


@bp.post("/endpoints/<uuid:endpoint_id>/rotate-secret")
@require_scope("webhooks:manage")
def rotate_endpoint_secret(endpoint_id: uuid.UUID | str):
    endpoint = tenant_endpoint(endpoint_id)
    secret = rotate_secret(endpoint, secret_box(settings()), settings().webhook_secret_overlap_s, utcnow())
    db_session().commit()
    return endpoint_document(endpoint, secret), 200, {"Cache-Control": "no-store"}


@bp.get("/signing-secret")
@require_scope("webhooks:manage")
def get_signing_secret():
    session = db_session()
    box = secret_box(settings())
    record = tenant_secret(session, box, current_principal().tenant_id)
    session.commit()
    return signing_secret_document(record, box), 200, {"Cache-Control": "no-store"}


@bp.post("/signing-secret/rotate")
@require_scope("webhooks:manage")
def rotate_signing_secret():
    session = db_session()
    box = secret_box(settings())
    record = tenant_secret(session, box, current_principal().tenant_id)
    rotate_secret(record, box, settings().webhook_secret_overlap_s, utcnow())
    session.commit()
    return signing_secret_document(record, box), 200, {"Cache-Control": "no-store"}


def signing_secret_document(record, box) -> dict:
    previous_expires = record.previous_secret_expires_at
    return {"secret": open_secret(box, record.secret_ciphertext), "rotated_at": iso_datetime(record.rotated_at),
            "previous_secret_expires_at": iso_datetime(previous_expires)
            if previous_expires and previous_expires > utcnow() else None}


def parse_uuid_arg(name: str) -> uuid.UUID | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Problem(400, f"invalid-{name.replace('_', '-')}", f"Invalid {name}",
                      f"`{name}` must be a UUID.") from None


def parse_delivery_status() -> str | None:
    status = request.args.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise Problem(400, "invalid-status-filter", "Invalid status filter",
                      f"`status` must be one of: {', '.join(DELIVERY_STATUSES)}.")
    return status


def delivery_page(endpoint_id: uuid.UUID | None):
    limit = parse_limit(request.args.get("limit"))
    query = tenant_deliveries_query(current_principal().tenant_id, endpoint_id=endpoint_id,
                                    job_id=parse_uuid_arg("job_id"), status=parse_delivery_status())
    session = db_session()
    page, next_cursor = newest_first_page(session, query, WebhookDelivery, limit, request.args.get("cursor"))
    attempts = attempts_of(session, [delivery.id for delivery in page])
    return {"data": [delivery_document(d, attempts[d.id]) for d in page], "next_cursor": next_cursor}


@bp.get("/endpoints/<uuid:endpoint_id>/deliveries")
@require_scope("webhooks:manage")
def endpoint_deliveries(endpoint_id: uuid.UUID | str):
    return delivery_page(tenant_endpoint(endpoint_id).id)


@bp.get("/deliveries")
@require_scope("webhooks:manage")
def deliveries():
    return delivery_page(parse_uuid_arg("endpoint_id"))


@bp.get("/deliveries/<uuid:delivery_id>")
@require_scope("webhooks:manage")
def get_delivery(delivery_id: uuid.UUID | str):
    delivery = tenant_delivery(delivery_id)
    return delivery_document(delivery, attempts_of(db_session(), [delivery.id])[delivery.id])


@bp.post("/deliveries/<uuid:delivery_id>/redeliver")
@require_scope("webhooks:manage")
def redeliver(delivery_id: uuid.UUID | str):
    delivery = tenant_delivery(delivery_id)
    session = db_session()
    if delivery.endpoint_id is not None and not session.get(WebhookEndpoint, delivery.endpoint_id).enabled:
        raise Problem(409, "webhook-endpoint-disabled", "Webhook endpoint disabled",
                      "Re-enable the endpoint (PATCH with `enabled: true`) before redelivering to it.")
    rearm_delivery(session, delivery, utcnow())
    session.commit()
    enqueue_delivery(celery_client(), delivery.id)
    return delivery_document(delivery, attempts_of(session, [delivery.id])[delivery.id]), 202
