"""Timeline queries on PostgreSQL and SQLite (no worker): local buckets from the rollups' UTC slots,
the same on both databases, and clear problems for bad queries."""
from __future__ import annotations

import math
from datetime import datetime

import pytest

from config.valence import LABELS
from db.rollups import ScoredEntry, add_results
from db.session import session_scope
from tests.support.problems import assert_problem

#: Asia/Kolkata is +05:30; America/New_York changes to -04:00 at 2026-11-01 02:00 local (back to -05:00).
ENTRIES = [
    ("a", "2026-10-31T23:50:00-04:00", "joy"),
    ("a", "2026-11-01T00:20:00-04:00", "sadness"),
    ("a", "2026-11-01T23:40:00-05:00", "joy"),
    ("b", "2026-11-01T12:00:00-05:00", "anger"),
    (None, "2026-11-02T09:00:00-05:00", "neutral"),
]


def emotion(label: str) -> dict:
    probabilities = {name: 0.02 for name in LABELS} | {label: 0.9}
    return {"probabilities": probabilities, "emotions": [label], "top_emotion": label}


@pytest.fixture
def tenant(make_tenant, settings):
    tenant = make_tenant()
    with session_scope(settings.database_url) as session:
        add_results(session, [ScoredEntry(tenant.tenant_id, subject, datetime.fromisoformat(when), emotion(label))
                              for subject, when, label in ENTRIES])
    return tenant


def get(client, tenant, path, **query):
    return client.get(path, query_string=query, headers=tenant.headers)


def test_a_subjects_days_follow_its_time_zone_through_the_end_of_dst(client, tenant):
    response = get(client, tenant, "/v1/subjects/a/emotions", **{"from": "2026-10-25", "to": "2026-11-08",
                                                                "tz": "America/New_York"})
    assert response.status_code == 200, response.get_data(as_text=True)
    found = response.get_json()
    assert [(b["start"], b["end"], b["entries"]) for b in found["buckets"]] == [
        ("2026-10-31T00:00:00-04:00", "2026-11-01T00:00:00-04:00", 1),
        ("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00", 2)]
    day = found["buckets"][1]
    assert math.isclose(day["mean_probabilities"]["joy"], (0.9 + 0.02) / 2)
    assert day["share_over_threshold"]["joy"] == 0.5 and day["share_over_threshold"]["sadness"] == 0.5
    assert {e["label"] for e in day["top_emotions"][:2]} == {"joy", "sadness"}
    assert math.isclose(sum(day["valence"].values()), 1, abs_tol=1e-5)
    assert day["valence"]["positive"] > day["valence"]["ambiguous"]
    assert found["tz"] == "America/New_York" and found["from"] == "2026-10-25T00:00:00-04:00"


def test_a_half_hour_zone_moves_entries_to_its_own_days(client, tenant):
    found = get(client, tenant, "/v1/subjects/a/emotions", **{"from": "2026-10-25", "to": "2026-11-08",
                                                             "tz": "Asia/Kolkata"}).get_json()
    # 03:50Z, 04:20Z and 04:40Z of Nov 1 (and 2) are 09:20, 09:50 and 10:10 in Kolkata.
    assert [(b["start"], b["entries"]) for b in found["buckets"]] == [
        ("2026-11-01T00:00:00+05:30", 2), ("2026-11-02T00:00:00+05:30", 1)]


def test_the_tenant_timeline_counts_every_entry_and_distinct_subjects(client, tenant):
    found = get(client, tenant, "/v1/analytics/emotions", **{"from": "2026-10-01", "to": "2026-12-01",
                                                            "bucket": "month", "tz": "America/New_York"}).get_json()
    assert [(b["start"], b["entries"], b["subjects"]) for b in found["buckets"]] == [
        ("2026-10-01T00:00:00-04:00", 1, 1), ("2026-11-01T00:00:00-04:00", 4, 2)]
    weeks = get(client, tenant, "/v1/analytics/emotions", **{"from": "2026-10-26", "to": "2026-11-09",
                                                            "bucket": "week", "tz": "America/New_York"}).get_json()
    assert [(b["start"], b["entries"], b["subjects"]) for b in weeks["buckets"]] == [
        ("2026-10-26T00:00:00-04:00", 4, 2), ("2026-11-02T00:00:00-05:00", 1, 0)]


