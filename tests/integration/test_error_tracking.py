"""A failing task reaches error tracking without its input: a real worker, its real SDK, a local receiver."""
from __future__ import annotations

import dataclasses

from tests.conftest import settings_env
from tests.support.http import post_job
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import CeleryWorker, serve_app_in_thread
from tests.support.sentry_receiver import decode_envelope, sentry_receiver
from tests.support.services import claimed_redis_database

TEXT = "my neighbour's name and my private worries"


def test_a_failing_task_sends_an_event_without_its_input_text(settings, make_tenant):
    from api import create_app

    tenant = make_tenant()
    with claimed_redis_database() as redis_url, sentry_receiver() as (dsn, bodies):
        isolated = dataclasses.replace(settings, redis_url=redis_url)
        env = {**settings_env(isolated), "SAMO_SENTRY_DSN": dsn, "SAMO_SENTRY_ENVIRONMENT": "test"}
        worker = CeleryWorker(env, module="tests.support.failing_worker")
        with serve_app_in_thread(create_app(isolated, {"TESTING": True})) as base_url:
            worker.start()
            try:
                job_id = post_job(base_url, tenant.headers, TEXT)["id"]
                job = wait_for_job(base_url, job_id, tenant.headers)
                events = wait_until(lambda: [item for body in bodies for item in decode_envelope(body)
                                             if item.get("exception")], timeout_s=30, message="an error event")
            finally:
                worker.stop()

    assert job["status"] == "failed" and job["error"]["code"] == "inference_error"
    (event,) = events
    assert event["environment"] == "test"
    assert any(value["type"] == "RuntimeError" for value in event["exception"]["values"])
    assert "[input text]" in event["exception"]["values"][-1]["value"]
    sent = b"".join(bodies).decode(errors="replace")
    assert TEXT not in sent and "private worries" not in sent
    assert isolated.jwt_secret not in sent and tenant.api_key not in sent
