"""The jobs-in-flight cap under a burst of concurrent submissions over real HTTP, on both submission
paths and both databases, with two gunicorn worker processes sharing the tenant's estimate.

The estimate starts cold (no exact count yet), which once let a burst of 200 against a cap of 20
admit 30-odd jobs. No worker consumes the jobs, so they stay in flight until canceled.
"""
from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import settings_env
from tests.support.gunicorn import gunicorn_server
from tests.support.http import EMOTION_JOB
from tests.support.services import claimed_redis_database
from tests.support.tenants import new_tenant

CAP = 20
BURST = 200
#: Admissions beyond the cap a burst may make: the exact count errs only high, so none are
#: expected; a stated margin keeps the measure from depending on it.
SLACK = 2


def burst(base: str, headers: dict, count: int = BURST) -> list[requests.Response]:
    """``count`` submissions released together, each on its own connection."""
    start = threading.Barrier(count)

    def submit(_):
        start.wait(timeout=60)
        return requests.post(f"{base}/v1/jobs", json=EMOTION_JOB, headers=headers, timeout=60)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(submit, range(count)))


def admitted_ids(responses: list[requests.Response]) -> list[str]:
    """The ids of the accepted jobs; every other answer must be the cap's refusal."""
    for response in responses:
        if response.status_code != 202:
            assert response.status_code == 429, response.text
            assert response.json()["type"].endswith("/too-many-jobs-in-flight"), response.text
    return [response.json()["id"] for response in responses if response.status_code == 202]


def database_settings(settings, database: str, tmp_path):
    """The session's PostgreSQL database, or a migrated SQLite file (``make run``'s default)."""
    if database == "postgresql":
        return settings
    from db.migrate import upgrade_to_head

    sqlite_url = f"sqlite:///{tmp_path / 'samo.db'}"
    upgrade_to_head(sqlite_url)
    return dataclasses.replace(settings, database_url=sqlite_url)


#: Both submission paths on PostgreSQL; on SQLite the default one (each case starts a gunicorn).
CASES = [("postgresql", True), ("postgresql", False), ("sqlite", True)]


@pytest.mark.parametrize(("database", "group_commit"), CASES,
                         ids=[f"{db}-{'group-commit' if on else 'plain'}" for db, on in CASES])
def test_a_burst_admits_at_most_the_cap_and_the_cap_frees_as_jobs_finish(settings, tmp_path, database, group_commit):
    with claimed_redis_database() as redis_url:
        own = dataclasses.replace(database_settings(settings, database, tmp_path), redis_url=redis_url)
        tiers = settings_env(own)["SAMO_RATE_LIMIT_TIERS"] + f",capped=100000/60/{CAP}"
        with gunicorn_server(own, tmp_path, SAMO_RATE_LIMIT_TIERS=tiers,
                             SAMO_GROUP_COMMIT="true" if group_commit else "false") as base:
            tenant = new_tenant(own.database_url, tier="capped")
            first = admitted_ids(burst(base, tenant.headers))
            assert CAP - SLACK <= len(first) <= CAP + SLACK, len(first)
            for job_id in first:
                canceled = requests.post(f"{base}/v1/jobs/{job_id}/cancel", headers=tenant.headers, timeout=30)
                assert canceled.status_code == 200, canceled.text
            second = admitted_ids(burst(base, tenant.headers))
            assert CAP - SLACK <= len(second) <= CAP + SLACK, len(second)
