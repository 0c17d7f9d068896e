"""A path id that is not a UUID answers like an id of nothing: the resource's own 404 problem."""
from __future__ import annotations

import pytest

from tests.support.problems import assert_problem

MALFORMED = ("not-a-job", "x", "1234", "00000000-0000-0000-0000-00000000000g")


@pytest.mark.parametrize("malformed", MALFORMED)
@pytest.mark.parametrize(("method", "path", "slug"), [
    ("get", "/v1/jobs/{}", "job-not-found"),
    ("post", "/v1/jobs/{}/cancel", "job-not-found"),
    ("get", "/v1/batches/{}", "batch-not-found"),
    ("get", "/v1/batches/{}/results", "batch-not-found"),
    ("get", "/v1/batches/{}/jobs", "batch-not-found"),
    ("post", "/v1/batches/{}/cancel", "batch-not-found"),
    ("get", "/v1/webhooks/endpoints/{}", "webhook-endpoint-not-found"),
    ("patch", "/v1/webhooks/endpoints/{}", "webhook-endpoint-not-found"),
    ("delete", "/v1/webhooks/endpoints/{}", "webhook-endpoint-not-found"),
    ("post", "/v1/webhooks/endpoints/{}/rotate-secret", "webhook-endpoint-not-found"),
    ("get", "/v1/webhooks/endpoints/{}/deliveries", "webhook-endpoint-not-found"),
    ("get", "/v1/webhooks/deliveries/{}", "webhook-delivery-not-found"),
    ("post", "/v1/webhooks/deliveries/{}/redeliver", "webhook-delivery-not-found"),
])
def test_a_malformed_id_is_the_resources_not_found_problem(client, make_tenant, method, path, slug, malformed):
    kwargs = {"json": {"description": "x"}} if method == "patch" else {}
    response = getattr(client, method)(path.format(malformed), headers=make_tenant().headers, **kwargs)
    assert_problem(response, 404, slug)


def test_a_malformed_id_still_needs_credentials(client):
    assert assert_problem(client.get("/v1/jobs/not-a-job"), 401, "missing-credentials")


def test_url_rules_and_their_metric_labels_keep_the_uuid_converter(app):
    assert "/v1/jobs/<uuid:job_id>" in {rule.rule for rule in app.url_map.iter_rules()}
