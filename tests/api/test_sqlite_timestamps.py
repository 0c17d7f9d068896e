"""The API on SQLite, the laptop default: its timestamps are aware UTC, as they are on PostgreSQL.

Before timestamp columns normalised their values, SQLite's naive datetimes broke the refresh
grant (a naive expiry compared with an aware now) and dropped the ``Z`` from a job's
``created_at`` between its 202 and its ``GET``.
"""
from __future__ import annotations

import dataclasses

import pytest

TOKEN_URL = "/v1/auth/token"


@pytest.fixture(scope="module")
def settings(settings, tmp_path_factory):
    """The session's settings (Redis included) on a migrated SQLite file; ``make_tenant`` writes there too."""
    from db.migrate import upgrade_to_head

    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'samo.db'}"
    upgrade_to_head(sqlite_url)
    return dataclasses.replace(settings, database_url=sqlite_url)


@pytest.fixture(scope="module")
def app(settings):
    from api import create_app

    return create_app(settings, {"TESTING": True})


def test_the_app_runs_on_sqlite(settings):
    assert settings.database_url.startswith("sqlite:///")


def test_a_refresh_token_is_exchanged_for_new_tokens(client, make_tenant):
    tenant = make_tenant()
    granted = client.post(TOKEN_URL, json={"grant_type": "api_key", "api_key": tenant.api_key})
    assert granted.status_code == 200, granted.get_data(as_text=True)
    refreshed = client.post(TOKEN_URL, json={"grant_type": "refresh_token",
                                             "refresh_token": granted.get_json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)
    again = client.post(TOKEN_URL, json={"grant_type": "refresh_token",
                                         "refresh_token": refreshed.get_json()["refresh_token"]})
    assert again.status_code == 200, again.get_data(as_text=True)


def test_a_job_reads_back_with_the_utc_timestamps_it_was_accepted_with(client, make_tenant):
    tenant = make_tenant()
    accepted = client.post("/v1/jobs", json={"type": "emotion", "input": {"text": "What a lovely day."}},
                           headers=tenant.headers)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    job = client.get(accepted.headers["Location"], headers=tenant.headers)
    assert job.status_code == 200
    assert job.get_json()["created_at"].endswith("Z")
    assert job.get_json()["created_at"] == accepted.get_json()["created_at"]


def test_the_next_page_of_jobs_follows_its_cursor(client, make_tenant):
    tenant = make_tenant()
    submitted = [client.post("/v1/jobs", json={"type": "emotion", "input": {"text": f"Text {n}."}},
                             headers=tenant.headers).get_json()["id"] for n in range(3)]
    first = client.get("/v1/jobs?limit=2", headers=tenant.headers).get_json()
    second = client.get(f"/v1/jobs?limit=2&cursor={first['next_cursor']}", headers=tenant.headers)
    assert second.status_code == 200, second.get_data(as_text=True)
    listed = [job["id"] for job in first["data"] + second.get_json()["data"]]
    assert sorted(listed) == sorted(submitted)
