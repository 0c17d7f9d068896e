"""Insights and correlations responses: descriptive statistics of the emotion model's outputs
(docs/analytics.md gives the formulas), and their OpenAPI paths."""
from __future__ import annotations

from pydantic import BaseModel, Field


class InsightsPeriod(BaseModel):
    from_: str = Field(alias="from")
    to: str = Field(description="Exclusive.")
    entries: int


class LabelChange(BaseModel):
    label: str
    effect_size: float | None = Field(description="Hedges' g of the label's probability, window minus baseline.")
    effect_size_interval: list[float] | None = Field(
        description="Familywise 95 % over the 28 labels (Bonferroni); listed only when it excludes 0.")
    window_mean_probability: float | None
    baseline_mean_probability: float | None
    window_share_over_threshold: float | None
    baseline_share_over_threshold: float | None


class Insights(BaseModel):
    """A subject's window against its own baseline, from the rollups. Statistics of model outputs, not of a person."""

    subject: str
    description: str
    window: InsightsPeriod
    baseline: InsightsPeriod
    min_entries: int = Field(description="SAMO_INSIGHTS_MIN_ENTRIES: fewer in either period, and nothing is claimed.")
    enough_entries: bool
    shift_score: float | None = Field(
        description="Jensen-Shannon divergence (bits, 0 to 1) of the two periods' mean label distributions.")
    rose: list[LabelChange]
    fell: list[LabelChange]


class TagCorrelation(BaseModel):
    tag: str = Field(description="A value of a list-valued metadata key, or `key=value` of a string one.")
    label: str
    lift: float = Field(description="Share of entries with the tag where the label passed, over the share without.")
    lift_interval: list[float] = Field(description="Log-ratio (Katz) interval, familywise 95 % over the pairs tested.")
    entries_with_tag: int
    label_passes_with_tag: int
    entries_without_tag: int
    label_passes_without_tag: int


class Correlations(BaseModel):
    """Labels over-represented in entries carrying a tag: associations in model outputs, not causes."""

    subject: str | None = Field(default=None, description="`/v1/subjects/{subject}/correlations` only.")
    description: str
    from_: str = Field(alias="from")
    to: str
    entries: int
    entries_limit: int
    min_support: int
    pairs_tested: int
    familywise_confidence: float
    correlations: list[TagCorrelation]


def insight_paths(json_content) -> dict:
    subject = {"name": "subject", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
    duration = {"type": "string", "pattern": "^[0-9]{1,4}[hdw]$"}
    insights_query = [
        subject,
        {"name": "window", "in": "query", "schema": {**duration, "default": "7d"}, "description": "1h to 366d."},
        {"name": "baseline", "in": "query", "schema": {**duration, "default": "30d"},
         "description": "The period just before the window; 1h to 1098d."},
        {"name": "end", "in": "query", "schema": {"type": "string", "format": "date-time"},
         "description": "The window's end (default now), rounded up to a quarter hour."},
    ]
    range_query = [{"name": name, "in": "query", "schema": {"type": "string", "format": "date-time"}}
                   for name in ("from", "to")]
    correlations = {"responses": {"200": {"description": "Tag-label pairs", "content": json_content(Correlations)}}}
    return {
        "/v1/subjects/{subject}/insights": {"get": {
            "summary": "A subject's window against its own baseline: effect sizes and a shift score",
            "parameters": insights_query,
            "responses": {"200": {"description": "Insights", "content": json_content(Insights)}}}},
        "/v1/subjects/{subject}/correlations": {"get": {
            **correlations, "summary": "Labels over-represented in a subject's entries carrying a metadata tag",
            "parameters": [subject, *range_query]}},
        "/v1/analytics/correlations": {"get": {
            **correlations, "summary": "Labels over-represented in the account's entries carrying a metadata tag",
            "parameters": range_query}},
    }


COMPONENT_MODELS = (Insights, InsightsPeriod, LabelChange, Correlations, TagCorrelation)
