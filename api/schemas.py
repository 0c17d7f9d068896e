"""Request and response schemas: the same models validate requests and generate /openapi.json."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

JobType = Literal["emotion"]
JobStatusName = Literal["queued", "running", "succeeded", "failed", "canceled"]


class TextInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The text to analyse; punctuation and emoji are kept, they carry emotion.")


class EmotionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobCreate(BaseModel):
    """`POST /v1/jobs` body."""

    model_config = ConfigDict(extra="forbid")

    type: JobType = Field(description="What to run.")
    input: TextInput
    options: EmotionOptions = Field(default_factory=EmotionOptions)


class JobError(BaseModel):
    code: str
    message: str


class ModelInfo(BaseModel):
    name: str | None
    version: str | None


class EmotionResult(BaseModel):
    top_emotion: str
    confidence: float
    emotions: list[str] = Field(description="Labels whose probability is over their tuned threshold.")
    probabilities: dict[str, float]
    truncated: bool = Field(description="True when the text was longer than the model's maximum length.")


class JobOut(BaseModel):
    id: UUID
    type: str
    status: JobStatusName
    input: dict[str, Any]
    options: dict[str, Any]
    result: dict[str, Any] | None = Field(description="For emotion jobs, an EmotionResult.")
    error: JobError | None
    model: ModelInfo | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    processing_ms: int | None
    attempts: int


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
