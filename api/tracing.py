"""Traces of the API process (``SAMO_OTEL_ENABLED``): Flask's requests, plus what ``config.tracing`` instruments.

Probes and scrapes are left out: they would be most of the spans and tell nothing.
"""
from __future__ import annotations

from flask import Flask

from config import tracing

EXCLUDED_URLS = "healthz,readyz,metrics"


def init_app(app: Flask) -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    provider = tracing.setup("samo-api")
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
