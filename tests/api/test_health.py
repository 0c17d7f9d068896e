"""Liveness, readiness and metrics, against the session's database, Redis and (where named) a worker."""
from __future__ import annotations

import dataclasses
import re
import stat
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import settings_env
from tests.support.gunicorn import gunicorn_server
from tests.support.polling import wait_until
from tests.support.problems import PROBLEM
from tests.support.processes import run_python_json

ROOT = Path(__file__).resolve().parents[2]
MODEL_LIBRARIES = ("torch", "transformers", "faster_whisper", "ctranslate2", "peft")
DEAD = {"database_url": "postgresql+psycopg2://postgres@127.0.0.1:1/none", "redis_url": "redis://127.0.0.1:1/0"}


@pytest.fixture(scope="module")
def broken_client(settings):
    from api import create_app

    return create_app(dataclasses.replace(settings, **DEAD), {"TESTING": True}).test_client()


def metric_value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(3))
    return None


def test_healthz_answers_without_touching_any_dependency(broken_client):
    response = broken_client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_fails_with_a_problem_that_names_each_failing_check(broken_client):
    started = time.monotonic()
    response = broken_client.get("/readyz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.mimetype == PROBLEM
    assert response.headers["Retry-After"]
    body = response.get_json()
    assert body["type"].endswith("/not-ready") and body["status"] == 503
    assert set(body["checks"]) == {"database", "redis", "workers"}
    for check in body["checks"].values():
        assert check["ok"] is False and check["error"] and isinstance(check["latency_ms"], float)


def test_readyz_needs_a_worker_on_the_model_queue(settings):
    from api import create_app

    app = create_app(dataclasses.replace(settings, gpu_workers_enabled=True), {"TESTING": True})
    body = app.test_client().get("/readyz").get_json()
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["workers"]["ok"] is False
    assert "gpu" in body["checks"]["workers"]["error"]


def test_readyz_is_ready_with_a_live_cpu_worker_once_its_models_are_loaded(client, cpu_worker):
    response = wait_until(lambda: (answer := client.get("/readyz")).status_code == 200 and answer, timeout_s=120,
                          interval_s=0.5, message="a ready cpu worker")
    body = response.get_json()
    assert body["status"] == "ready"
    assert all(check["ok"] for check in body["checks"].values())
    cpu = body["checks"]["workers"]["queues"]["cpu"]
    assert cpu["workers"] >= 1 and 1 <= cpu["models_ready"] <= cpu["workers"]


def test_readyz_finds_the_worker_in_time_after_its_app_has_published(settings, cpu_worker, make_tenant):
    """The order that once failed: an app that has published jobs probes after another app's probe."""
    from api import create_app

    waiting = create_app(settings, {"TESTING": True}).test_client()
    wait_until(lambda: waiting.get("/readyz").status_code == 200, timeout_s=120, interval_s=0.5,
               message="the worker's models loaded")
    fresh = create_app(settings, {"TESTING": True}).test_client()
    tenant = make_tenant()
    done = fresh.post("/v1/jobs", json={"type": "emotion", "input": {"text": "Lovely!"}},
                      headers={**tenant.headers, "Prefer": "wait=30"})
    assert done.status_code == 200, done.get_data(as_text=True)
    gpu_app = create_app(dataclasses.replace(settings, gpu_workers_enabled=True), {"TESTING": True})
    assert gpu_app.test_client().get("/readyz").status_code == 503
    response = fresh.get("/readyz")
    assert response.status_code == 200, response.get_data(as_text=True)


def test_request_metrics_are_grouped_by_url_rule_and_skip_probes(client):
    client.get("/healthz")
    job_id = uuid.uuid4()
    client.get(f"/v1/jobs/{job_id}")  # 401: auth answers before the view, still timed
    text = client.get("/metrics").get_data(as_text=True)
    assert metric_value(text, "flask_http_request_duration_seconds_count",
                        url_rule="/v1/jobs/<uuid:job_id>", status="401") >= 1
    assert 'url_rule="/healthz"' not in text and 'url_rule="/metrics"' not in text
    assert str(job_id) not in text


def test_job_metrics_count_submissions_and_stored_states(app, client, make_tenant):
    tenant = make_tenant()
    before = metric_value(client.get("/metrics").get_data(as_text=True),
                          "samo_jobs_submitted_total", type="emotion") or 0.0
    for _ in range(2):
        response = client.post("/v1/jobs", json={"type": "emotion", "input": {"text": "so glad"}},
                               headers=tenant.headers)
        assert response.status_code == 202
    app.extensions["samo_metrics_sources"].jobs.invalidate()
    text = client.get("/metrics").get_data(as_text=True)
    assert metric_value(text, "samo_jobs_submitted_total", type="emotion") == before + 2
    assert metric_value(text, "samo_jobs_scrape_error") == 0
    stored = sum(metric_value(text, "samo_jobs", type="emotion", status=s) or 0 for s in ("queued", "running",
                                                                                          "succeeded", "failed"))
    assert stored >= 2
    assert metric_value(text, "samo_jobs", type="emotion", status="canceled") is not None
    for status in ("pending", "succeeded", "failed", "dead"):
        assert metric_value(text, "samo_webhook_deliveries", status=status) is not None, status


def test_metrics_survive_a_database_outage(broken_client):
    response = broken_client.get("/metrics")
    assert response.status_code == 200
    assert metric_value(response.get_data(as_text=True), "samo_jobs_scrape_error") == 1


def test_the_api_process_never_imports_model_libraries(settings):
    """A fresh interpreter: this test process may have loaded torch for other tests."""
    script = f"""
import json, sys
from api import create_app
client = create_app().test_client()
for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
    client.get(path)
client.post("/v1/jobs", json={{"type": "emotion", "input": {{"text": "hi"}}}})
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {MODEL_LIBRARIES!r})))
"""
    assert run_python_json(script, settings_env(settings)) == []


@pytest.fixture
def gunicorn_api(settings, tmp_path):
    with gunicorn_server(settings, tmp_path) as base:
        yield base


def test_gunicorn_servers_do_not_share_a_control_socket(settings, tmp_path):
    """gunicorn's default control socket is one per user: a second server would take it from the first."""
    home = tmp_path / "home"
    home.mkdir()
    own = tmp_path / "own.ctl"
    shared_default = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    with gunicorn_server(settings, tmp_path, **shared_default), \
            gunicorn_server(settings, tmp_path, **shared_default, GUNICORN_CONTROL_SOCKET=str(own)):
        assert not (home / ".gunicorn").exists()
        assert stat.S_ISSOCK(own.stat().st_mode)


def test_gunicorn_workers_report_one_aggregated_set_of_metrics(gunicorn_api, make_tenant):
    tenant = make_tenant()
    for _ in range(6):
        response = requests.post(gunicorn_api + "/v1/jobs", json={"type": "emotion", "input": {"text": "yay"}},
                                 headers=tenant.headers, timeout=10)
        assert response.status_code == 202, response.text
    for _ in range(10):
        assert requests.get(f"{gunicorn_api}/v1/jobs/{uuid.uuid4()}", timeout=10).status_code == 401
    # Whichever worker answers a scrape, it reports the sum over both.
    for _ in range(4):
        text = requests.get(gunicorn_api + "/metrics", timeout=10).text
        assert metric_value(text, "samo_jobs_submitted_total", type="emotion") == 6
        assert metric_value(text, "flask_http_request_duration_seconds_count", method="GET", status="401",
                            url_rule="/v1/jobs/<uuid:job_id>") == 10
        stored = [metric_value(text, "samo_jobs", type="emotion", status=s) or 0 for s in ("queued", "running",
                                                                                          "succeeded", "failed")]
        assert sum(stored) >= 6
