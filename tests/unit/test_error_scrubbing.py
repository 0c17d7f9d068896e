"""What error-tracking events keep: no input texts, no credentials, no request bodies or local variables."""
from __future__ import annotations

import json

from config import error_tracking
from tests.support.processes import run_python_json


def test_inputs_credentials_bodies_and_locals_are_taken_out(monkeypatch):
    monkeypatch.setattr(error_tracking._state, "enabled", True)
    event = {
        "request": {"url": "http://api/v1/jobs", "data": {"input": {"text": "hello"}}, "cookies": "c=1",
                    "headers": {"Authorization": "ApiKey samo_0123abcd_secretpart", "User-Agent": "curl"}},
        "exception": {"values": [{"type": "RuntimeError", "value": "cannot score ['I feel lost today']",
                                  "stacktrace": {"frames": [{"function": "f", "vars": {"t": "I feel lost today"}}]}}]},
        "extra": {"webhook_secret": "whsec_abc", "url": "postgresql://samo:hunter2@db/samo",
                  "note": "key samo_0123abcd_xyz-_ and whsec_QUJD"},
    }
    with error_tracking.handling(["I feel lost today"]):
        scrubbed = error_tracking.scrub(event)
    text = json.dumps(scrubbed)
    for secret in ("I feel lost today", "secretpart", "hunter2", "whsec_abc", "whsec_QUJD", "xyz-_", "c=1"):
        assert secret not in text, secret
    assert scrubbed["request"]["headers"]["User-Agent"] == "curl"
    assert scrubbed["exception"]["values"][0]["value"] == "cannot score ['[input text]']"
    assert "vars" not in scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]


def test_texts_are_scrubbed_only_while_handled(monkeypatch):
    monkeypatch.setattr(error_tracking._state, "enabled", True)
    with error_tracking.handling(["a private sentence"]):
        assert error_tracking.current_inputs() == ["a private sentence"]
    assert error_tracking.current_inputs() == []


def test_with_tracing_and_error_tracking_off_neither_is_set_up():
    """Zero cost when off: the API, a submission's publish and the worker's task modules load no tracer
    provider, instrumentation, exporter, propagator or error-tracking SDK. (redis-py imports the
    OpenTelemetry API and metrics SDK by itself whenever they are installed; it records nothing unless
    its own observability is configured.)"""
    loaded = run_python_json(
        "import json, sys, uuid\n"
        "from api import create_app\n"
        "from config.settings import Settings\n"
        "app = create_app(Settings(database_url='sqlite://'), {'TESTING': True})\n"
        "app.test_client().get('/healthz')\n"
        "from tasks.enqueue import job_traces\n"
        "job_traces([(uuid.uuid4(), 'emotion')])\n"
        "import tasks.jobs, tasks.lifecycle\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(SET_UP))))\n".replace(
            "SET_UP", repr(("opentelemetry.sdk.trace", "opentelemetry.instrumentation", "opentelemetry.exporter",
                            "opentelemetry.propagate", "sentry_sdk"))),
        {"SAMO_OTEL_ENABLED": "false", "SAMO_SENTRY_DSN": ""},
    )
    assert loaded == []
