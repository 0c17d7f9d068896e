"""OpenTelemetry traces across the hop from the API through the broker into a worker's batch.

Off unless ``SAMO_OTEL_ENABLED``: then nothing here imports OpenTelemetry, and every helper
returns at its first line. On, :func:`setup` makes the process's tracer provider (an OTLP/HTTP
protobuf exporter behind a BatchSpanProcessor, both configured by the standard
``OTEL_EXPORTER_OTLP_*``, ``OTEL_BSP_*`` and ``OTEL_SERVICE_NAME`` variables, or the exporter a
test passes) and turns on the Celery instrumentation, and the SQLAlchemy and Redis ones where
the process records client spans (``SAMO_OTEL_CLIENT_SPANS``); the API adds a span per request (``api.tracing``).

Sampling is parent-based: a trace started here is kept with probability ``SAMO_OTEL_SAMPLE_RATIO``
(unless ``OTEL_TRACES_SAMPLER`` names the SDK's sampler), and a span whose parent came with a
decision follows it, so a worker keeps exactly the submissions the API kept.

A job's trace context travels with its message: a message may carry the jobs of several
requests (the API's group commit), so besides the publishing span's own ``traceparent``
header, the message holds each job's context under ``samo_traces``. A worker's batch span is a
child of its first job's context and links every job's, so each submission's trace reaches the
batch, and the batch is found from any of them. Spans carry job ids and tenant ids, never input.

A submission that is not sampled costs next to nothing: the API marks its request "not
sampled" with a ``traceparent`` of its own (:func:`not_sampled`, a context variable, where no
OpenTelemetry context is attached), its message carries that header and nothing else, and the
Celery instrumentation's publish hooks skip a message whose ``traceparent`` is already set
(:func:`_gate_publish_hooks`): its span would record nothing. The worker then follows "not
sampled" and starts no trace of its own.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

TRACER_NAME = "samo"
#: The message header holding each job's trace context: {job id: {"traceparent": ...}}.
TRACES_HEADER = "samo_traces"
#: ``SAMO_OTEL_CLIENT_SPANS``: which processes record a span per SQL statement and Redis command.
CLIENT_SPANS = {"all": {"api", "worker"}, "worker": {"worker"}, "none": set()}


class _State:
    provider = None
    instrumentors: list = []


_state = _State()
#: The ``traceparent`` of the current request when it is not sampled (``api.tracing.RequestSampler``), else None.
_not_sampled: contextvars.ContextVar[str | None] = contextvars.ContextVar("samo_not_sampled", default=None)


def enabled() -> bool:
    return _state.provider is not None


def records_client_spans(client_spans: str, process: str) -> bool:
    """Whether ``process`` (``api`` or ``worker``) records SQL and Redis spans under ``SAMO_OTEL_CLIENT_SPANS``."""
    if client_spans not in CLIENT_SPANS:
        raise ValueError(f"SAMO_OTEL_CLIENT_SPANS must be one of {', '.join(CLIENT_SPANS)}, not {client_spans!r}")
    return process in CLIENT_SPANS[client_spans]


def sampler(sample_ratio: float):
    """Parent-based, keeping ``sample_ratio`` of new traces; None (the SDK's own choice) when
    ``OTEL_TRACES_SAMPLER`` is set, so the standard variables win."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    if not 0.0 <= sample_ratio <= 1.0:
        raise ValueError(f"SAMO_OTEL_SAMPLE_RATIO must be between 0 and 1, not {sample_ratio}")
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    return ParentBasedTraceIdRatio(sample_ratio)


def setup(service_name: str, span_exporter=None, *, celery: bool = True, client_spans: bool = True,
          sample_ratio: float = 1.0) -> Any:
    """The process's tracer provider, made once; ``span_exporter`` replaces OTLP (tests).

    ``client_spans``: a span per SQL statement and Redis command (the SQLAlchemy and Redis
    instrumentations), worth it in a worker's batch, a large share of the cost on the API's submit path.
    """
    if _state.provider is not None:
        return _state.provider
    from opentelemetry import trace
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": service_name}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource, sampler=sampler(sample_ratio))
    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    if span_exporter is None:
        trace.set_tracer_provider(provider)
    _state.provider = provider
    _state.instrumentors = _instrument(provider, celery, client_spans)
    return provider


def _instrument(provider, celery: bool, client_spans: bool) -> list:
    instrumentors = []
    if client_spans:
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        instrumentors += [SQLAlchemyInstrumentor(), RedisInstrumentor()]
    celery_instrumentor = None
    if celery:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        celery_instrumentor = CeleryInstrumentor()
        instrumentors.append(celery_instrumentor)
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            # The SQLAlchemy instrumentation declares an older range than the SQLAlchemy pinned here,
            # whose engine events it uses all the same (tests/integration/test_tracing.py).
            instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
            if instrumentor is celery_instrumentor:
                _gate_publish_hooks(instrumentor)
    return instrumentors


def _gate_publish_hooks(instrumentor) -> None:
    """Replace the Celery instrumentation's publish hooks with ones that skip a message sent "not sampled".

    Such a message already carries its ``traceparent`` (``tasks.enqueue``, or the current
    request's, put here), so the instrumentation's span, which would record nothing, and its
    context switches are skipped; the hook after the publish skips the same message, known from
    a thread-local flag the hook before it sets for every message.
    """
    from celery import signals

    before, after = instrumentor._trace_before_publish, instrumentor._trace_after_publish
    skipped = threading.local()

    def before_publish(*args, **kwargs):
        headers = kwargs.get("headers")
        if headers is not None and "traceparent" not in headers and (traceparent := _not_sampled.get()):
            headers["traceparent"] = traceparent
        skipped.value = headers is not None and "traceparent" in headers
        if not skipped.value:
            before(*args, **kwargs)

    def after_publish(*args, **kwargs):
        if not getattr(skipped, "value", False):
            after(*args, **kwargs)

    signals.before_task_publish.disconnect(before)
    signals.after_task_publish.disconnect(after)
    signals.before_task_publish.connect(before_publish, weak=False)
    signals.after_task_publish.connect(after_publish, weak=False)
    instrumentor._samo_publish_hooks = (before_publish, after_publish)


def shutdown() -> None:
    """Flush the spans and turn the instrumentations off (the end of a process, or of a test)."""
    provider, _state.provider = _state.provider, None
    for instrumentor in _state.instrumentors:
        if hooks := getattr(instrumentor, "_samo_publish_hooks", None):
            from celery import signals

            signals.before_task_publish.disconnect(hooks[0])
            signals.after_task_publish.disconnect(hooks[1])
            del instrumentor._samo_publish_hooks
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    _state.instrumentors = []
    if provider is not None:
        provider.shutdown()


def tracer():
    return _state.provider.get_tracer(TRACER_NAME)


def not_sampled(traceparent: str | None) -> contextvars.Token:
    """Mark the current context "not sampled" with ``traceparent`` (None: unmarked); reset with the token."""
    return _not_sampled.set(traceparent)


def reset_not_sampled(token: contextvars.Token) -> None:
    _not_sampled.reset(token)


def is_sampled(headers: Mapping[str, str]) -> bool:
    """Whether the ``traceparent`` in ``headers`` has its sampled flag (W3C trace context, version 00)."""
    traceparent = headers.get("traceparent") or ""
    try:
        return len(traceparent) == 55 and bool(int(traceparent[53:], 16) & 1)
    except ValueError:
        return False


def carrier() -> dict[str, str] | None:
    """The current trace context as headers (``traceparent``), None when off or outside a trace."""
    if _state.provider is None:
        return None
    if (traceparent := _not_sampled.get()) is not None:
        return {"traceparent": traceparent}
    from opentelemetry.propagate import inject

    headers: dict[str, str] = {}
    inject(headers)
    return headers or None


@contextlib.contextmanager
def within(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the context in ``headers`` current (a publish then belongs to that trace)."""
    if _state.provider is None or not headers:
        yield
        return
    from opentelemetry import context
    from opentelemetry.propagate import extract

    token = context.attach(extract(dict(headers)))
    try:
        yield
    finally:
        context.detach(token)


def set_job_attributes(job_ids: Iterable[Any], tenant_ids: Iterable[Any] = ()) -> None:
    """Job and tenant ids on the current span (one id as a string, several as a list)."""
    if _state.provider is None or _not_sampled.get() is not None:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, values in (("samo.job.id", job_ids), ("samo.tenant.id", tenant_ids)):
        values = sorted({str(value) for value in values})
        if values:
            span.set_attribute(name if len(values) == 1 else name + "s", values[0] if len(values) == 1 else values)


@contextlib.contextmanager
def batch_span(job_type: str, queue: str, message_headers: Iterable[Mapping[str, Any]]) -> Iterator[None]:
    """The span of one batch: a child of its first sampled job's trace, linked to every sampled job's trace."""
    if _state.provider is None:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    contexts = []
    for headers in message_headers:
        per_job = (headers or {}).get(TRACES_HEADER) or {}
        contexts += [extract(dict(job_headers)) for job_headers in per_job.values() if job_headers]
        if not per_job and (headers or {}).get("traceparent"):
            contexts.append(extract({"traceparent": headers["traceparent"]}))
    span_contexts = {}
    for context in contexts:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid and span_context.trace_flags.sampled:
            span_contexts.setdefault((span_context.trace_id, span_context.span_id), (span_context, context))
    links = [trace.Link(span_context) for span_context, _ in span_contexts.values()]
    parent = next(iter(span_contexts.values()))[1] if span_contexts else (contexts[0] if contexts else None)
    with tracer().start_as_current_span(
        f"batch {job_type}", context=parent, links=links, kind=trace.SpanKind.CONSUMER,
        attributes={"samo.job.type": job_type, "messaging.destination.name": queue, "samo.batch.links": len(links)},
    ):
        yield
