"""The `options` each job type accepts, as pydantic models: the API validates with them and
/openapi.json documents them; workers receive the validated, dumped dict."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.settings import MODEL_KEY
from config.valence import GROUP_OF_LABEL

ServiceName = Literal["emotion", "summary"]
Granularity = Literal["document", "sentence"]


class DataControls(BaseModel):
    """What of a job is kept, and for how long: every job type takes these (``tasks.retention``,
    ``db.score_only``). Omitted, the tenant's defaults apply (``api.intake.data_policy``)."""

    model_config = ConfigDict(extra="forbid")

    store_input: bool | None = Field(
        default=None, strict=True,
        description="`false`: score-only mode. The input (for audio: the upload and the transcript) is dropped "
                    "when the job finishes, in the transaction that stores its result; the result keeps scores, "
                    "offsets, times and metadata, and no text. Omitted: the tenant's default (true unless set).")
    retention_days: int | None = Field(
        default=None, ge=1, strict=True,
        description="Delete the job (input, result, scores) this many days after submission; at most the "
                    "tenant's `retention_days` when that is set. Omitted: the tenant's retention.")


class AudioDataControls(DataControls):
    model_config = ConfigDict(extra="forbid")

    store_transcript: bool | None = Field(
        default=None, strict=True,
        description="With `store_input: false`, keep the transcript's text in the result all the same "
                    "(the upload is dropped either way). Omitted: false.")


class EmotionControls(BaseModel):
    """What an emotion result shows; the model's probabilities are the same whatever is asked."""

    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(default=None, ge=1, le=len(GROUP_OF_LABEL), strict=True,
                              description="`emotions` lists at most this many labels (the most probable first).")
    threshold: Annotated[float, Field(ge=0, le=1, strict=True)] | Literal["tuned"] | None = Field(
        default=None, description="A label is in `emotions` at or over this probability (a number in [0, 1] "
                                     "for every label), or `tuned` (omitted): each label's threshold tuned on dev.")
    labels: list[str] | None = Field(
        default=None, min_length=1, max_length=len(GROUP_OF_LABEL),
        description="Only these GoEmotions labels in `probabilities`, `emotions` and `top_emotion`; "
                    "valence still reads every label.")
    granularity: Granularity | None = Field(
        default=None, description="`document` (omitted) or `sentence`: also each sentence (its offsets in the "
                                  "text; for audio, the segments with their times) with its own emotion result.")
    model: str | None = Field(
        default=None, pattern=MODEL_KEY.pattern,
        description="The key of the emotion model to run, one of those the deployment configures "
                    "(SAMO_EMOTION_MODELS; omitted: `default`); the job's `model.key` says which ran.")

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value):
        if value is None:
            return value
        unknown = [label for label in value if label not in GROUP_OF_LABEL]
        if unknown:
            raise ValueError(f"unknown label(s) {', '.join(map(repr, unknown))}; "
                             f"the labels are {', '.join(GROUP_OF_LABEL)}")
        return list(dict.fromkeys(value))


class EmotionOptions(EmotionControls, DataControls):
    model_config = ConfigDict(extra="forbid")

    truncate: bool | None = Field(
        default=None, strict=True, description="Score only the beginning of a text longer than the model's window "
                                               "(`truncated` then says whether it was); omitted: every window, "
                                               "aggregated.")

    @model_validator(mode="after")
    def _truncate_whole_documents(self):
        if self.truncate and self.granularity == "sentence":
            raise ValueError("`truncate` applies to `granularity: document` only")
        return self


class SummarizeOptions(DataControls):
    """Summary length: `sentences` or `ratio` (not both); neither: 3 sentences, or 30 % of a short text."""

    model_config = ConfigDict(extra="forbid")

    sentences: int | None = Field(default=None, ge=1, strict=True, description="At most this many sentences.")
    ratio: float | None = Field(default=None, gt=0, le=1, description="This share of the input's sentences.")

    @model_validator(mode="after")
    def _one_length(self):
        if self.sentences is not None and self.ratio is not None:
            raise ValueError("give either `sentences` or `ratio`, not both")
        return self


#: Whisper reads at most 223 prompt tokens; a longer prompt is cut from its start.
MAX_PROMPT_CHARS = 1000


class TranscribeOptions(EmotionControls, AudioDataControls):
    """faster-whisper's own decoding controls; `granularity: sentence` scores each segment on its own
    and aggregates the recording's emotion from them."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}$",
                                 description="ISO 639-1 code of the spoken language; omitted: detected.")
    initial_prompt: str | None = Field(
        default=None, min_length=1, max_length=MAX_PROMPT_CHARS,
        description="Text the recording continues: names and spellings it contains steer the transcript.")
    hotwords: str | None = Field(
        default=None, min_length=1, max_length=MAX_PROMPT_CHARS,
        description="Words or phrases to favour (product names, jargon), separated by spaces.")
    word_timestamps: bool | None = Field(
        default=None, strict=True, description="Each segment also lists its `words` with start, end (seconds) "
                                                "and probability.")
    vad: bool | None = Field(
        default=None, strict=True, description="Voice activity detection skips silence; omitted: the worker's "
                                               "setting (SAMO_WHISPER_VAD).")

    @field_validator("initial_prompt", "hotwords")
    @classmethod
    def _not_blank(cls, value):
        if value is not None and not value.strip():
            raise ValueError("must contain non-whitespace characters")
        return value


class AnalyzeOptions(SummarizeOptions, TranscribeOptions):
    """`services` picks the analyses; for audio, transcription always runs first."""

    model_config = ConfigDict(extra="forbid")

    services: list[ServiceName] = Field(default_factory=lambda: ["emotion", "summary"], min_length=1)
