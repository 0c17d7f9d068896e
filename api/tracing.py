"""Traces of the API process (``SAMO_OTEL_ENABLED``): a span per request, plus what ``config.tracing`` instruments.

A request is sampled before any instrumentation runs (:class:`RequestSampler`): one that carries
a ``traceparent`` follows its decision, a new one is traced with probability
``SAMO_OTEL_SAMPLE_RATIO``. A traced request goes through OpenTelemetry's WSGI middleware (the
instrumentation Flask's is built on; the span is named for its Flask route); one that is not
skips it, carrying only a ``traceparent`` marked "not sampled" (``config.tracing.not_sampled``),
so its publish tells the worker to record nothing either. No OpenTelemetry context is made or
attached for it, unless the API records SQL and Redis spans (``SAMO_OTEL_CLIENT_SPANS=all``),
whose instrumentations would otherwise start traces of their own. The instrumentation's own
cost (its request attributes are gathered before any sampler is asked) is then paid by the
sampled requests only. ``OTEL_TRACES_SAMPLER``, when set, decides instead, for every request.

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
    client_spans = tracing.records_client_spans(settings.otel_client_spans, "api")
    provider = tracing.setup("samo-api", client_spans=client_spans,
                             sample_ratio=1.0 if head_sampled else settings.otel_sample_ratio)
    plain = app.wsgi_app
    traced = OpenTelemetryMiddleware(plain, tracer_provider=provider)
    app.wsgi_app = RequestSampler(traced, plain, settings.otel_sample_ratio if head_sampled else 1.0,
                                  attach_context=client_spans)
    app.before_request(name_request_span)


#: The WSGI environ key that marks a request sent through the traced middleware.
TRACED = "samo.traced"


class RequestSampler:
    """WSGI middleware: each request to ``traced`` or to ``plain``, decided from its headers or by chance.

    ``attach_context``: also make an OpenTelemetry context "not sampled" current for a request
    sent to ``plain`` (needed only where instrumentations other than the publish's run in requests).
    """

    def __init__(self, traced: Callable, plain: Callable, ratio: float, attach_context: bool = False) -> None:
        self.traced, self.plain, self.ratio, self.attach_context = traced, plain, ratio, attach_context

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in EXCLUDED_PATHS:
            return self.plain(environ, start_response)
        incoming = environ.get("HTTP_TRACEPARENT")
        followed = self._followed(incoming) if incoming else None
        if followed is True or (followed is None and random.random() < self.ratio):
            environ[TRACED] = True
            return self.traced(environ, start_response)
        traceparent = followed or f"00-{random.getrandbits(128) or 1:032x}-{random.getrandbits(64) or 1:016x}-00"
        if self.attach_context:
            return self._plain_in_context(traceparent, environ, start_response)
        token = tracing.not_sampled(traceparent)
        try:
            return self.plain(environ, start_response)
        finally:
            tracing.reset_not_sampled(token)

    @staticmethod
    def _followed(incoming: str) -> bool | str | None:
        """The caller's decision: True for "sampled", the ``traceparent`` to carry on for "not sampled"
        (the caller's trace and span), None where the header is not a valid one."""
        from opentelemetry import trace
        from opentelemetry.propagate import extract

        span_context = trace.get_current_span(extract({"traceparent": incoming})).get_span_context()
        if not span_context.is_valid:
            return None
        if span_context.trace_flags.sampled:
            return True
        return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-00"

    def _plain_in_context(self, traceparent: str, environ: dict, start_response: Callable) -> Iterable[bytes]:
        from opentelemetry import context
        from opentelemetry.propagate import extract

        token = context.attach(extract({"traceparent": traceparent}))
        try:
            return self.plain(environ, start_response)
        finally:
            context.detach(token)


def name_request_span() -> None:
    """The request's span named for its route, as Flask's instrumentation names it."""
    if not request.environ.get(TRACED):
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording() and request.url_rule is not None:
        span.update_name(f"{request.method} {request.url_rule.rule}")
        span.set_attribute("http.route", request.url_rule.rule)
