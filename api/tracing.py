"""Traces of the API process (``SAMO_OTEL_ENABLED``): a span per request, plus what ``config.tracing`` instruments.

A request is sampled before any instrumentation runs (:class:`RequestSampler`): one that carries
a ``traceparent`` follows its decision, a new one is traced with probability
``SAMO_OTEL_SAMPLE_RATIO``. A traced request goes through OpenTelemetry's WSGI middleware (the
instrumentation Flask's is built on; the span is named for its Flask route); one that is not
skips it, carrying only a context marked "not sampled", so its publish tells the worker to record
nothing either. The instrumentation's own cost (its request attributes are gathered before any
sampler is asked) is then paid by the sampled requests only. ``OTEL_TRACES_SAMPLER``, when set,
decides instead, for every request.

Probes and scrapes are never traced: they would be most of the spans and tell nothing. SQL and
Redis spans only with ``SAMO_OTEL_CLIENT_SPANS=all``: a submission's statements and rate-limit
scripts would be most of its spans and much of tracing's cost on the submit path.
"""
from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable

from flask import Flask, request

from config import tracing
from config.settings import Settings

EXCLUDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def init_app(app: Flask, settings: Settings) -> None:
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    head_sampled = not os.environ.get("OTEL_TRACES_SAMPLER")
    provider = tracing.setup("samo-api", client_spans=tracing.records_client_spans(settings.otel_client_spans, "api"),
                             sample_ratio=1.0 if head_sampled else settings.otel_sample_ratio)
    plain = app.wsgi_app
    traced = OpenTelemetryMiddleware(plain, tracer_provider=provider)
    app.wsgi_app = RequestSampler(traced, plain, settings.otel_sample_ratio if head_sampled else 1.0)
    app.before_request(name_request_span)


class RequestSampler:
    """WSGI middleware: each request to ``traced`` or to ``plain``, decided from its headers or by chance."""

    def __init__(self, traced: Callable, plain: Callable, ratio: float) -> None:
        from opentelemetry.instrumentation.wsgi import wsgi_getter
        from opentelemetry.propagate import extract

        self.traced, self.plain, self.ratio = traced, plain, ratio
        self._extract = lambda environ: extract(environ, getter=wsgi_getter)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in EXCLUDED_PATHS:
            return self.plain(environ, start_response)
        from opentelemetry import context, trace

        parent = self._extract(environ)
        span_context = trace.get_current_span(parent).get_span_context()
        if span_context.is_valid:
            if span_context.trace_flags.sampled:
                return self.traced(environ, start_response)
        elif random.random() < self.ratio:
            return self.traced(environ, start_response)
        else:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
                random.getrandbits(128), random.getrandbits(64), is_remote=False,
                trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT))))
        token = context.attach(parent)
        try:
            return self.plain(environ, start_response)
        finally:
            context.detach(token)


def name_request_span() -> None:
    """The request's span named for its route, as Flask's instrumentation names it."""
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording() and request.url_rule is not None:
        span.update_name(f"{request.method} {request.url_rule.rule}")
        span.set_attribute("http.route", request.url_rule.rule)
