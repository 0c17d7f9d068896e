"""Error tracking of the API process (``SAMO_SENTRY_DSN``), with the current request's texts scrubbed."""
from __future__ import annotations

from collections.abc import Iterator

from flask import Flask, has_request_context, request

from config import error_tracking


def request_strings() -> Iterator[str]:
    """Every string of the current request's JSON body or form: the texts any event must not carry."""
    if not has_request_context():
        return
    pending = [request.get_json(silent=True, cache=True)] if request.is_json else [dict(request.form)]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            pending += value.values()
        elif isinstance(value, list):
            pending += value


def init_app(app: Flask) -> None:
    from sentry_sdk.integrations.flask import FlaskIntegration

    settings = app.config["SAMO_SETTINGS"]
    error_tracking.add_input_source(request_strings)
    error_tracking.setup(settings.sentry_dsn, settings.sentry_environment, [FlaskIntegration()])
