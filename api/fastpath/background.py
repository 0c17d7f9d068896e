"""A daemon thread an API process starts on first use.

Not at import or app creation: gunicorn forks its workers after loading the app, and threads do
not survive a fork, so each worker process starts its own the first time it needs one (a forked
child forgets its parent's thread).

The check on every use is a plain attribute read: ``Thread.is_alive()`` takes a lock, and under
gevent that yields to the hub (an event-loop turn) on each call. The targets run forever and
handle their own errors, so a started thread is not watched for dying.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable


class BackgroundThread:
    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.target = target
        self.name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _instances.add(self)

    def ensure_running(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self.target, name=self.name, daemon=True)
                thread.start()
                self._thread = thread

    def _forget(self) -> None:
        self._thread = None
        self._lock = threading.Lock()


_instances: weakref.WeakSet[BackgroundThread] = weakref.WeakSet()


def _forget_all() -> None:
    for background in list(_instances):
        background._forget()


os.register_at_fork(after_in_child=_forget_all)
