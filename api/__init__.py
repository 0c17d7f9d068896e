"""SAMO Brain HTTP API: the Flask app factory.

The API process only validates, stores and enqueues; it never imports torch, transformers or
faster-whisper (tests check ``sys.modules``).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from api.json_provider import OrjsonProvider
from config.settings import Settings


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.json = OrjsonProvider(app)
    settings = settings or Settings.from_env()
    app.config.from_mapping(
        SAMO_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )
    if test_config:
        app.config.update(test_config)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=0)
    logging.basicConfig(level=logging.INFO)

    from api import extensions, intake, problems

    problems.init_app(app)
    extensions.init_app(app)
    intake.init_app(app)

    from api.auth import principal, ratelimit, throttle
    from api.views import (
        analytics,
        batches,
        correlations,
        health,
        insights,
        jobs,
        openapi,
        privacy,
        subjects,
        tokens,
        webhooks,
    )
    from api.views.console import bp as console_bp
    from api.views.events import bp as events_bp

    throttle.init_app(app)
    principal.init_app(app)
    ratelimit.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(tokens.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(events_bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(subjects.bp)
    app.register_blueprint(privacy.bp)
    app.register_blueprint(analytics.bp)
    app.register_blueprint(insights.bp)
    app.register_blueprint(correlations.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(console_bp)
    health.init_metrics(app)
    if settings.otel_enabled:
        from api import tracing

        tracing.init_app(app, settings)
    if settings.sentry_dsn:
        from api import error_tracking

        error_tracking.init_app(app)
    return app
