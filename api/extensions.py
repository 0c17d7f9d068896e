"""Per-app handles on the database and Redis, opened lazily and closed at the end of each request."""
from __future__ import annotations

import threading

import redis
from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from config.settings import Settings
from db.session import get_engine, get_sessionmaker

_writer_lock = threading.Lock()


def settings() -> Settings:
    return current_app.config["SAMO_SETTINGS"]


def db_session() -> Session:
    """The request's session; views commit explicitly, anything left open is rolled back."""
    if "db_session" not in g:
        g.db_session = get_sessionmaker(settings().database_url)()
    return g.db_session


def redis_client() -> redis.Redis:
    return current_app.extensions["samo_redis"]


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def init_app(app: Flask) -> None:
    app.extensions["samo_redis"] = redis.Redis.from_url(
        app.config["SAMO_SETTINGS"].redis_url,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
        decode_responses=True,
    )
    app.teardown_appcontext(_close_session)


def celery_client():
    """A Celery app used only to publish; built from this app's settings on first use."""
    app = current_app._get_current_object()
    if "samo_celery" not in app.extensions:
        from workers.celery_app import make_celery

        app.extensions["samo_celery"] = make_celery(settings())
    return app.extensions["samo_celery"]


def completion_listener():
    """The process's listener for job completions that requests wait on (``api.completions``)."""
    app = current_app._get_current_object()
    listener = app.extensions.get("samo_completions")
    if listener is None:
        from api.completions import CompletionListener

        with _writer_lock:
            listener = app.extensions.setdefault("samo_completions", CompletionListener(redis_client()))
    return listener


def job_writer():
    """The process's group-commit writer for job rows (``api.job_writer``), made on first use."""
    app = current_app._get_current_object()
    writer = app.extensions.get("samo_job_writer")
    if writer is None:
        from api.job_writer import JobWriter
        from tasks.enqueue import enqueue_jobs

        celery = celery_client()
        with _writer_lock:
            writer = app.extensions.get("samo_job_writer")
            if writer is None:
                writer = JobWriter(get_engine(settings().database_url), lambda jobs: enqueue_jobs(celery, jobs))
                app.extensions["samo_job_writer"] = writer
    return writer
