"""`GET /v1/subjects/{subject}/insights` on PostgreSQL and SQLite: a subject's window against its own
baseline, from the rollups the workers' store keeps (entries stored with synthetic results)."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from api.schemas.insights import Insights
from tests.support.problems import assert_problem
from tests.support.scored_entries import Entry, leaning, store_entries

END = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def entries_of(rng, label: str, count: int, days_before_end: tuple[int, int], subject: str = "ana") -> list[Entry]:
    return [Entry(END - timedelta(days=rng.uniform(*days_before_end)), leaning(rng, label), subject)
            for _ in range(count)]


def insights(client, tenant, subject: str = "ana", **query):
    query = {"end": END.isoformat(), **query}
    return client.get(f"/v1/subjects/{subject}/insights", query_string=query, headers=tenant.headers)


def test_a_turn_from_joy_to_sadness_is_a_shift_with_sadness_rising_and_joy_falling(client, make_tenant, settings):
    tenant, rng = make_tenant(), random.Random(1)
    store_entries(settings.database_url, tenant.tenant_id,
                  entries_of(rng, "joy", 12, (8, 35)) + entries_of(rng, "sadness", 8, (0.1, 6.5)))
    response = insights(client, tenant, window="7d", baseline="30d")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["window"] == {"from": "2026-06-08T12:00:00Z", "to": "2026-06-15T12:00:00Z", "entries": 8}
    assert body["baseline"] == {"from": "2026-05-09T12:00:00Z", "to": "2026-06-08T12:00:00Z", "entries": 12}
    assert body["enough_entries"] is True
    assert body["shift_score"] > 0.3
    assert body["rose"][0]["label"] == "sadness" and body["fell"][0]["label"] == "joy"
    Insights.model_validate(body)
    sadness = body["rose"][0]
    assert sadness["effect_size"] > 0 and sadness["effect_size_interval"][0] > 0
    assert sadness["window_share_over_threshold"] > sadness["baseline_share_over_threshold"]


def test_a_steady_subject_has_a_small_score_and_no_claims(client, make_tenant, settings):
    tenant, rng = make_tenant(), random.Random(20)
    store_entries(settings.database_url, tenant.tenant_id,
                  entries_of(rng, "joy", 15, (8, 35)) + entries_of(rng, "joy", 10, (0.1, 6.5)))
    body = insights(client, tenant).get_json()
    assert body["enough_entries"] is True
    assert body["shift_score"] < 0.05
    assert body["rose"] == [] and body["fell"] == []


def test_three_entries_make_no_claims(client, make_tenant, settings):
    tenant, rng = make_tenant(), random.Random(3)
    store_entries(settings.database_url, tenant.tenant_id,
                  entries_of(rng, "joy", 12, (8, 35)) + entries_of(rng, "sadness", 3, (0.1, 6.5)))
    body = insights(client, tenant).get_json()
    assert (body["window"]["entries"], body["min_entries"], body["enough_entries"]) == (3, 5, False)
    assert body["shift_score"] is None and body["rose"] == [] and body["fell"] == []


def test_another_tenants_subject_of_the_same_name_is_invisible(client, make_tenant, settings):
    owner, other, rng = make_tenant(), make_tenant(), random.Random(4)
    store_entries(settings.database_url, owner.tenant_id, entries_of(rng, "joy", 6, (0.1, 6.5)))
    body = insights(client, other).get_json()
    assert body["window"]["entries"] == 0 and body["baseline"]["entries"] == 0


def test_entries_after_the_end_and_before_the_baseline_are_left_out(client, make_tenant, settings):
    tenant, rng = make_tenant(), random.Random(5)
    store_entries(settings.database_url, tenant.tenant_id,
                  entries_of(rng, "joy", 2, (-3, -1)) + entries_of(rng, "joy", 2, (40, 60))
                  + entries_of(rng, "joy", 1, (1, 2)))
    body = insights(client, tenant, window="2d", baseline="1w").get_json()
    assert (body["window"]["entries"], body["baseline"]["entries"]) == (1, 0)


@pytest.mark.parametrize("query", [{"window": "7"}, {"window": "0d"}, {"window": "7x"}, {"window": "400d"},
                                   {"baseline": "-3d"}, {"baseline": "5000d"}, {"end": "yesterday"},
                                   {"end": "2026-02-30T00:00:00Z"}])
def test_bad_query_parameters_are_422_problems(client, make_tenant, query):
    body = assert_problem(insights(client, make_tenant(), **query), 422, "invalid-analytics-query")
    assert body["errors"][0]["field"] == next(iter(query))


def test_a_subject_too_long_is_a_422_problem(client, make_tenant):
    body = assert_problem(insights(client, make_tenant(), subject="x" * 129), 422, "invalid-subject")
    assert body["errors"][0]["field"] == "subject"


def test_insights_need_the_analytics_scope(client, make_tenant):
    assert_problem(insights(client, make_tenant(scopes=["jobs:read"])), 403, "insufficient-scope")


def test_the_openapi_document_describes_insights_and_correlations(client):
    document = client.get("/openapi.json").get_json()
    for path in ("/v1/subjects/{subject}/insights", "/v1/subjects/{subject}/correlations",
                 "/v1/analytics/correlations"):
        assert "200" in document["paths"][path]["get"]["responses"], path
    assert {"Insights", "Correlations"} <= document["components"]["schemas"].keys()
