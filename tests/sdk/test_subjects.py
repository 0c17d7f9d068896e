"""``samo.Client`` subjects: a timeline, insights and correlations of seeded entries."""
from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import samo
from tests.support.scored_entries import Entry, leaning, store_entries


def seeded_subject(settings, tenant, days: int = 6) -> tuple[str, datetime]:
    rng, subject = random.Random(7), f"s-{uuid.uuid4().hex[:8]}"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    entries = [Entry(start + timedelta(days=day, hours=9), leaning(rng, "joy" if day % 2 else "sadness"), subject,
                     {"tags": ["walk"]} if day % 2 else None) for day in range(days)]
    store_entries(settings.database_url, tenant.tenant_id, entries)
    return subject, start


def test_a_subjects_timeline_by_day(sdk, sdk_tenant, settings):
    subject, start = seeded_subject(settings, sdk_tenant)
    timeline = sdk.subjects.emotions(subject, start, start + timedelta(days=6), bucket="day")
    assert isinstance(timeline, samo.Timeline) and timeline.subject == subject
    assert timeline.start == start and timeline.bucket == "day"
    assert [bucket.entries for bucket in timeline.buckets] == [1] * 6
    tops = [bucket.top_emotions[0].label for bucket in timeline.buckets]
    assert tops == ["sadness", "joy"] * 3
    assert timeline.buckets[1].mean_probabilities["joy"] > 0.5


def test_insights_and_correlations_of_a_subject(sdk, sdk_tenant, settings):
    subject, start = seeded_subject(settings, sdk_tenant)
    end = start + timedelta(days=6)
    insights = sdk.subjects.insights(subject, window="3d", baseline="3d", end=end)
    assert isinstance(insights, samo.Insights) and insights.subject == subject
    assert insights.window.entries == 3 and insights.baseline.entries == 3
    correlations = sdk.subjects.correlations(subject, start=start, end=end)
    assert isinstance(correlations, samo.Correlations) and correlations.entries == 6


def test_a_subject_name_with_a_slash_and_spaces_reaches_its_entries(sdk, sdk_tenant, settings):
    subject = "team a/person 1"
    start = datetime(2026, 10, 1, tzinfo=UTC)
    store_entries(settings.database_url, sdk_tenant.tenant_id,
                  [Entry(start + timedelta(hours=1), leaning(random.Random(1), "joy"), subject)])
    timeline = sdk.subjects.emotions(subject, start, start + timedelta(days=1))
    assert timeline.subject == subject and timeline.buckets[0].entries == 1
