"""Per-app handles on the database and Redis, opened lazily and closed at the end of each request."""
from __future__ import annotations

import threading

import redis
from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from config.settings import Settings
from db.session import get_sessionmaker
from tasks.services import Services

_extension_lock = threading.RLock()  # a maker may ask for another extension


def settings() -> Settings:
    return current_app.config["SAMO_SETTINGS"]


def db_session() -> Session:
    """The request's session; views commit explicitly, anything left open is rolled back."""
    if "db_session" not in g:
        g.db_session = get_sessionmaker(settings().database_url)()
    return g.db_session


def end_request_transaction() -> None:
    """End the transaction of the request's session, if the request opened one."""
    if "db_session" in g:
        g.db_session.rollback()


def redis_client() -> redis.Redis:
    return current_app.extensions["samo_redis"]


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def init_app(app: Flask) -> None:
    app.extensions["samo_services"] = Services(app.config["SAMO_SETTINGS"])
    app.extensions["samo_redis"] = redis.Redis.from_url(
        app.config["SAMO_SETTINGS"].redis_url,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
        decode_responses=True,
    )
    app.teardown_appcontext(_close_session)
    # What the server calls when it starts a graceful stop (scripts/gunicorn.conf.py).
    app.extensions["samo_drain"] = lambda: begin_drain(app)


def _made_once_per_app(name: str, make):
    """``app.extensions[name]``, made by ``make()`` the first time any thread asks."""
    app = current_app._get_current_object()
    value = app.extensions.get(name)
    if value is None:
        with _extension_lock:
            value = app.extensions.get(name)
            if value is None:
                value = app.extensions[name] = make()
    return value


def services():
    """The process's clients for the task layer (``tasks.services``), made with the app."""
    return current_app.extensions["samo_services"]


def celery_client():
    """The Celery app this process publishes with; built from the app's settings on first use."""
    return services().celery


def completion_listener():
    """The process's listener for job completions that requests wait on (``api.fastpath.completions``)."""
    def make():
        from api.fastpath.completions import CompletionListener

        return CompletionListener(redis_client())

    return _made_once_per_app("samo_completions", make)


def begin_drain(app: Flask) -> None:
    """The process is stopping: requests waiting on a job answer now (``CompletionListener.drain``)."""
    listener = app.extensions.get("samo_completions")
    if listener is not None:
        listener.drain()


def job_writer():
    """The process's group-commit writer for job rows (``api.fastpath.job_writer``), made on first use."""
    def make():
        from api.fastpath.job_writer import JobWriter
        from tasks.enqueue import JobPublisher

        return JobWriter(services().engine, JobPublisher(celery_client()))

    return _made_once_per_app("samo_job_writer", make)
