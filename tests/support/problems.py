"""Checking RFC 9457 problem responses from the Flask test client."""
from __future__ import annotations

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, slug: str) -> dict:
    """The response is a problem of this status and type, with a title and no traceback; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"].endswith("/" + slug)
    assert body["status"] == status
    assert body["title"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body
