"""Reading requests: bodies, job submissions, batch and audio uploads, idempotency keys and page cursors."""
from __future__ import annotations

from flask import Flask

from api.intake.ids import ResourceIdConverter
from api.intake.requests import check_query


def init_app(app: Flask) -> None:
    """Checks of what every request brings before its view: path ids and the query string.

    Call before the blueprints are registered: their rules bind the ``uuid`` converter then.
    """
    app.url_map.converters["uuid"] = ResourceIdConverter
    app.before_request(check_query)
