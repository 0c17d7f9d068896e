"""Request and response schemas: the same models validate requests and generate /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from api.intake.entries import (
    MAX_METADATA_KEYS,
    MAX_SUBJECT_CHARS,
    check_metadata,
    check_subject,
    parse_occurred_at,
)
from api.schemas.webhooks import BatchWebhook, JobWebhook
from config import job_types
from config.job_options import DataControls, ServiceName


def registered_job_type(name: str) -> str:
    if job_types.job_type(name) is None:
        raise ValueError(f"unknown job type {name!r}; known: {', '.join(job_types.names())}")
    return name


def job_type_schema(schema: dict) -> None:
    """The registry's types, read when /openapi.json is built (types may be registered after import)."""
    schema["enum"] = job_types.names()
    schema["description"] = "What to run. " + " ".join(
        f"`{entry.name}`: {entry.description}" for entry in job_types.JOB_TYPES.values())


JobType = Annotated[str, AfterValidator(registered_job_type), Field(json_schema_extra=job_type_schema)]
Subject = Annotated[str, AfterValidator(check_subject), Field(
    min_length=1, max_length=MAX_SUBJECT_CHARS,
    description="The app's opaque id for the end user who wrote or recorded the entry (no personal data "
                "needed), scoped to the account: timelines are read per subject.")]
OccurredAt = Annotated[datetime, BeforeValidator(parse_occurred_at), Field(
    description="When the entry was written or recorded, RFC 3339 with an offset; default: the submission "
                "time. Timelines bucket entries by it.")]
EntryMetadata = Annotated[dict[str, str | list[str]], AfterValidator(check_metadata), Field(
    max_length=MAX_METADATA_KEYS,
    description=f"Up to {MAX_METADATA_KEYS} keys, each a string or a list of strings "
                "(for example `{\"tags\": [\"work\", \"poor-sleep\"]}`).")]


class EntryFields(BaseModel):
    """The entry a job analyses: whose it is, when it was written, and the app's metadata."""

    subject: Subject | None = None
    occurred_at: OccurredAt | None = None
    metadata: EntryMetadata | None = None
JobStatusName = Literal["queued", "running", "succeeded", "failed", "canceled"]


class TextInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The text to analyse; punctuation and emoji are kept, they carry emotion.")


class JobCreate(EntryFields):
    """`POST /v1/jobs` JSON body (emotion, summarize, analyze of text).

    `transcribe`, and `analyze` of audio, take `multipart/form-data` instead: a `file` part,
    a `type` field and optional `options` (a JSON object) and `services` fields.
    """

    model_config = ConfigDict(extra="forbid")

    type: JobType
    input: TextInput
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Per type: its options schema (EmotionOptions, SummarizeOptions, TranscribeOptions, "
                    "AnalyzeOptions).",
    )
    services: list[ServiceName] | None = Field(
        default=None, description="`analyze` only: same as `options.services`.")
    webhook: JobWebhook | None = Field(
        default=None, description="Called when this job ends; see `/v1/webhooks/signing-secret`.")


class JobError(BaseModel):
    code: str
    message: str


class ModelInfo(BaseModel):
    name: str | None
    version: str | None
    key: str | None = Field(default=None, description="The configured emotion model (`options.model`, "
                                                      "default `default`) of jobs that run one: "
                                                      "`emotion`, `transcribe`, `analyze`.")


class Valence(BaseModel):
    score: float = Field(ge=-1, le=1, description="share(positive) - share(negative), in [-1, 1].")
    groups: dict[str, float] = Field(
        description="`positive`, `negative`, `ambiguous`, `neutral`: each group's share of the summed label "
                    "probabilities (GoEmotions' sentiment grouping); they add up to 1.")


class SentenceEmotion(BaseModel):
    start: int = Field(description="Offset of the sentence in the input text: `text[start:end]` is it.")
    end: int
    text: str | None = Field(default=None, description="Absent in score-only mode (`options.store_input: false`).")
    top_emotion: str
    confidence: float
    emotions: list[str]
    probabilities: dict[str, float]
    valence: Valence


class EmotionResult(BaseModel):
    top_emotion: str = Field(description="The most probable label (of `options.labels` when given).")
    confidence: float
    emotions: list[str] = Field(description="Labels at or over their threshold (`options.threshold`; tuned per "
                                            "label by default), most probable first, at most `options.top_k`.")
    probabilities: dict[str, float] = Field(description="Every label's probability (or those of `options.labels`); "
                                                        "of a long text or with sentences, the length-weighted mean "
                                                        "of its parts'.")
    valence: Valence
    truncated: bool = Field(description="True only when `options.truncate` was asked and the text was longer than "
                                        "the model's window; otherwise every window is read.")
    windows: int | None = Field(default=None, description="Parts of the text the model read (1 for a text that "
                                                          "fits its window).")
    granularity: Literal["sentence"] | None = Field(default=None, description="Set for `granularity: sentence`.")
    sentences: list[SentenceEmotion] | None = Field(
        default=None, description="`granularity: sentence` of a text: each sentence with its own result.")
    cached: bool = Field(default=False, description="True when the same model version had analysed the same "
                                                    "text before and this result was served from the cache.")


