"""The `options` each job type accepts, as pydantic models: the API validates with them and
/openapi.json documents them; workers receive the validated, dumped dict."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ServiceName = Literal["emotion", "summary"]


class EmotionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SummarizeOptions(BaseModel):
    """Summary length: `sentences` or `ratio` (not both); neither: 3 sentences, or 30 % of a short text."""

    model_config = ConfigDict(extra="forbid")

    sentences: int | None = Field(default=None, ge=1, strict=True, description="At most this many sentences.")
    ratio: float | None = Field(default=None, gt=0, le=1, description="This share of the input's sentences.")

    @model_validator(mode="after")
    def _one_length(self):
        if self.sentences is not None and self.ratio is not None:
            raise ValueError("give either `sentences` or `ratio`, not both")
        return self


class TranscribeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}$",
                                 description="ISO 639-1 code of the spoken language; omitted: detected.")


class AnalyzeOptions(SummarizeOptions, TranscribeOptions):
    """`services` picks the analyses; for audio, transcription always runs first."""

    model_config = ConfigDict(extra="forbid")

    services: list[ServiceName] = Field(default_factory=lambda: ["emotion", "summary"], min_length=1)
