"""/readyz is not ready until a worker on the model queue has loaded its models (a real worker, real models)."""
from __future__ import annotations

import requests

from tests.support.polling import wait_until
from tests.support.stack import isolated_stack


def readiness(base_url: str) -> tuple[int, dict]:
    response = requests.get(base_url + "/readyz", timeout=10)
    return response.status_code, response.json()


def test_readyz_waits_for_the_models_of_a_worker_that_is_already_up(settings, tmp_path):
    gate = tmp_path / "load-models"
    with isolated_stack(settings, {"cpu": ("cpu",)}, module="tests.support.gated_worker",
                        extra_env={"SAMO_TEST_PRELOAD_GATE": str(gate)}) as stack:
        status, body = readiness(stack.base_url)
        assert status == 503, body
        workers = body["checks"]["workers"]
        assert workers["ok"] is False and "loading their models" in workers["error"]
        assert workers["queues"] == {"cpu": {"workers": 1, "models_ready": 0}}
        assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]

        gate.touch()
        status, body = wait_until(lambda: (answer := readiness(stack.base_url))[0] == 200 and answer,
                                  timeout_s=180, interval_s=0.5, message="ready once the models are loaded")
        assert body["checks"]["workers"]["queues"] == {"cpu": {"workers": 1, "models_ready": 1}}
        assert "emotion model loaded" in stack.workers["cpu"].log()