def test_another_tenants_subject_of_the_same_name_is_invisible(client, tenant, make_tenant):
    found = get(client, make_tenant(), "/v1/subjects/a/emotions", **{"from": "2026-10-25", "to": "2026-11-08"})
    assert found.status_code == 200 and found.get_json()["buckets"] == []


@pytest.mark.parametrize("query, field", [
    ({"from": "2026-01-01", "to": "2026-02-01", "tz": "Mars/Olympus"}, "tz"),
    ({"from": "2026-01-01", "to": "2026-02-01", "tz": "../../etc/passwd"}, "tz"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
    ({"from": "2026-01-01", "to": "2026-01-01"}, "to"),
    ({"from": "2020-01-01", "to": "2026-01-01", "bucket": "day"}, "to"),
    ({"from": "2000-01-01", "to": "2026-01-01", "bucket": "week"}, "to"),
    ({"from": "2026-01-01", "to": "2026-02-01", "bucket": "hour"}, "bucket"),
    ({"to": "2026-02-01"}, "from"),
    ({"from": "2026-13-01", "to": "2027-02-01"}, "from"),
    ({"from": "2026-01-01T00:00:00", "to": "2026-02-01"}, "from"),
])
def test_bad_queries_are_422_problems(client, tenant, query, field):
    for path in ("/v1/subjects/a/emotions", "/v1/analytics/emotions"):
        body = assert_problem(get(client, tenant, path, **query), 422, "invalid-timeline-query")
        assert body["errors"][0]["field"] == field


def test_a_subject_too_long_is_a_422_and_the_scope_is_required(client, tenant, make_tenant):
    assert_problem(get(client, tenant, f"/v1/subjects/{'x' * 129}/emotions", **{"from": "2026-01-01",
                                                                                "to": "2026-02-01"}),
                   422, "invalid-subject")
    reader = make_tenant(scopes=["jobs:read"])
    assert_problem(get(client, reader, "/v1/analytics/emotions", **{"from": "2026-01-01", "to": "2026-02-01"}),
                   403, "insufficient-scope")


def test_a_rebuild_from_the_scores_gives_the_rows_the_results_added(settings, make_tenant):
    import uuid

    from sqlalchemy import insert, select

    from db.models import EmotionScore, Job, JobStatus, emotion_rollups
    from db.rollups import VALUE_COLUMNS, rebuild, subtract_job

    tenant = make_tenant()
    job_ids = []
    with session_scope(settings.database_url) as session:
        for subject, when, label in ENTRIES:
            job = Job(id=uuid.uuid4(), tenant_id=tenant.tenant_id, type="emotion", status=JobStatus.SUCCEEDED,
                      subject=subject, occurred_at=datetime.fromisoformat(when), input={}, options={})
            session.add(job)
            session.flush()
            result = emotion(label)
            session.execute(insert(EmotionScore), [
                {"job_id": job.id, "tenant_id": tenant.tenant_id, "label": name, "probability": p,
                 "above_threshold": name in result["emotions"]} for name, p in result["probabilities"].items()])
            job_ids.append(job.id)
        add_results(session, [ScoredEntry(tenant.tenant_id, subject, datetime.fromisoformat(when), emotion(label))
                              for subject, when, label in ENTRIES])

    def rows(session):
        found = session.execute(select(emotion_rollups).where(emotion_rollups.c.tenant_id == tenant.tenant_id))
        return {(row["subject"], row["slot_start"]): [row[name] for name in VALUE_COLUMNS]
                for row in found.mappings()}

    with session_scope(settings.database_url) as session:
        added = rows(session)
        assert len(added) == 9
        rebuild(session, tenant.tenant_id)
        rebuilt = rows(session)
        assert rebuilt.keys() == added.keys()
        assert all(math.isclose(a, b, abs_tol=1e-9) for key in added for a, b in zip(added[key], rebuilt[key]))
        assert subtract_job(session, job_ids[-1])
        assert (None, datetime(2026, 11, 2, 14, 0)) not in rows(session)
        assert len(rows(session)) == 8
