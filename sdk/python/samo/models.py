"""Typed results: one pydantic model per schema component of the API's ``/openapi.json``.

Fields, and which of them are always present, match the components (tests/sdk/test_models.py
compares them with the live schema). Members the server adds later are kept (``extra="allow"``),
so a newer server never breaks an older client.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Metadata = dict[str, str | list[str]]


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class JobError(Model):
    code: str
    message: str


class ModelInfo(Model):
    name: str | None
    version: str | None
    #: The configured emotion model (``options.model``) of emotion, transcribe and analyze jobs.
    key: str | None = None


class Job(Model):
    """A job as ``GET /v1/jobs/{id}`` returns it; ``result`` depends on its type (see the typed accessors)."""

    id: str
    type: str
    status: str
    input: dict[str, Any]
    options: dict[str, Any]
    result: dict[str, Any] | None
    error: JobError | None
    model: ModelInfo | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    processing_ms: int | None
    attempts: int
    subject: str | None
    occurred_at: datetime | None
    metadata: Metadata | None

    @property
    def is_finished(self) -> bool:
        return self.status in JOB_TERMINAL_STATUSES

    @property
    def emotion(self) -> EmotionResult | None:
        """The emotion result of an `emotion` job (or of an `analyze` / `transcribe` one that carries it)."""
        if not self.result:
            return None
        found = self.result if "top_emotion" in self.result else self.result.get("emotion")
        return EmotionResult.model_validate(found) if isinstance(found, dict) else None


JOB_TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})
BATCH_TERMINAL_STATUSES = frozenset({"completed", "canceled"})


class Valence(Model):
    score: float
    groups: dict[str, float]


class SentenceEmotion(Model):
    start: int
    end: int
    #: Absent in score-only mode (``options.store_input: false``).
    text: str | None = None
    top_emotion: str
    confidence: float
    emotions: list[str]
    probabilities: dict[str, float]
    valence: Valence


class EmotionResult(Model):
    top_emotion: str
    confidence: float
    emotions: list[str]
    probabilities: dict[str, float]
    valence: Valence
    truncated: bool
    windows: int | None = None
    granularity: str | None = None
    sentences: list[SentenceEmotion] | None = None
    cached: bool = False


class BatchCounts(Model):
    queued: int
    running: int
    succeeded: int
    failed: int
    canceled: int


class RowError(Model):
    row: int
    code: str
    message: str


class Batch(Model):
    id: str
    type: str
    status: str
    format: str
    total_items: int
    invalid_items: int
    counts: BatchCounts
    progress: float
    eta_s: float | None
    errors: list[RowError]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: dict[str, str]

    @property
    def is_finished(self) -> bool:
        return self.status in BATCH_TERMINAL_STATUSES


class ResultLine(Model):
    """One line of ``GET /v1/batches/{id}/results``."""

    row: int
    id: str | None
    job_id: str
    status: str
    subject: str | None = None
    occurred_at: datetime | None = None
    metadata: Metadata | None = None
    result: EmotionResult | None = None
    error: JobError | None = None


class ValenceSplit(Model):
    positive: float
    negative: float
    ambiguous: float
    neutral: float


class TopEmotion(Model):
    label: str
    mean_probability: float


class TimelineBucket(Model):
    start: datetime
    end: datetime
    entries: int
    mean_probabilities: dict[str, float]
    share_over_threshold: dict[str, float]
    top_emotions: list[TopEmotion]
    valence: ValenceSplit
    subjects: int | None = None


class Timeline(Model):
    subject: str | None = None
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    bucket: str
    tz: str
    buckets: list[TimelineBucket]


class InsightsPeriod(Model):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    entries: int


class LabelChange(Model):
    label: str
    effect_size: float | None
    effect_size_interval: list[float] | None
    window_mean_probability: float | None
    baseline_mean_probability: float | None
    window_share_over_threshold: float | None
    baseline_share_over_threshold: float | None


class Insights(Model):
    """Descriptive statistics of the model's outputs for a subject's entries: a window against its baseline."""

    subject: str
    description: str
    window: InsightsPeriod
    baseline: InsightsPeriod
    min_entries: int
    enough_entries: bool
    shift_score: float | None
    rose: list[LabelChange]
    fell: list[LabelChange]


class TagCorrelation(Model):
    tag: str
    label: str
    lift: float
    lift_interval: list[float]
    entries_with_tag: int
    label_passes_with_tag: int
    entries_without_tag: int
    label_passes_without_tag: int


class Correlations(Model):
    subject: str | None = None
    description: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    entries: int
    entries_limit: int
    min_support: int
    pairs_tested: int
    familywise_confidence: float
    correlations: list[TagCorrelation]


class Endpoint(Model):
    """A webhook endpoint; ``secret`` only in the answer that created or rotated it."""

    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    created_at: datetime
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None
    secret: str | None = None


class Attempt(Model):
    number: int
    attempted_at: datetime
    url: str
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None


class Delivery(Model):
    id: str
    webhook_id: str
    event_type: str
    status: str
    endpoint_id: str | None
    job_id: str | None
    batch_id: str | None
    url: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[Attempt]
    payload: dict[str, Any]


class SigningSecret(Model):
    secret: str
    rotated_at: datetime | None
    previous_secret_expires_at: datetime | None


class Token(Model):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    scope: str


class Problem(Model):
    """An RFC 9457 problem document; extension members are kept as extra fields."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Erasure(Model):
    """``DELETE /v1/subjects/{subject}``: the erasure of every stored entry of a subject."""

    id: str
    subject: str
    status: str
    counts: dict[str, int] | None
    created_at: datetime
    finished_at: datetime | None
    links: dict[str, str]
    _waiter: Any = PrivateAttr(default=None)

    @property
    def is_finished(self) -> bool:
        return self.status == "completed"

    def wait(self, timeout: float | None = 300.0) -> Erasure:
        """The erasure once completed (polled); an awaitable of it from an ``AsyncClient``."""
        return self._waiter(timeout)


class Event(Model):
    """One Server-Sent Event of a job's or batch's stream: ``event`` names it, ``data`` is its JSON object."""

    id: str | None = None
    event: str = "message"
    data: Any = None
