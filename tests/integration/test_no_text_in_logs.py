"""No input text in any log: a realistic slice at DEBUG for every logger, then a grep for sentinel sentences.

The API runs in this process (every logger captured at DEBUG); a real `cpu` worker and a real
`webhooks` worker run at DEBUG with their output in log files. The slice: a stored job with a
webhook, a score-only job, a sentence-level job, a job whose model fails with an error that
quotes its input (``tests.support.failing_worker``, only for texts with a marker), and a
rejected one. The job's own error message names no text either.
"""
from __future__ import annotations

import logging
import uuid

import pytest
import requests

from tests.support.polling import wait_for_job, wait_until
from tests.support.stack import isolated_stack
from tests.support.webhook_receiver import WORKER_ENV

FAIL_MARKER = "unscorable-entry"


@pytest.fixture(scope="module")
def debug_stack(settings):
    env = {**WORKER_ENV, "SAMO_TEST_FAIL_TEXTS_CONTAINING": FAIL_MARKER}
    with isolated_stack(settings, {"cpu": ("cpu",), "webhooks": ("webhooks",)},
                        module="tests.support.failing_worker", start_workers=False, extra_env=env,
                        webhook_allowed_destinations=("127.0.0.1",)) as stack:
        for worker in stack.workers.values():
            worker.extra_args = ["-l", "debug"]
            worker.start()
        yield stack


def secret_sentence(topic: str) -> str:
    return f"My {topic} is something I never say aloud {uuid.uuid4().hex}."


def test_no_log_line_of_the_api_or_the_workers_holds_an_input_text(debug_stack, receiver, make_tenant, caplog):
    caplog.set_level(logging.DEBUG)
    stack, tenant = debug_stack, make_tenant()
    texts = {name: secret_sentence(name) for name in ("stored", "score-only", "sentences", "rejected")}
    texts["failing"] = secret_sentence(FAIL_MARKER)
    hook = f"/logs-{uuid.uuid4().hex[:6]}"
    bodies = {
        "stored": {"options": {}, "webhook": {"url": receiver.url(hook), "events": ["job.succeeded"]}},
        "score-only": {"options": {"store_input": False}},
        "sentences": {"options": {"granularity": "sentence", "top_k": 2}},
        "failing": {"options": {}},
    }
    jobs = {}
    for name, extra in bodies.items():
        response = requests.post(f"{stack.base_url}/v1/jobs", headers=tenant.headers, timeout=30,
                                 json={"type": "emotion", "input": {"text": texts[name]}, **extra})
        assert response.status_code == 202, response.text
        jobs[name] = response.json()["id"]
    rejected = requests.post(f"{stack.base_url}/v1/jobs", headers=tenant.headers, timeout=30,
                             json={"type": "emotion", "input": {"text": texts["rejected"]}, "options": {"top_k": 0}})
    assert rejected.status_code == 422

    done = {name: wait_for_job(stack.base_url, job_id, tenant.headers, timeout_s=240) for name, job_id in jobs.items()}
    assert {name: job["status"] for name, job in done.items()} == {
        "stored": "succeeded", "score-only": "succeeded", "sentences": "succeeded", "failing": "failed"}
    assert done["failing"]["error"]["code"] == "inference_error"
    assert texts["failing"] not in done["failing"]["error"]["message"]
    assert done["failing"]["error"]["message"] == "The model failed: RuntimeError."
    wait_until(lambda: receiver.received(hook), timeout_s=60, message="webhook delivered")

    logs = {"api": caplog.text, **{name: worker.log_path.read_text(errors="replace")
                                   for name, worker in stack.workers.items()}}
    assert "DEBUG" in logs["cpu"] and len(caplog.records) > 20
    assert "failed: RuntimeError" in logs["cpu"], "the model's failure is logged, without its text"
    leaks = {(name, where) for name, text in texts.items() for where, log in logs.items()
             if text in log or text.split(" aloud ")[0] in log}
    assert leaks == set()
