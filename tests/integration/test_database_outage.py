"""A database outage answers 503 `service-unavailable` with Retry-After on every endpoint, never 500.

The database is a PostgreSQL server of the test's own (``tests.support.postgres``), stopped
and started again under the apps; the shared server on 5432 is never touched. The apps trust
a verified key for longer than the outage, so a submission gets past authentication and fails
where its row is written: in the group-commit writer or in the request's own transaction.
"""
from __future__ import annotations

import dataclasses
import logging
import uuid

import pytest

from tests.support.http import EMOTION_JOB
from tests.support.polling import wait_until
from tests.support.postgres import own_postgres
from tests.support.problems import assert_problem
from tests.support.services import claimed_redis_database
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.postgresql_only(
    reason="stops and restarts a PostgreSQL server of its own; SQLite's outage is tests/api/test_outages.py")
BATCH = {"type": "emotion", "items": [{"id": "a", "text": "What a lovely day."}]}


@pytest.fixture(scope="module")
def server():
    from db.migrate import upgrade_to_head

    with own_postgres() as postgres:
        upgrade_to_head(postgres.url)
        yield postgres


@pytest.fixture(scope="module")
def outage_settings(settings, server):
    with claimed_redis_database() as redis_url:
        yield dataclasses.replace(settings, database_url=server.url, redis_url=redis_url, auth_cache_ttl_s=600.0)


@pytest.fixture(scope="module")
def apps(outage_settings):
    """The API on each submission path (``api.fastpath``), on the test's own server."""
    from api import create_app

    return {path: create_app(dataclasses.replace(outage_settings, group_commit=on), {"TESTING": True})
            for path, on in (("group-commit", True), ("plain", False))}


def assert_unavailable(response) -> None:
    body = assert_problem(response, 503, "service-unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert body["dependency"] == "database"


def accepted_again(client, tenant) -> bool:
    response = client.post("/v1/jobs", json=EMOTION_JOB, headers=tenant.headers)
    if response.status_code != 202:
        assert_unavailable(response)  # a pooled connection from before the restart, at most
    return response.status_code == 202


def test_every_endpoint_answers_503_while_the_database_is_down_and_202_when_it_is_back(server, apps, caplog):
    private = {"type": "emotion", "input": {"text": f"private words {uuid.uuid4().hex}"}}
    tenant = new_tenant(server.url)
    unseen = new_tenant(server.url)  # its key was never verified: authentication itself meets the outage
    jobs = {}
    for path, app in apps.items():
        client = app.test_client()
        accepted = client.post("/v1/jobs", json=EMOTION_JOB, headers=tenant.headers)
        assert accepted.status_code == 202, (path, accepted.get_data(as_text=True))
        jobs[path] = accepted.get_json()["id"]

    server.stop()
    caplog.set_level(logging.INFO)
    try:
        for path, app in apps.items():
            client = app.test_client()
            headers = tenant.headers
            for response in (
                client.post("/v1/jobs", json=private, headers=headers),
                client.post("/v1/jobs", json=private, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}),
                client.get(f"/v1/jobs/{jobs[path]}", headers=headers),
                client.get("/v1/jobs", headers=headers),
                client.post(f"/v1/jobs/{jobs[path]}/cancel", headers=headers),
                client.post("/v1/batches", json=BATCH, headers=headers),
                client.get("/v1/batches", headers=headers),
                client.get("/v1/webhooks/endpoints", headers=headers),
                client.post("/v1/auth/token", json={"grant_type": "api_key", "api_key": tenant.api_key}),
                client.post("/v1/jobs", json=EMOTION_JOB, headers=unseen.headers),
            ):
                assert_unavailable(response)
            ready = client.get("/readyz")
            body = assert_problem(ready, 503, "not-ready")
            assert not body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
        assert "database unavailable" in caplog.text
        assert private["input"]["text"] not in caplog.text
    finally:
        server.start()

    for path, app in apps.items():
        client = app.test_client()
        wait_until(lambda client=client: accepted_again(client, tenant), timeout_s=20, interval_s=0.2,
                   message=f"202 on the {path} path")
        assert client.get(f"/v1/jobs/{jobs[path]}", headers=tenant.headers).status_code == 200
        assert client.post("/v1/jobs", json=EMOTION_JOB, headers=unseen.headers).status_code == 202
