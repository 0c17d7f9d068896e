"""One submission, one trace: the API's request, the broker publish, the worker's batch and the result store.

The API runs in this process with an in-memory exporter; the worker is a real `celery worker`
whose real OTLP exporter sends to a local receiver. Job and tenant ids are on the spans, the
input text on none of them.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from config import tracing
from tests.conftest import settings_env
from tests.support.http import post_job
from tests.support.otlp import otlp_receiver
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import CeleryWorker, serve_app_in_thread
from tests.support.services import claimed_redis_database

TEXT = "a private sentence that must never reach a trace"


@pytest.fixture
def api_spans():
    exporter = InMemorySpanExporter()
    tracing.setup("samo-api", exporter, client_spans=False)  # as deployed: SAMO_OTEL_CLIENT_SPANS=worker
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_one_submission_yields_one_trace_through_the_broker_into_the_batch(settings, make_tenant, api_spans):
    from api import create_app

    tenant = make_tenant()
    with claimed_redis_database() as redis_url, otlp_receiver() as (endpoint, worker_spans):
        traced = dataclasses.replace(settings, redis_url=redis_url, otel_enabled=True)
        worker = CeleryWorker({**settings_env(traced), "SAMO_OTEL_ENABLED": "true",
                               "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"})
        with serve_app_in_thread(create_app(traced, {"TESTING": True})) as base_url:
            worker.start()
            try:
                job_id = post_job(base_url, tenant.headers, TEXT)["id"]
                assert wait_for_job(base_url, job_id, tenant.headers)["status"] == "succeeded"
                batch = wait_until(lambda: [s for s in worker_spans.snapshot() if s["name"] == "batch emotion"
                                            and s["attributes"].get("samo.job.id") == job_id],
                                   timeout_s=30, message="the worker's batch span")[0]
            finally:
                worker.stop()

    spans = [{"name": s.name, "trace_id": format(s.context.trace_id, "032x"), "kind": s.kind.name,
              "attributes": dict(s.attributes or {}), "service": "samo-api"} for s in api_spans.get_finished_spans()]
    (request,) = [s for s in spans if s["kind"] == "SERVER" and s["attributes"].get("http.route") == "/v1/jobs"]
    trace_id = request["trace_id"]
    assert request["attributes"]["samo.job.id"] == job_id
    assert request["attributes"]["samo.tenant.id"] == str(tenant.tenant_id)
    publish = [s for s in spans if s["kind"] == "PRODUCER" and s["trace_id"] == trace_id]
    assert publish and "tasks.emotion.analyze_job" in publish[0]["name"]

    assert batch["trace_id"] == trace_id and trace_id in batch["links"]
    assert batch["attributes"]["samo.tenant.id"] == str(tenant.tenant_id)
    in_trace = [s for s in worker_spans.snapshot() if s["trace_id"] == trace_id]
    statements = " ".join(str(s["attributes"].get("db.statement", "")) for s in in_trace)
    assert "UPDATE jobs" in statements, "the result store is not in the submission's trace"

    everything = json.dumps(spans + worker_spans.snapshot(), default=str)
    assert TEXT not in everything and "private sentence" not in everything


def test_sampled_out_submissions_are_not_traced_and_a_sampled_caller_is_followed(settings, make_tenant, api_spans):
    """SAMO_OTEL_SAMPLE_RATIO=0 in the API: a new request records nothing there, nor in a worker that would
    trace every new trace of its own (ratio 1.0), so its message said "not sampled"; a request whose
    traceparent says "sampled" is traced, through the worker's batch."""
    from api import create_app

    tenant = make_tenant()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with claimed_redis_database() as redis_url, otlp_receiver() as (endpoint, worker_spans):
        traced = dataclasses.replace(settings, redis_url=redis_url, otel_enabled=True, otel_sample_ratio=0.0)
        worker = CeleryWorker({**settings_env(traced), "SAMO_OTEL_ENABLED": "true", "SAMO_OTEL_SAMPLE_RATIO": "1.0",
                               "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"})
        with serve_app_in_thread(create_app(traced, {"TESTING": True})) as base_url:
            worker.start()
            try:
                unsampled_id = post_job(base_url, tenant.headers, TEXT)["id"]
                assert wait_for_job(base_url, unsampled_id, tenant.headers)["status"] == "succeeded"
                assert not api_spans.get_finished_spans()
                sampled = {**tenant.headers, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
                job_id = post_job(base_url, sampled, TEXT)["id"]
                assert wait_for_job(base_url, job_id, tenant.headers)["status"] == "succeeded"
                # Spans leave a worker's exporter in the order they ended: the first job's would be in by now.
                wait_until(lambda: [s for s in worker_spans.snapshot() if s["name"] == "batch emotion"
                                    and s["trace_id"] == trace_id], timeout_s=30, message="the sampled batch span")
            finally:
                worker.stop()

    spans = api_spans.get_finished_spans()
    (request,) = [s for s in spans if s.kind.name == "SERVER"]
    assert format(request.context.trace_id, "032x") == trace_id
    assert request.name == "POST /v1/jobs" and request.attributes["samo.job.id"] == job_id
    assert any(s.kind.name == "PRODUCER" and format(s.context.trace_id, "032x") == trace_id for s in spans)
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}
    # The Celery instrumentation's "run" span of a batched task is a root of its own whatever its
    # messages carry (celery-batches runs the batch under a request of its own), so it is left out.
    jobs_traced = [s for s in worker_spans.snapshot() if s["trace_id"] != trace_id and not s["name"].startswith("run/")
                   and ("emotion" in s["name"] or "UPDATE jobs" in str(s["attributes"].get("db.statement", ""))
                        or unsampled_id in json.dumps(s["attributes"]))]
    assert not jobs_traced, "the sampled-out submission was traced in the worker"
