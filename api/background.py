"""A daemon thread an API process starts on first use.

Not at import or app creation: gunicorn forks its workers after loading the app, and threads do
not survive a fork, so each worker process starts its own the first time it needs one.
"""
from __future__ import annotations

import threading
from typing import Callable


class BackgroundThread:
    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.target = target
        self.name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self.target, name=self.name, daemon=True)
                self._thread.start()
