"""Webhook endpoints, secrets and deliveries: every state change of a delivery is one conditional UPDATE.

A delivery is sent by whoever *claims* it: a claim succeeds only while the delivery is pending,
due and not leased by another worker, and it takes a short lease. So duplicate or late broker
messages (redelivery after a crash, the sweep re-publishing, a manual redeliver racing a retry)
never send one attempt twice, and a delivery that already succeeded is never sent again unless
someone asks for it with ``redeliver``.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import MultiFernet
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import (
    RotatableSecret,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
    WebhookTenantSecret,
    utcnow,
)
from db.secrets import generate_secret, open_secret, seal_secret

PENDING, SUCCEEDED, FAILED, DEAD = "pending", "succeeded", "failed", "dead"
RESPONSE_EXCERPT_CHARS = 1024


def signing_secrets(record: RotatableSecret, box: MultiFernet, now: datetime) -> list[str]:
    """The current secret, then the previous one while its overlap lasts."""
    secrets_now = [open_secret(box, record.secret_ciphertext)]
    expires = record.previous_secret_expires_at
    if record.previous_secret_ciphertext and expires and expires > now:
        secrets_now.append(open_secret(box, record.previous_secret_ciphertext))
    return secrets_now


def rotate_secret(record: RotatableSecret, box: MultiFernet, overlap_s: int, now: datetime) -> str:
    """Make a new current secret; the old one keeps signing too for ``overlap_s`` seconds."""
    secret = generate_secret()
    record.previous_secret_ciphertext = record.secret_ciphertext if overlap_s > 0 else None
    record.previous_secret_expires_at = now + timedelta(seconds=overlap_s) if overlap_s > 0 else None
    record.secret_ciphertext = seal_secret(box, secret)
    record.rotated_at = now
    return secret


def create_endpoint(session: Session, box: MultiFernet, tenant_id: uuid.UUID, url: str, events: list[str],
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret in clear, which the caller shows once."""
    secret = generate_secret()
    endpoint = WebhookEndpoint(tenant_id=tenant_id, url=url, events=sorted(set(events)), description=description,
                               secret_ciphertext=seal_secret(box, secret))
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def tenant_secret(session: Session, box: MultiFernet, tenant_id: uuid.UUID) -> WebhookTenantSecret:
    """The tenant's secret for per-submission webhooks, made on first use.

    ``INSERT ... ON CONFLICT DO NOTHING`` settles two first uses racing (a savepoint would do
    too, but pysqlite's savepoints are unreliable).
    """
    record = session.get(WebhookTenantSecret, tenant_id)
    if record is None:
        dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(
            dialect_insert(WebhookTenantSecret)
            .values(tenant_id=tenant_id, secret_ciphertext=seal_secret(box, generate_secret()), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        record = session.get(WebhookTenantSecret, tenant_id)
    return record


def add_subscription(session: Session, tenant_id: uuid.UUID, url: str, events: list[str],
                     job_id: uuid.UUID | None = None, batch_id: uuid.UUID | None = None) -> WebhookSubscription:
    """A webhook given with a job or batch submission; add it in the submission's transaction."""
    subscription = WebhookSubscription(tenant_id=tenant_id, url=url, events=sorted(set(events)),
                                       job_id=job_id, batch_id=batch_id)
    session.add(subscription)
    return subscription


def create_deliveries(session: Session, tenant_id: uuid.UUID, event_type: str, make_body: Callable[[], str],
                      first_delay_s: float, broker_schedules: bool, job_id: uuid.UUID | None = None,
                      batch_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """One pending delivery per destination that asked for this event: the job's or batch's own
    webhook, and every enabled endpoint of the tenant subscribed to the event.

    ``broker_schedules``: the caller publishes a message for each after commit (else the sweep will).
    """
    subject = []
    if job_id is not None:
        subject.append(WebhookSubscription.job_id == job_id)
    if batch_id is not None:
        subject.append(WebhookSubscription.batch_id == batch_id)
    subscriptions = session.scalars(select(WebhookSubscription).where(or_(*subject))).all() if subject else []
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True))
    ).all()
    destinations = [(s.id, None, s.url) for s in subscriptions if event_type in s.events]
    destinations += [(None, e.id, e.url) for e in endpoints if event_type in e.events]
    if not destinations:
        return []
    body, now = make_body(), utcnow()
    deliveries = [
        WebhookDelivery(id=uuid.uuid4(), tenant_id=tenant_id, subscription_id=subscription_id,
                        endpoint_id=endpoint_id, url=url, event_type=event_type, body=body, job_id=job_id,
                        batch_id=batch_id, next_attempt_at=now + timedelta(seconds=first_delay_s),
                        enqueued_at=now if broker_schedules else None)
        for subscription_id, endpoint_id, url in destinations
    ]
    session.add_all(deliveries)
    return [delivery.id for delivery in deliveries]


def mark_enqueued(session: Session, delivery_ids: list[uuid.UUID], now: datetime | None = None) -> None:
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids))
                    .values(enqueued_at=now or utcnow()))


@dataclass(frozen=True)
class ClaimedDelivery:
    id: uuid.UUID
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID | None
    url: str
    event_type: str
    body: str
    attempt_number: int
    attempt_in_round: int

    @property
    def msg_id(self) -> str:
        return f"msg_{self.id.hex}"


