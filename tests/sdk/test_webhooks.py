"""``samo.Client`` webhooks, and ``samo.webhooks.verify`` of a real delivery made by a `webhooks` worker."""
from __future__ import annotations

import pytest

import samo
from tests.support.polling import wait_until


def test_verify_a_real_job_delivery(sdk, receiver):
    secret = sdk.webhooks.signing_secret().secret
    job = sdk.jobs.create(text="Thank you for listening.", webhook=receiver.url("/sdk-job"))
    done = sdk.jobs.wait(job, timeout=120)
    calls = wait_until(lambda: receiver.received("/sdk-job"), timeout_s=60, message="webhook received")
    payload = samo.webhooks.verify(calls[0]["body"], calls[0]["headers"], secret)
    assert payload["type"] == "job.succeeded" and payload["data"]["id"] == done.id
    assert samo.Job.model_validate(payload["data"]) == done
    with pytest.raises(samo.InvalidSignature):
        samo.webhooks.verify(calls[0]["body"].replace(b"succeeded", b"failed"), calls[0]["headers"], secret)
    rotated = sdk.webhooks.rotate_signing_secret()
    with pytest.raises(samo.InvalidSignature):
        samo.webhooks.verify(calls[0]["body"], calls[0]["headers"], rotated.secret)


def test_endpoints_deliveries_redeliver_and_rotate(sdk, receiver):
    endpoint = sdk.webhooks.create_endpoint(receiver.url("/sdk-endpoint"), events=["job.succeeded"],
                                            description="sdk test")
    assert endpoint.secret.startswith("whsec_") and endpoint.enabled
    assert endpoint.id in [found.id for found in sdk.webhooks.endpoints()]
    assert sdk.webhooks.get_endpoint(endpoint).secret is None
    job = sdk.jobs.run(text="A lovely morning.", timeout=120)
    calls = wait_until(lambda: receiver.received("/sdk-endpoint"), timeout_s=60, message="endpoint delivery")
    assert samo.webhooks.verify(calls[0]["body"], calls[0]["headers"], endpoint.secret)["data"]["id"] == job.id

    deliveries = wait_until(lambda: [d for d in sdk.webhooks.deliveries(endpoint=endpoint) if d.status != "pending"],
                            timeout_s=30, message="delivery recorded")
    assert deliveries[0].job_id == job.id and deliveries[0].attempt_log
    assert sdk.webhooks.get_delivery(deliveries[0].id).webhook_id == deliveries[0].webhook_id
    sdk.webhooks.redeliver(deliveries[0])
    again = wait_until(lambda: receiver.received("/sdk-endpoint")[1:], timeout_s=60, message="redelivery")
    assert again[0]["headers"]["webhook-id"] == calls[0]["headers"]["webhook-id"]

    rotated = sdk.webhooks.rotate_endpoint_secret(endpoint)
    assert rotated.secret != endpoint.secret and rotated.previous_secret_expires_at is not None
    updated = sdk.webhooks.update_endpoint(endpoint, description="renamed", enabled=False)
    assert (updated.description, updated.enabled) == ("renamed", False)
    sdk.webhooks.delete_endpoint(endpoint)
    with pytest.raises(samo.NotFoundError):
        sdk.webhooks.get_endpoint(endpoint)
