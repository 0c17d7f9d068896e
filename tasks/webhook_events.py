"""Turning job and batch events into webhook deliveries, and publishing them to the `webhooks` queue.

This runs where the event happens (model and bulk workers, the API for redeliveries) but sends
nothing over HTTP: it stores one pending delivery per destination, then publishes a message by
task name, so the sending happens only on `webhooks` workers and never imports worker code here.
A publish that fails leaves the delivery stored; the `dispatch_due` sweep sends it later.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from celery import Celery
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from config.settings import Settings
from db.batches import status_counts
from db.documents import batch_document, iso_datetime, job_document
from db.models import Batch, Job, WebhookEndpoint, WebhookSubscription, utcnow
from db.webhooks import create_deliveries
from tasks.services import Services

log = logging.getLogger(__name__)

DELIVER_TASK = "tasks.webhooks.deliver"
JOB_EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed", "canceled": "job.canceled"}
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def countdown_limit_s(settings: Settings) -> float:
    """Longer delays wait in the database for the sweep, not in the broker.

    With the Redis transport a message whose countdown outlives the visibility timeout is
    handed out again, once per timeout; hours-long retry delays would multiply messages.
    """
    return min(300.0, settings.broker_visibility_timeout_s / 2)


def enqueue_delivery(celery: Celery, delivery_id: uuid.UUID, countdown_s: float = 0.0) -> bool:
    try:
        celery.send_task(DELIVER_TASK, args=[str(delivery_id)], countdown=countdown_s or None,
                         retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception:  # noqa: BLE001 - the stored delivery is sent by the sweep instead
        log.warning("could not publish webhook delivery %s; the sweep will send it", delivery_id, exc_info=True)
        return False
    return True


def event_body(event_type: str, data: dict, now: datetime | None = None) -> str:
    """The signed body: ``{"type", "timestamp", "data"}`` as Standard Webhooks suggests."""
    envelope = {"type": event_type, "timestamp": iso_datetime(now or utcnow()), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def first_delay_s(settings: Settings) -> float:
    return float(settings.webhook_retry_schedule_s[0]) if settings.webhook_retry_schedule_s else 0.0


def emit(settings: Settings, session: Session, tenant_id: uuid.UUID, event_type: str,
         make_data: Callable[[], dict], job_id: uuid.UUID | None = None,
         batch_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Store the deliveries in ``session``; the caller publishes them with :func:`publish` after commit."""
    delay = first_delay_s(settings)
    return create_deliveries(
        session, tenant_id, event_type, lambda: event_body(event_type, make_data()), delay,
        broker_schedules=delay <= countdown_limit_s(settings), job_id=job_id, batch_id=batch_id,
    )


def publish(settings: Settings, celery: Celery, delivery_ids: list[uuid.UUID]) -> None:
    delay = first_delay_s(settings)
    if delay <= countdown_limit_s(settings):
        for delivery_id in delivery_ids:
            enqueue_delivery(celery, delivery_id, delay)


def stage_job_events(settings: Settings, session: Session, job_ids: list[uuid.UUID], status: str
                     ) -> list[uuid.UUID]:
    """``job.succeeded`` / ``job.failed`` / ``job.canceled`` deliveries for the jobs' own webhooks
    and their tenants' endpoints, stored in ``session``; publish them with :func:`publish` after commit.

    Called in the transaction that stores the jobs' terminal state (an outbox): the state and its
    deliveries commit together, so a crash between the two cannot lose an event; a delivery whose
    message never went out is sent by the ``dispatch_due`` sweep. Items of a batch send none:
    their batch's ``batch.completed`` (and ``batch.progress``) stand for them, or a bulk upload
    would set off one webhook per row. Jobs nobody subscribed to cost one indexed query in all.
    """
    event_type = JOB_EVENTS.get(status)
    if event_type is None or not job_ids:
        return []
    owners = session.execute(
        select(Job.id, Job.tenant_id).where(
            Job.id.in_(job_ids), Job.batch_id.is_(None),
            or_(exists().where(WebhookSubscription.job_id == Job.id),
                exists().where(WebhookEndpoint.tenant_id == Job.tenant_id, WebhookEndpoint.enabled.is_(True))),
        )
    ).all()
    delivery_ids: list[uuid.UUID] = []
    for job_id, tenant_id in owners:
        delivery_ids += emit(settings, session, tenant_id, event_type,
                             lambda job_id=job_id: job_document(session.get(Job, job_id, populate_existing=True)),
                             job_id=job_id)
    return delivery_ids


def emit_batch_event(services: Services, batch_id: uuid.UUID, event_type: str) -> list[uuid.UUID]:
    """``batch.completed`` or ``batch.progress``, with ``data`` what ``GET /v1/batches/{id}`` answers."""
    settings = services.settings
    with services.session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            return []
        delivery_ids = emit(settings, session, batch.tenant_id, event_type,
                            lambda: batch_document(batch, status_counts(session, batch.id)), batch_id=batch.id)
    publish(settings, services.celery, delivery_ids)
    return delivery_ids