def claim_delivery(session: Session, delivery_id: uuid.UUID, now: datetime, lease_s: float,
                   early_s: float = 1.0) -> ClaimedDelivery | None:
    """Take a due, pending, unleased delivery for one attempt; None for anything else."""
    row = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now + timedelta(seconds=early_s),
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
        )
        .values(attempts=WebhookDelivery.attempts + 1, locked_until=now + timedelta(seconds=lease_s),
                enqueued_at=None)
        .returning(WebhookDelivery.id, WebhookDelivery.tenant_id, WebhookDelivery.endpoint_id, WebhookDelivery.url,
                   WebhookDelivery.event_type, WebhookDelivery.body, WebhookDelivery.attempts,
                   WebhookDelivery.round_started_attempts)
    ).first()
    if row is None:
        return None
    *fields, attempts, round_started = row
    return ClaimedDelivery(*fields, attempt_number=attempts, attempt_in_round=attempts - round_started)


def signing_record(session: Session, box: MultiFernet, delivery: ClaimedDelivery) -> RotatableSecret:
    if delivery.endpoint_id is not None:
        return session.get(WebhookEndpoint, delivery.endpoint_id)
    return tenant_secret(session, box, delivery.tenant_id)


@dataclass(frozen=True)
class AttemptResult:
    url: str
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str = ""


def record_attempt(session: Session, delivery: ClaimedDelivery, result: AttemptResult, status: str,
                   next_attempt_at: datetime | None, now: datetime, enqueued: bool) -> None:
    """Store the attempt and move the delivery on: back to pending (a retry), or finished.

    ``enqueued``: the caller publishes the retry's message itself (else the sweep will).
    The delivery is updated first, which locks its row: one deleted meanwhile (its job was
    deleted, ``db.deletion``) records nothing.
    """
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.attempts == delivery.attempt_number)
        .values(status=status, next_attempt_at=next_attempt_at, locked_until=None,
                enqueued_at=now if enqueued else None,
                last_status_code=result.status_code, last_error=result.error,
                finished_at=None if status == PENDING else now)
    )
    if session.get(WebhookDelivery, delivery.id) is None:
        return
    session.add(WebhookAttempt(
        delivery_id=delivery.id, number=delivery.attempt_number, attempted_at=now, url=result.url,
        status_code=result.status_code, latency_ms=result.latency_ms, error=result.error,
        response_excerpt=(result.response_excerpt or "")[:RESPONSE_EXCERPT_CHARS] or None,
    ))


def endpoint_succeeded(session: Session, endpoint_id: uuid.UUID) -> None:
    session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                    .values(consecutive_failures=0, failing_since=None))


def endpoint_failed(session: Session, endpoint_id: uuid.UUID, now: datetime, disable_after_failures: int,
                    disable_after_s: float, error: str) -> bool:
    """Count a failed attempt; disable the endpoint once it has failed long and often enough."""
    failures, failing_since = _count_failure(session, endpoint_id, now)
    failing_for = (now - failing_since).total_seconds()
    if failures >= disable_after_failures and failing_for >= disable_after_s:
        return disable_endpoint(session, endpoint_id, now, (
            f"Disabled after {failures} consecutive failed attempts over {int(failing_for)} s; "
            f"last error: {error}"))
    return False


def _count_failure(session: Session, endpoint_id: uuid.UUID, now: datetime) -> tuple[int, datetime]:
    return session.execute(
        update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        .values(consecutive_failures=WebhookEndpoint.consecutive_failures + 1,
                failing_since=func.coalesce(WebhookEndpoint.failing_since, now))
        .returning(WebhookEndpoint.consecutive_failures, WebhookEndpoint.failing_since)
    ).one()


def disable_endpoint(session: Session, endpoint_id: uuid.UUID, now: datetime, reason: str) -> bool:
    result = session.execute(
        update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, disabled_at=now)
    )
    return result.rowcount == 1


def due_deliveries(session: Session, now: datetime, lost_after_s: float, limit: int = 500) -> list[uuid.UUID]:
    """Pending deliveries that are due and have no broker message on its way (or lost it)."""
    return list(session.scalars(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
            or_(WebhookDelivery.enqueued_at.is_(None),
                WebhookDelivery.enqueued_at < now - timedelta(seconds=lost_after_s)),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    ))


def rearm_delivery(session: Session, delivery: WebhookDelivery, now: datetime) -> None:
    """Send again now with a fresh retry schedule, under the same ``webhook-id``.

    The caller publishes the message; if that fails the sweep sends it once it counts as lost.
    """
    delivery.status = PENDING
    delivery.round_started_attempts = delivery.attempts
    delivery.next_attempt_at = now
    delivery.finished_at = None
    delivery.enqueued_at = now


def tenant_deliveries_query(tenant_id: uuid.UUID, endpoint_id: uuid.UUID | None = None,
                            job_id: uuid.UUID | None = None, status: str | None = None):
    query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if job_id is not None:
        query = query.where(WebhookDelivery.job_id == job_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return query


def attempts_of(session: Session, delivery_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[WebhookAttempt]]:
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        for attempt in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
                                       .order_by(WebhookAttempt.number)):
            by_delivery[attempt.delivery_id].append(attempt)
    return by_delivery


def tenant_endpoints(session: Session, tenant_id: uuid.UUID) -> list[WebhookEndpoint]:
    """The tenant's endpoints, oldest first."""
    return list(session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    ))
