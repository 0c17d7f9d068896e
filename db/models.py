"""The platform's records: tenants, API keys, refresh tokens, jobs and per-label emotion scores.

PostgreSQL is the source of truth; every type here also works on SQLite for the laptop default.
Every timestamp is a :class:`db.types.UtcDateTime`: aware UTC on both.
"""
from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from config.valence import LABELS
from db.types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
UNFINISHED_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class BatchStatus(str, enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELED = "canceled"


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    tier: Mapped[str] = mapped_column(String(50), default="free")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: Days a job's input and result are kept after submission (``tasks.retention``); None keeps them.
    retention_days: Mapped[int | None] = mapped_column(Integer)
    #: The default of a job's ``options.store_input`` (score-only mode when false).
    store_input: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="tenant")


class ApiKey(Base):
    """A key is shown once; only its SHA-256 digest and a visible prefix are stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    tenant: Mapped[Tenant] = relationship(back_populates="api_keys")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RefreshToken(Base):
    """Refresh tokens are single-use: each refresh revokes the presented one and issues a new one."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # Most jobs have no idempotency key, and only unfinished jobs are swept for lost messages:
        # these two indexes hold only the rows they serve (each job row is written three times).
        Index("uq_jobs_tenant_idempotency_key", "tenant_id", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL"), sqlite_where=text("idempotency_key IS NOT NULL")),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_tenant_status", "tenant_id", "status"),
        Index("ix_jobs_status_created", "status", "created_at",
              postgresql_where=text("status IN ('queued', 'running')"),
              sqlite_where=text("status IN ('queued', 'running')")),
        # A batch's items, by row: chunks are claimed by (batch_id, batch_item), results stream in row order.
        UniqueConstraint("batch_id", "batch_item", name="uq_jobs_batch_item"),
        Index("ix_jobs_batch_status", "batch_id", "status"),
        # The per-tenant in-flight cap counts interactive jobs only; a batch has its own limit.
        Index("ix_jobs_tenant_status_unbatched", "tenant_id", "status",
              postgresql_where=text("batch_id IS NULL"), sqlite_where=text("batch_id IS NULL")),
        # `GET /v1/jobs?subject=...&occurred_after=...`: a subject's entries by time.
        Index("ix_jobs_tenant_subject_occurred", "tenant_id", "subject", "occurred_at",
              postgresql_where=text("subject IS NOT NULL"), sqlite_where=text("subject IS NOT NULL")),
        # The retention sweep (``db.retention``): a range scan over the jobs that have a purge date.
        Index("ix_jobs_purge_after", "purge_after",
              postgresql_where=text("purge_after IS NOT NULL"), sqlite_where=text("purge_after IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    #: The item's row number in its batch upload (1-based).
    batch_item: Mapped[int | None] = mapped_column(Integer)
    #: The id the client gave the item in its upload, echoed in results.
    client_id: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", values_callable=lambda e: [m.value for m in e]),
        default=JobStatus.QUEUED,
    )
    queue: Mapped[str] = mapped_column(String(32), default="cpu")
    input: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    options: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    result: Mapped[dict | None] = mapped_column(JSONDocument)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    processing_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    #: The app's opaque id for the end user who wrote or recorded the entry, scoped to the tenant.
    subject: Mapped[str | None] = mapped_column(String(128))
    #: When the entry was written or recorded (the submission time unless the app said otherwise).
    occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The app's `metadata` (string keys to strings or lists of strings). Not ``metadata``: the
    #: declarative base reserves that name, and the group-commit writer needs column names equal to keys.
    entry_metadata: Mapped[dict | None] = mapped_column(JSONDocument)
    #: When the retention sweep deletes the job (its options' or its tenant's ``retention_days``); None: kept.
    purge_after: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Batch(Base):
    """A bulk upload. Its items are jobs (``Job.batch_id``), stored and enqueued in chunks.

    Counts by status are read from the items, not kept here: the jobs table stays the one truth
    under concurrent chunk workers, redeliveries and cancels.
    """

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_batches_tenant_status", "tenant_id", "status"),
        Index("uq_batches_tenant_idempotency_key", "tenant_id", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL"), sqlite_where=text("idempotency_key IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32), default="emotion")
    status: Mapped[BatchStatus] = mapped_column(
        Enum(BatchStatus, name="batch_status", values_callable=lambda e: [m.value for m in e]),
        default=BatchStatus.RUNNING,
    )
    source_format: Mapped[str] = mapped_column(String(16))
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    invalid_items: Mapped[int] = mapped_column(Integer, default=0)
    #: The first rejected rows of the upload: ``[{"row", "code", "message"}]``.
    row_errors: Mapped[list] = mapped_column(JSONDocument, default=list)
    #: Items per `bulk` message; the requeue sweep rebuilds lost chunks with it.
    chunk_size: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    #: SHA-256 of the parsed upload (items, row errors, webhook), compared when a key is reused.
    request_hash: Mapped[str | None] = mapped_column(String(64))


class EmotionScore(Base):
    """One row per job and label: what rollup rebuilds, tag correlations and deletions read back.

    Rows are written 28 per job, hundreds of jobs at a time, so the table keeps only what that
    needs: the natural key (job, label), by which every reader finds a job's rows (timelines and
    insights read ``emotion_rollups``; migration 4c8e2a7d1f95 dropped the other indexes). No
    foreign key: on PostgreSQL each is checked row by row, which cost as much as the rows
    themselves. Rows are only written in the transaction that stores their job's result
    (``db.jobs``), so the job exists, and a trigger on `jobs` deletes a job's scores with it
    (migration c41f0e9d7a52). ``tenant_id`` is the job's, copied for per-tenant analytics.
    """

    __tablename__ = "emotion_scores"

    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    probability: Mapped[float] = mapped_column(Float)
    is_top: Mapped[bool] = mapped_column(Boolean, default=False)
    above_threshold: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


