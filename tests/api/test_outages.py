"""An unreachable SQLite database answers 503 `service-unavailable`, as PostgreSQL's outage does
(tests/integration/test_database_outage.py), and the log names the failure without the input."""
from __future__ import annotations

import dataclasses
import logging
import uuid

from tests.support.problems import assert_problem


def test_unreachable_sqlite_answers_503_with_retry_after(settings, make_tenant, tmp_path, caplog):
    from api import create_app

    # A directory where the database file should be: SQLite cannot open it.
    app = create_app(dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path}"), {"TESTING": True})
    client = app.test_client()
    tenant = make_tenant()
    text = f"private words {uuid.uuid4().hex}"
    with caplog.at_level(logging.INFO):
        responses = [
            client.post("/v1/jobs", json={"type": "emotion", "input": {"text": text}}, headers=tenant.headers),
            client.get("/v1/jobs", headers=tenant.headers),
            client.post("/v1/auth/token", json={"grant_type": "api_key", "api_key": tenant.api_key}),
        ]
    for response in responses:
        body = assert_problem(response, 503, "service-unavailable")
        assert body["dependency"] == "database"
        assert int(response.headers["Retry-After"]) > 0
    assert "database unavailable" in caplog.text
    assert text not in caplog.text and tenant.api_key not in caplog.text
