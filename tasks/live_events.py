"""Live events of jobs and batches: a short history per job or batch in Redis, and a wake-up.

Each event gets the next integer of its job's or batch's counter (the SSE ``id``), is added to
a sorted set scored by that number (the newest ``events_history_max``, kept
``events_history_ttl_s`` after the last event) and announced on the channel of the same name,
all in one script, so a stream woken by the announcement always finds the event, and a client
that reconnects with ``Last-Event-ID`` is sent what came after it (``events_after``).

Publishing is best effort: an event Redis refused is logged and dropped, never a job's failure,
and the process then skips events for ``REDIS_BACKOFF_S``.
The final ``done`` event of a stream is not stored here: the API builds it from the database
(``api.views.events``), so a lost Redis costs the steps, never the end.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import redis
from redis.exceptions import NoScriptError

from config.settings import Settings

log = logging.getLogger(__name__)

Kind = Literal["job", "batch"]

EVENTS_KEY = "samo:events:{}:{}"
EVENTS_PATTERN = "samo:events:*"
EVENTS_PREFIX = "samo:events:"
BATCH_PROGRESS_THROTTLE_KEY = "samo:events:throttle:batch:{}"
#: After Redis refused an event, a process publishes none for this long: a submission or a job
#: does not wait for a connect timeout on every event while Redis is away.
REDIS_BACKOFF_S = 5.0
_skip_until: dict[int, float] = {}

#: KEYS: the history, its counter. ARGV: event name, data (JSON), history length, TTL.
_APPEND = """
local id = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], id, id .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', KEYS[1], id)
return id
"""
#: EVALSHA straight away: a redis-py ``Script`` in a pipeline asks ``SCRIPT EXISTS`` before every
#: execution. The script is loaded when Redis answers NOSCRIPT (first use, a restart, a flush).
_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event: str
    data: str


def events_key(kind: Kind, resource_id: uuid.UUID | str) -> str:
    return EVENTS_KEY.format(kind, resource_id)


def append(client: redis.Redis, settings: Settings, kind: Kind, resource_id: uuid.UUID | str, event: str,
           data: dict) -> None:
    append_many(client, settings, kind, [(resource_id, event, data)])


def append_many(client: redis.Redis, settings: Settings, kind: Kind,
                events: Iterable[tuple[uuid.UUID | str, str, dict]]) -> None:
    """Store and announce events (one pipeline); best effort."""
    events = list(events)
    if not events or time.monotonic() < _skip_until.get(id(client), 0.0):
        return
    calls = []
    for resource_id, event, data in events:
        key = events_key(kind, resource_id)
        calls.append((key, key + ":seq", event, json.dumps(data, separators=(",", ":")),
                      settings.events_history_max, settings.events_history_ttl_s))
    try:
        missing = _append_pipelined(client, calls)
        if missing:
            client.script_load(_APPEND)
            if _append_pipelined(client, missing):
                raise NoScriptError("append script not loaded")
    except redis.RedisError:
        _skip_until[id(client)] = time.monotonic() + REDIS_BACKOFF_S
        log.warning("could not publish %d %s events; none for %.0fs", len(events), kind, REDIS_BACKOFF_S,
                    exc_info=True)


def _append_pipelined(client: redis.Redis, calls: list[tuple]) -> list[tuple]:
    """Run the append script for each call in one round trip; the calls Redis answered NOSCRIPT
    for (they did nothing), to run again once it is loaded. Any other error reply raises."""
    with client.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.evalsha(_APPEND_SHA, 2, *call)
        replies = pipe.execute(raise_on_error=False)
    missing = []
    for call, reply in zip(calls, replies):
        if isinstance(reply, NoScriptError):
            missing.append(call)
        elif isinstance(reply, Exception):
            raise reply
    return missing


def publish_statuses(client: redis.Redis, settings: Settings, job_ids: Iterable[uuid.UUID], status: str) -> None:
    """A ``status`` event for each job that reached ``status``."""
    append_many(client, settings, "job", [(job_id, "status", {"job_id": str(job_id), "status": status})
                                          for job_id in job_ids])


def events_after(client: redis.Redis, kind: Kind, resource_id: uuid.UUID | str, after: int) -> list[StoredEvent]:
    """The stored events numbered above ``after``, oldest first. Raises ``redis.RedisError``."""
    members = client.zrangebyscore(events_key(kind, resource_id), f"({after}", "+inf")
    events = []
    for member in members:
        member = member.decode() if isinstance(member, bytes) else member
        number, event, data = member.split("\n", 2)
        events.append(StoredEvent(int(number), event, data))
    return events


def last_event_id(client: redis.Redis, kind: Kind, resource_id: uuid.UUID | str) -> int:
    """The number of the newest event given out for the resource (0 if none). Raises ``redis.RedisError``."""
    return int(client.get(events_key(kind, resource_id) + ":seq") or 0)


class ProgressThrottle:
    """Lets a call through at most once every ``interval_s`` (in one process), the first one always."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def ready(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True


def batch_progress_due(client: redis.Redis, settings: Settings, batch_id: uuid.UUID) -> bool:
    """Whether this caller publishes the batch's next ``progress`` event: one per batch every
    ``events_batch_progress_interval_s`` however many workers finish its items (a Redis SET NX)."""
    interval_ms = max(1, round(settings.events_batch_progress_interval_s * 1000))
    try:
        return bool(client.set(BATCH_PROGRESS_THROTTLE_KEY.format(batch_id), 1, nx=True, px=interval_ms))
    except redis.RedisError:
        log.warning("could not throttle progress events of batch %s", batch_id, exc_info=True)
        return False