#: The series of the whole tenant in ``emotion_rollups`` (a subject is never empty).
TENANT_SERIES = ""


def rollup_columns(label: str) -> tuple[str, str, str]:
    """A label's columns in ``emotion_rollups``: sum of probabilities, sum of their squares, threshold passes."""
    return f"p_{label}", f"q_{label}", f"t_{label}"


#: Emotion results added up per tenant, subject and 15-minute UTC slot (``db.rollups``): every UTC
#: offset in use is a whole number of quarter hours, so any time zone's days, weeks and months
#: are sums of whole slots. Core table: 84 label columns, no object needed.
emotion_rollups = Table(
    "emotion_rollups", Base.metadata,
    Column("tenant_id", Uuid, primary_key=True),
    #: ``TENANT_SERIES`` for the tenant-wide series, which counts entries with and without a subject.
    Column("subject", String(128), primary_key=True),
    Column("slot_start", UtcDateTime, primary_key=True),
    Column("entries", Integer, nullable=False, default=0),
    *[Column(name, Integer if name.startswith("t_") else Float, nullable=False, default=0)
      for label in LABELS for name in rollup_columns(label)],
    # Distinct subjects per bucket of a tenant: slots first, then subjects.
    Index("ix_emotion_rollups_tenant_slot", "tenant_id", "slot_start", "subject"),
)


#: Which subjects have entries in each UTC week and month of a tenant, with the first and last slot
#: of them (``db.subject_presence``): distinct subjects per local week or month without a scan.
subject_presence = Table(
    "subject_presence", Base.metadata,
    Column("tenant_id", Uuid, primary_key=True),
    Column("subject", String(128), primary_key=True),
    #: ``week`` (from Monday) or ``month``, in UTC.
    Column("unit", String(8), primary_key=True),
    Column("bucket_start", UtcDateTime, primary_key=True),
    Column("first_slot", UtcDateTime, nullable=False),
    Column("last_slot", UtcDateTime, nullable=False),
    #: The subject's last slot in the UTC bucket before this one, and its first in the one after
    #: (None: no entries there).
    Column("last_before", UtcDateTime),
    Column("first_after", UtcDateTime),
    #: Partial (true of every row) so that only queries with a condition on the slot can use them,
    #: never a lookup by key (migration 4c8e2a7d1f95).
    *[Index(f"ix_subject_presence_{column}", "tenant_id", "unit", "bucket_start", column,
            postgresql_where=text(f"{column} IS NOT NULL"), sqlite_where=text(f"{column} IS NOT NULL"))
      for column in ("first_slot", "last_slot")],
)

#: How many subjects each UTC week and month of a tenant has in ``subject_presence``.
subject_counts = Table(
    "subject_counts", Base.metadata,
    Column("tenant_id", Uuid, primary_key=True),
    Column("unit", String(8), primary_key=True),
    Column("bucket_start", UtcDateTime, primary_key=True),
    Column("subjects", Integer, nullable=False),
)


class RotatableSecret:
    """A signing secret encrypted at rest; a rotated-out one stays valid until its overlap ends."""

    secret_ciphertext: Mapped[str] = mapped_column(Text)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebhookEndpoint(RotatableSecret, Base):
    """A URL a tenant registered to receive events, with its own signing secret."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class WebhookTenantSecret(RotatableSecret, Base):
    """The secret that signs webhooks given with a submission (``webhook: {url, events}``)."""

    __tablename__ = "webhook_tenant_secrets"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookSubscription(Base):
    """A webhook given with one job or batch submission, for that job or batch only."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one destination: its ``webhook-id`` stays the same across every attempt.

    ``status``: pending (to be tried), succeeded, failed (a final answer such as a 4xx, a refused
    destination or a disabled endpoint) or dead (the retry schedule ran out).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        Index("ix_webhook_deliveries_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    round_started_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def msg_id(self) -> str:
        return f"msg_{self.id.hex}"


class WebhookAttempt(Base):
    """One HTTP request of a delivery: when, to where, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    url: Mapped[str] = mapped_column(String(2048))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class SubjectShiftEvent(Base):
    """A ``subject.shift_detected`` event sent for a subject in one shift-check window: the key
    makes the event at most once per subject and window, however many workers check at once."""

    __tablename__ = "subject_shift_events"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: The start of the fixed window (``SAMO_SHIFT_EVENT_WINDOW_DAYS`` long, counted from the Unix epoch).
    window_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    shift_score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Erasure(Base):
    """A request to erase everything stored about one subject, carried out in chunks by a task.

    At most one erasure per subject is pending (queued or running) at a time: a second request
    while one is pending answers that one. ``counts`` holds the rows removed so far, by kind.
    """

    __tablename__ = "erasures"
    __table_args__ = (
        Index("uq_erasures_pending_subject", "tenant_id", "subject", unique=True,
              postgresql_where=text("status <> 'completed'"), sqlite_where=text("status <> 'completed'")),
        Index("ix_erasures_status_created", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    counts: Mapped[dict | None] = mapped_column(JSONDocument)
    #: Who asked (``{"api_key_id": ...}``), copied into the audit event written when it completes.
    actor: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEvent(Base):
    """One deletion, erasure or export: who, what, when and how many rows; ids only, never content."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    target: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
