"""Sending webhooks, on the `webhooks` queue only: one attempt per task, retries on a schedule.

``deliver`` claims the delivery (see db/webhooks.py), signs the stored body with the
endpoint's or the tenant's secrets, sends it through the SSRF guard, stores the attempt and
decides what comes next (workers/webhook_retries.py). A retry due within a few minutes is
published with a countdown; a later one waits in the database until ``dispatch_due``, run by
beat, finds it due. The HTTP request happens outside any database transaction.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from celery import Celery, shared_task

from config.settings import Settings
from config.webhook_destinations import (
    AllowList,
    DestinationRefused,
    ResolutionFailed,
    check_destination,
    system_resolver,
)
from db.models import WebhookEndpoint, utcnow
from db.secrets import secret_box
from db.session import session_scope
from db.webhooks import (
    DEAD,
    FAILED,
    PENDING,
    SUCCEEDED,
    AttemptResult,
    ClaimedDelivery,
    claim_delivery,
    disable_endpoint,
    due_deliveries,
    endpoint_failed,
    endpoint_succeeded,
    mark_enqueued,
    record_attempt,
    signing_record,
    signing_secrets,
)
from tasks.jobs import RETRY_OPTIONS
from tasks.services import current
from tasks.webhook_events import countdown_limit_s, enqueue_delivery
from workers.webhook_http import post
from workers.webhook_retries import Verdict, next_delay, retry_after_seconds, verdict_of
from workers.webhook_signing import webhook_headers

log = logging.getLogger(__name__)

USER_AGENT = "SAMO-Brain-Webhooks/1.0 (+https://www.standardwebhooks.com)"
STATUS_BY_VERDICT = {Verdict.DELIVERED: SUCCEEDED, Verdict.GONE: FAILED, Verdict.FINAL: FAILED}


@dataclass(frozen=True)
class Sent:
    result: AttemptResult
    verdict: Verdict
    retry_after: str | None = None


def lease_s(settings: Settings) -> float:
    return settings.webhook_connect_timeout_s + settings.webhook_timeout_s + 30


@shared_task(name="tasks.webhooks.deliver", **RETRY_OPTIONS)
def deliver(delivery_id: str) -> str:
    """One attempt; its time limit comes from the settings (``config.celery``, ``task_annotations``)."""
    services = current()
    return deliver_once(services.settings, services.celery, uuid.UUID(delivery_id))


@shared_task(name="tasks.webhooks.dispatch_due")
def dispatch_due() -> int:
    services = current()
    return dispatch_due_deliveries(services.settings, services.celery)


def dispatch_due_deliveries(settings: Settings, celery: Celery) -> int:
    """Publish deliveries that are due and have no message on its way (long retries, lost messages)."""
    now = utcnow()
    with session_scope(settings.database_url) as session:
        delivery_ids = due_deliveries(session, now, settings.requeue_after_s)
        mark_enqueued(session, delivery_ids, now)
    sent = [delivery_id for delivery_id in delivery_ids if enqueue_delivery(celery, delivery_id)]
    if sent:
        log.info("dispatched %d due webhook deliveries", len(sent))
    return len(sent)


def deliver_once(settings: Settings, celery: Celery, delivery_id: uuid.UUID, resolver=system_resolver) -> str:
    """One attempt of one delivery; the returned word is for logs and tests."""
    box = secret_box(settings)
    now = utcnow()
    with session_scope(settings.database_url) as session:
        claimed = claim_delivery(session, delivery_id, now, lease_s(settings))
        if claimed is None:
            return "skipped"
        record = signing_record(session, box, claimed)
        endpoint = record if isinstance(record, WebhookEndpoint) else None
        url = endpoint.url if endpoint is not None else claimed.url
        if endpoint is not None and not endpoint.enabled:
            result = AttemptResult(url, None, None, f"not sent: the endpoint is disabled ({endpoint.disabled_reason})")
            record_attempt(session, claimed, result, FAILED, None, now, enqueued=False)
            return FAILED
        secrets_now = signing_secrets(record, box, now)

    sent = send(settings, claimed, url, secrets_now, resolver)
    return record_outcome(settings, celery, claimed, sent)


def send(settings: Settings, claimed: ClaimedDelivery, url: str, secrets_now: list[str], resolver) -> Sent:
    try:
        target = check_destination(url, AllowList.parse(settings.webhook_allowed_destinations), resolver)
    except DestinationRefused as refused:
        return Sent(AttemptResult(url, None, 0, f"destination refused: {refused}"), Verdict.FINAL)
    except ResolutionFailed as error:
        return Sent(AttemptResult(url, None, 0, str(error)), Verdict.RETRY)
    body = claimed.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **webhook_headers(secrets_now, claimed.msg_id, int(time.time()), body),
    }
    outcome = post(target, body, headers, connect_timeout_s=settings.webhook_connect_timeout_s,
                   total_timeout_s=settings.webhook_timeout_s,
                   max_response_bytes=settings.webhook_max_response_bytes)
    verdict = verdict_of(outcome)
    error = outcome.error
    if error is None and verdict is not Verdict.DELIVERED:
        error = f"HTTP {outcome.status_code}"
        if 300 <= outcome.status_code < 400:
            error += f": redirects are not followed (Location: {outcome.location})"
    result = AttemptResult(url, outcome.status_code, outcome.latency_ms, error, outcome.body_excerpt)
    return Sent(result, verdict, outcome.retry_after)


def record_outcome(settings: Settings, celery: Celery, claimed: ClaimedDelivery, sent: Sent) -> str:
    now = utcnow()
    delay = None
    if sent.verdict is Verdict.RETRY:
        delay = next_delay(settings.webhook_retry_schedule_s, claimed.attempt_in_round, settings.webhook_retry_jitter,
                           retry_after_seconds(sent.retry_after, now), settings.webhook_retry_after_max_s)
        status = PENDING if delay is not None else DEAD
    else:
        status = STATUS_BY_VERDICT[sent.verdict]
    publish_retry = delay is not None and delay <= countdown_limit_s(settings)
    with session_scope(settings.database_url) as session:
        record_attempt(session, claimed, sent.result, status,
                       now + timedelta(seconds=delay) if delay is not None else None, now, enqueued=publish_retry)
        if claimed.endpoint_id is not None:
            update_endpoint_health(settings, session, claimed, sent, now)
    if publish_retry:
        enqueue_delivery(celery, claimed.id, delay)
    log.info("webhook %s attempt %d to %s: %s (%s)", claimed.msg_id, claimed.attempt_number, sent.result.url,
             sent.result.status_code or sent.result.error, status)
    return status


def update_endpoint_health(settings: Settings, session, claimed: ClaimedDelivery, sent: Sent, now) -> None:
    if sent.verdict is Verdict.DELIVERED:
        endpoint_succeeded(session, claimed.endpoint_id)
    elif sent.verdict is Verdict.GONE:
        disable_endpoint(session, claimed.endpoint_id, now,
                         f"The receiver answered 410 Gone at {now.isoformat()} (delivery {claimed.id}).")
    else:
        endpoint_failed(session, claimed.endpoint_id, now, settings.webhook_disable_after_failures,
                        settings.webhook_disable_after_s, sent.result.error or "unknown error")
