"""`GET /v1/subjects/{subject}/correlations` and `GET /v1/analytics/correlations` on PostgreSQL and SQLite:
a planted tag-label association is found, and the same entries with their tags shuffled find nothing."""
from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest

from api.schemas.insights import Correlations
from tests.support.problems import assert_problem
from tests.support.scored_entries import Entry, leaning, store_entries

END = datetime(2026, 6, 15, tzinfo=UTC)
QUERY = {"from": (END - timedelta(days=60)).isoformat(), "to": END.isoformat()}


def planted(rng: random.Random, count: int, subject: str) -> list[Entry]:
    """Random tags and a `place`; joy leads in most entries tagged `gym` and in few others."""
    entries = []
    for _ in range(count):
        tags = [tag for tag in ("gym", "work", "poor-sleep") if rng.random() < 0.35]
        joyful = rng.random() < (0.8 if "gym" in tags else 0.1)
        probabilities = leaning(rng, "joy" if joyful else rng.choice(["neutral", "sadness", "curiosity"]))
        metadata = {"tags": tags, "place": rng.choice(["home", "office"])}
        entries.append(Entry(END - timedelta(days=rng.uniform(1, 50)), probabilities, subject, metadata))
    return entries


def shuffled(rng: random.Random, entries: list[Entry]) -> list[Entry]:
    metadata = [entry.metadata for entry in entries]
    rng.shuffle(metadata)
    return [dataclasses.replace(entry, metadata=tags) for entry, tags in zip(entries, metadata, strict=True)]


def found(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [(pair["tag"], pair["label"]) for pair in response.get_json()["correlations"]]


def test_a_planted_tag_label_association_is_found(client, make_tenant, settings):
    tenant = make_tenant()
    store_entries(settings.database_url, tenant.tenant_id, planted(random.Random(8), 150, "ana"))
    response = client.get("/v1/subjects/ana/correlations", query_string=QUERY, headers=tenant.headers)
    assert found(response) == [("gym", "joy")]
    body = response.get_json()
    Correlations.model_validate(body)
    pair = body["correlations"][0]
    assert body["entries"] == 150 and body["pairs_tested"] > 28
    assert pair["lift"] > pair["lift_interval"][0] > 1
    assert pair["entries_with_tag"] + pair["entries_without_tag"] == 150
    assert pair["label_passes_with_tag"] / pair["entries_with_tag"] > pair["label_passes_without_tag"] / \
        pair["entries_without_tag"]


def test_the_same_entries_with_shuffled_tags_find_nothing(client, make_tenant, settings):
    tenant, rng = make_tenant(), random.Random(8)
    store_entries(settings.database_url, tenant.tenant_id, shuffled(random.Random(9), planted(rng, 150, "ana")))
    response = client.get("/v1/subjects/ana/correlations", query_string=QUERY, headers=tenant.headers)
    assert found(response) == []
    assert response.get_json()["pairs_tested"] > 28


def test_the_tenant_wide_answer_adds_up_every_subject(client, make_tenant, settings):
    tenant, rng = make_tenant(), random.Random(10)
    store_entries(settings.database_url, tenant.tenant_id,
                  planted(rng, 60, "ana") + planted(rng, 60, "ben") + planted(rng, 60, "cleo"))
    response = client.get("/v1/analytics/correlations", query_string=QUERY, headers=tenant.headers)
    assert ("gym", "joy") in found(response)
    assert response.get_json()["entries"] == 180
    other = make_tenant()
    assert client.get("/v1/analytics/correlations", query_string=QUERY, headers=other.headers
                      ).get_json()["entries"] == 0


def test_tags_with_too_little_support_are_not_tested(client, make_tenant, settings):
    tenant = make_tenant()
    store_entries(settings.database_url, tenant.tenant_id, planted(random.Random(11), 12, "ana"))
    body = client.get("/v1/subjects/ana/correlations", query_string=QUERY, headers=tenant.headers).get_json()
    assert (body["entries"], body["pairs_tested"], body["correlations"]) == (12, 0, [])


@pytest.mark.parametrize("query", [{"from": "last week"}, {"to": "2026-13-01T00:00:00Z"},
                                   {"from": "2026-06-10T00:00:00Z", "to": "2026-06-01T00:00:00Z"},
                                   {"from": "2020-01-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}])
def test_bad_ranges_are_422_problems(client, make_tenant, query):
    response = client.get("/v1/analytics/correlations", query_string=query, headers=make_tenant().headers)
    assert_problem(response, 422, "invalid-analytics-query")


def test_correlations_need_the_analytics_scope(client, make_tenant):
    tenant = make_tenant(scopes=["jobs:read"])
    assert_problem(client.get("/v1/subjects/ana/correlations", headers=tenant.headers), 403, "insufficient-scope")