class Word(BaseModel):
    word: str | None = Field(default=None, description="Absent in score-only mode (`options.store_input: false`).")
    start: float = Field(description="Seconds from the start of the recording, within its segment.")
    end: float
    probability: float


class Segment(BaseModel):
    id: int
    start: float = Field(description="Seconds from the start of the recording.")
    end: float
    text: str | None = Field(default=None, description="Absent in score-only mode (`options.store_input: false`).")
    words: list[Word] | None = Field(default=None, description="With `options.word_timestamps`.")
    emotion: EmotionResult | None = None


class TranscriptionResult(BaseModel):
    language: str
    language_probability: float
    duration_s: float
    text: str | None = Field(default=None, description="Absent in score-only mode (`options.store_input: false`) "
                                                       "unless `options.store_transcript: true`.")
    segments: list[Segment]
    emotion: EmotionResult | None = Field(default=None, description="Of the whole text; with `granularity: "
                                                                    "sentence`, the aggregate of the segments'.")
    models: dict[str, ModelInfo] | None = Field(default=None, description="`transcription` and `emotion`.")
    timings_ms: dict[str, int] | None = Field(default=None, description="Worker time per stage.")


class SummaryResult(BaseModel):
    summary: str | None = Field(default=None, description="Absent in score-only mode (`options.store_input: false`).")
    method: Literal["extractive", "abstractive"]
    sentence_indices: list[int] = Field(description="Chosen sentences of the input, in order (extractive).")
    sentences_total: int
    compression_ratio: float = Field(description="Summary length over input length, in characters.")


class AnalyzeResult(BaseModel):
    services: list[ServiceName]
    transcript: TranscriptionResult | None = Field(default=None, description="For audio input.")
    emotion: EmotionResult | None = None
    summary: SummaryResult | None = None
    models: dict[str, ModelInfo] | None = Field(default=None, description="Per service that ran.")


class JobOut(BaseModel):
    id: UUID
    type: str
    status: JobStatusName
    input: dict[str, Any] | None = Field(description="The submitted input; null once a score-only job "
                                                     "(`options.store_input: false`) has finished.")
    options: dict[str, Any]
    result: dict[str, Any] | None = Field(
        description="EmotionResult, SummaryResult, TranscriptionResult or AnalyzeResult, by job type.")
    error: JobError | None
    model: ModelInfo | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    processing_ms: int | None
    attempts: int
    subject: str | None = Field(description="The entry's subject, if the submission named one.")
    occurred_at: datetime | None = Field(description="When the entry was written or recorded (UTC).")
    metadata: dict[str, str | list[str]] | None = Field(description="The submission's `metadata`.")


class JobList(BaseModel):
    data: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; extension members vary by `type`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class TokenRequest(BaseModel):
    grant_type: Literal["api_key", "refresh_token"]
    api_key: str | None = None
    refresh_token: str | None = None
    scope: str | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    scope: str


BatchStatusName = Literal["running", "completed", "canceled"]


class BatchItem(EntryFields):
    """One item of a bulk upload (a bare string is accepted too); CSV uploads take `subject`,
    `occurred_at` and `metadata` (a JSON object) columns."""

    text: str
    id: str | int | None = Field(default=None, description="The client's id for the item, echoed in results.")


class BatchCreate(BaseModel):
    """`POST /v1/batches` as a JSON object; a bare JSON array of items is accepted too."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["emotion"] = "emotion"
    items: list[Any] = Field(description="BatchItem objects or strings; invalid ones are reported by row.")
    webhook: BatchWebhook | None = Field(
        default=None, description="Called when the batch completes (and on progress, if asked for).")
    options: DataControls = Field(
        default_factory=DataControls,
        description="`store_input` and `retention_days` for every item, as a job's options take them.")


class RowError(BaseModel):
    row: int = Field(description="1-based: the array element, the JSONL line, the CSV record after the header.")
    code: str
    message: str


class BatchCounts(BaseModel):
    queued: int
    running: int
    succeeded: int
    failed: int
    canceled: int


class BatchOut(BaseModel):
    id: UUID
    type: str
    status: BatchStatusName
    format: str = Field(description="json, jsonl or csv: how the items were uploaded.")
    total_items: int = Field(description="Valid items, each a job of this batch.")
    invalid_items: int = Field(description="Rows refused at upload; see `errors`.")
    counts: BatchCounts
    progress: float = Field(description="Share of items finished, 0 to 1.")
    eta_s: float | None = Field(description="Estimated seconds until every item is finished, from the rate so far.")
    errors: list[RowError] = Field(description="The first rejected rows (up to 1,000).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: dict[str, str]


class BatchList(BaseModel):
    data: list[BatchOut]
    next_cursor: str | None


class BatchResultLine(BaseModel):
    """A line of `GET /v1/batches/{id}/results?format=jsonl` (CSV has the same fields, flattened)."""

    row: int
    id: str | None = Field(description="The client's id for the item.")
    job_id: UUID
    status: Literal["succeeded", "failed", "canceled"]
    subject: str | None = None
    occurred_at: datetime | None = None
    metadata: dict[str, str | list[str]] | None = Field(
        default=None, description="In CSV, the JSON text of the object.")
    result: EmotionResult | None = None
    error: JobError | None = None
