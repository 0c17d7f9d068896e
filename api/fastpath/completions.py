"""One Redis subscription per API process for the jobs that requests wait on (``Prefer: wait``).

Subscribing per waiting request would cost a Redis connection per request: redis-py closes a
PubSub's connection when it is released, so each wait paid a TCP connect, the client handshake,
SUBSCRIBE and a disconnect. Here a listener thread holds one pattern subscription to every
job's completion channel (``tasks.events.finished_channel``) and wakes the request threads
waiting on those jobs.

Nothing is missed between a job's commit and its waiter's registration: the listener keeps
the jobs finished in the last ``RECENT_S`` seconds, and when its subscription began after the
job was created (first use, or a reconnect), the waiter reads the job from the database once,
as a per-request subscription did. A reconnect also wakes every waiter to read its job once,
since a completion may have been published while the listener was away. When Redis cannot be
reached the request answers after that one read instead of holding its thread.

The same subscription wakes the process's event streams (``api.views.events``): it also
listens to every job's and batch's live-events channel (``tasks.live_events``) and to the batches'
completion channel, and :meth:`CompletionListener.watching` registers a stream under
``job:<id>`` or ``batch:<id>``. A stream waits on its own ``threading.Event`` (a greenlet's wait
under gevent), holding no Redis connection of its own.

When the process is told to stop (gunicorn's SIGTERM, see ``scripts/gunicorn.conf.py``),
:meth:`CompletionListener.drain` ends every wait at once: each waiting request reads its job and
answers (200 if it finished, else the usual 202), so a stopping API process has answered all its
callers well within its grace period, however long they asked to wait.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import redis

from api.fastpath.background import BackgroundThread
from db.models import utcnow
from tasks.events import BATCH_FINISHED_CHANNEL, FINISHED_CHANNEL
from tasks.live_events import EVENTS_PATTERN, EVENTS_PREFIX

log = logging.getLogger(__name__)

CHANNEL_PREFIX = FINISHED_CHANNEL.format("")
BATCH_CHANNEL_PREFIX = BATCH_FINISHED_CHANNEL.format("")
RECENT_S = 30.0
RECENT_MAX = 100_000
#: How long a waiter gives a listener that is not subscribed (first use, Redis away) to become so.
SUBSCRIBE_WAIT_S = 1.0
RECONNECT_DELAY_S = 1.0


class CompletionListener:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._recent: OrderedDict[str, float] = OrderedDict()
        self._listening_since: datetime | None = None
        self._subscribed = threading.Event()
        self._thread = BackgroundThread(self._run, "samo-completions")
        self._closed = threading.Event()
        self._draining = threading.Event()

    def drain(self) -> None:
        """End every wait now and every later one at once: the process is stopping."""
        self._draining.set()
        self._wake_all()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    @contextmanager
    def watching(self, key: str) -> Iterator[threading.Event]:
        """An event set whenever ``key`` (``job:<id>``, ``batch:<id>``) has news, on every
        (re)subscription and when the process starts to stop; the watcher clears it."""
        woken = threading.Event()
        self._ensure_thread()
        with self._lock:
            self._waiters.setdefault(key, set()).add(woken)
        try:
            yield woken
        finally:
            self._forget(key, woken)

    def wait_subscribed(self, timeout_s: float) -> bool:
        self._ensure_thread()
        return self._subscribed.wait(timeout_s)

    def close(self) -> None:
        """Stop listening (within a few seconds); waits after this read the database only."""
        self._closed.set()

    def wait(self, job_id: uuid.UUID, created_at: datetime | None, timeout_s: float,
             is_finished: Callable[[], bool]) -> bool:
        """True once the job is terminal, False at the deadline (or at once if Redis is unreachable).

        ``is_finished`` reads the job's state from the database; it is called only when the
        subscription may have missed the completion.
        """
        key = str(job_id)
        woken = threading.Event()
        self._ensure_thread()
        with self._lock:
            self._waiters.setdefault(key, set()).add(woken)
        try:
            if self._finished_recently(key):
                return True
            if not self._subscribed.wait(min(timeout_s, SUBSCRIBE_WAIT_S)):
                return is_finished()
            if not self._covers(created_at) and is_finished():
                return True
            woken.clear()  # a wake-up for a (re)subscription that the read above has answered
            if self._finished_recently(key):
                return True
            deadline = time.monotonic() + timeout_s
            while (remaining := deadline - time.monotonic()) > 0 and not self._draining.is_set():
                if not woken.wait(remaining):
                    return False
                woken.clear()
                if self._finished_recently(key) or is_finished():
                    return True
            return False
        finally:
            self._forget(key, woken)

    def _forget(self, key: str, woken: threading.Event) -> None:
        with self._lock:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(woken)
                if not waiting:
                    del self._waiters[key]

    def _covers(self, created_at: datetime | None) -> bool:
        """Whether the subscription was up before the job existed, so its completion cannot have been missed."""
        since = self._listening_since
        return since is not None and created_at is not None and since <= created_at

    def _finished_recently(self, key: str) -> bool:
        with self._lock:
            return key in self._recent

    def _ensure_thread(self) -> None:
        if not self._closed.is_set():
            self._thread.ensure_running()

    def _run(self) -> None:
        while not self._closed.is_set():
            pubsub = self.client.pubsub()
            try:
                pubsub.psubscribe(CHANNEL_PREFIX + "*", BATCH_CHANNEL_PREFIX + "*", EVENTS_PATTERN)
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=5.0)
                    if message is not None:
                        self._handle(message)
            except Exception:  # noqa: BLE001 - the listener must outlive any error; waiters fall back to reads
                log.warning("completion listener lost Redis; reconnecting in %.0fs", RECONNECT_DELAY_S,
                            exc_info=True)
                self._subscribed.clear()
                self._listening_since = None
                self._closed.wait(RECONNECT_DELAY_S)
            finally:
                self._subscribed.clear()
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001 - a broken connection may fail to close
                    pass

    def _handle(self, message: dict) -> None:
        if message["type"] == "psubscribe":
            self._listening_since = utcnow()
            self._subscribed.set()
            self._wake_all()
        elif message["type"] == "pmessage":
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if channel.startswith(CHANNEL_PREFIX):
                job_id = channel[len(CHANNEL_PREFIX):]
                self._finished(job_id)
                self._wake(f"job:{job_id}")
            elif channel.startswith(BATCH_CHANNEL_PREFIX):
                self._wake(f"batch:{channel[len(BATCH_CHANNEL_PREFIX):]}")
            elif channel.startswith(EVENTS_PREFIX):
                self._wake(channel[len(EVENTS_PREFIX):])

    def _wake(self, key: str) -> None:
        with self._lock:
            waiting = list(self._waiters.get(key, ()))
        for woken in waiting:
            woken.set()

    def _finished(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent[key] = now
            self._recent.move_to_end(key)
            while self._recent and (len(self._recent) > RECENT_MAX
                                    or next(iter(self._recent.values())) < now - RECENT_S):
                self._recent.popitem(last=False)
            waiting = list(self._waiters.get(key, ()))
        for woken in waiting:
            woken.set()

    def _wake_all(self) -> None:
        """After a (re)subscription: a completion may have gone by unheard, so every waiter reads its job."""
        with self._lock:
            waiting = [woken for events in self._waiters.values() for woken in events]
        for woken in waiting:
            woken.set()
