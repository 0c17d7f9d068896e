"""The problems an operation answers are listed in its OpenAPI responses (derived from one table)."""
from __future__ import annotations

import uuid

import pytest

from tests.support.problems import assert_problem


@pytest.fixture(scope="module")
def document(app):
    return app.test_client().get("/openapi.json").get_json()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def concrete(path: str) -> str:
    """The path with an id of nobody's resource in each placeholder."""
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + str(uuid.uuid4()) + path[end + 1:]
    return path


def test_every_authenticated_operation_documents_ambiguous_credentials_and_answers_them(client, document,
                                                                                          make_tenant):
    tenant = make_tenant()
    ambiguous = {"Authorization": f"ApiKey {tenant.api_key}", "X-API-Key": tenant.api_key}
    checked = 0
    for path, method, operation in operations(document):
        if operation.get("security") == []:
            continue
        response = client.open(concrete(path), method=method.upper(), headers=ambiguous, json={})
        assert_problem(response, 400, "ambiguous-credentials")
        assert "400" in operation["responses"], f"{method.upper()} {path}"
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize(("path", "method", "statuses"), [
    ("/v1/jobs", "post", {"400", "401", "403", "409", "413", "415", "422", "429", "503"}),
    ("/v1/batches", "post", {"409", "413", "415", "422", "503"}),
    ("/v1/jobs/{job_id}/cancel", "post", {"404", "409", "503"}),
    ("/v1/batches/{batch_id}/cancel", "post", {"404", "409"}),
    ("/v1/webhooks/deliveries/{delivery_id}/redeliver", "post", {"404", "409"}),
    ("/v1/webhooks/endpoints", "get", {"400", "429", "503"}),
    ("/v1/auth/token", "post", {"400", "401", "413", "415", "422", "429", "503"}),
    ("/readyz", "get", {"503"}),
])
def test_operations_document_the_problems_they_answer(document, path, method, statuses):
    assert statuses <= set(document["paths"][path][method]["responses"])


def test_problem_responses_are_problem_json_and_server_refusals_are_everywhere(document):
    for path, method, operation in operations(document):
        for status in ("414", "431"):
            assert status in operation["responses"], f"{method.upper()} {path}"
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], f"{method.upper()} {path}"
