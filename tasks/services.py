"""The clients one process shares: settings, the database, Redis and the Celery app it publishes with.

The API builds one in ``create_app`` (``api.extensions.services``); a worker builds one when
its Celery app is made (``tasks.worker``) and every task reads it with :func:`current`.
Clients are opened on first use, so building one connects to nothing, and a forked worker
process drops the connections it inherited (``db.session.dispose_engines``).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import redis
from celery import Celery
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from config.settings import Settings
from db.session import get_engine, session_scope


class Services:
    def __init__(self, settings: Settings, celery: Celery | None = None) -> None:
        self.settings = settings
        self._celery = celery
        self._lock = threading.Lock()

    @cached_property
    def engine(self) -> Engine:
        return get_engine(self.settings.database_url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with session_scope(self.settings.database_url) as session:
            yield session

    @cached_property
    def redis(self) -> redis.Redis:
        """Completion notices and throttles (bytes replies, short timeouts: callers treat it as best effort)."""
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)

    @property
    def celery(self) -> Celery:
        """The worker's own app, or for other processes one made from the settings to publish with."""
        if self._celery is None:
            with self._lock:
                if self._celery is None:
                    from config.celery import make_celery

                    self._celery = make_celery(self.settings)
        return self._celery


_current: Services | None = None


def install(services: Services) -> Services:
    """Make ``services`` the ones :func:`current` returns in this process."""
    global _current
    _current = services
    return services


def current() -> Services:
    """This process's services: those installed by its entry point, else made from the environment."""
    if _current is None:
        install(Services(Settings.from_env()))
    return _current
