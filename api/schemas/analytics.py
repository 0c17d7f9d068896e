"""Timeline responses: descriptive statistics of the emotion model's outputs per time bucket."""
from __future__ import annotations

from pydantic import BaseModel, Field


class TopEmotion(BaseModel):
    label: str
    mean_probability: float


class ValenceSplit(BaseModel):
    """Each group's share of the bucket's summed label probabilities (GoEmotions' grouping, config/valence.py)."""

    positive: float
    negative: float
    ambiguous: float
    neutral: float


class TimelineBucket(BaseModel):
    start: str = Field(description="The bucket's first local midnight, RFC 3339 with the offset of `tz` then.")
    end: str = Field(description="The next bucket's start (exclusive).")
    entries: int = Field(description="Entries whose `occurred_at` falls in the bucket.")
    mean_probabilities: dict[str, float] = Field(description="Per label, the mean probability the model gave.")
    share_over_threshold: dict[str, float] = Field(
        description="Per label, the share of entries whose probability passed the label's tuned threshold.")
    top_emotions: list[TopEmotion] = Field(description="The three labels with the highest mean probability.")
    valence: ValenceSplit
    subjects: int | None = Field(default=None, description="`/v1/analytics/emotions` only: distinct subjects.")


class Timeline(BaseModel):
    """Buckets without entries are left out. These are statistics of model outputs, not assessments of a person."""

    subject: str | None = Field(default=None, description="`/v1/subjects/{subject}/emotions` only.")
    from_: str = Field(alias="from")
    to: str
    bucket: str
    tz: str
    buckets: list[TimelineBucket]


TIMELINE_QUERY = [
    {"name": "from", "in": "query", "required": True, "schema": {"type": "string"},
     "description": "A local date (YYYY-MM-DD, midnight in `tz`) or an RFC 3339 timestamp."},
    {"name": "to", "in": "query", "required": True, "schema": {"type": "string"}, "description": "Exclusive."},
    {"name": "bucket", "in": "query", "schema": {"type": "string", "enum": ["day", "week", "month"],
                                                 "default": "day"},
     "description": "Local days, ISO weeks (from Monday) or months; at most 400 days of days, 262 weeks or "
                    "3,700 days of months."},
    {"name": "tz", "in": "query", "schema": {"type": "string", "default": "UTC"},
     "description": "An IANA time zone (Area/City); daylight-saving days are 23 or 25 hours long."},
]


def timeline_paths(json_content) -> dict:
    """The two timeline paths; `api.views.openapi` adds the problem responses."""
    get = {"parameters": TIMELINE_QUERY,
           "responses": {"200": {"description": "The timeline", "content": json_content(Timeline)}}}
    subject = {"name": "subject", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
    return {
        "/v1/subjects/{subject}/emotions": {"get": {
            **get, "summary": "A subject's emotion timeline: descriptive statistics of model outputs per bucket",
            "parameters": [subject, *TIMELINE_QUERY]}},
        "/v1/analytics/emotions": {"get": {
            **get, "summary": "The account's emotion timeline over every entry, with distinct subjects per bucket"}},
    }


COMPONENT_MODELS = (Timeline, TimelineBucket, TopEmotion, ValenceSplit)
