"""What a request is, independent of the client that sends it, and the retry policy both clients share."""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from samo.errors import parse_retry_after
from samo.models import Event

#: The statuses a request is retried on, honouring Retry-After: the API asks the client to come back.
RETRIED_STATUSES = frozenset({429, 503})
#: Methods whose repetition changes nothing, so a broken connection may be retried.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass
class Call:
    """One API request. ``body`` makes a fresh request body per attempt (a streamed upload is
    re-read from its start); ``resendable`` False when it cannot (a one-shot iterator)."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Callable[[], Iterable[bytes] | bytes] | None = None
    multipart: Callable[[], tuple[dict[str, str], dict[str, Any]]] | None = None
    parse: Callable[[httpx.Response], Any] | None = None
    resendable: bool = True
    authenticated: bool = True
    timeout: httpx.Timeout | None = None

    @property
    def survives_broken_connections(self) -> bool:
        """Safe to send again after a broken connection: idempotent by method or by Idempotency-Key."""
        return self.resendable and (self.method in IDEMPOTENT_METHODS or "Idempotency-Key" in self.headers)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``max_retries`` more attempts, each waiting what ``Retry-After`` asks
    (or an exponential backoff with jitter), and never a wait longer than ``max_wait_s``."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 60.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_wait_s, self.backoff_s * 2 ** attempt) * random.uniform(0.5, 1.0)

    def delay_after_status(self, call: Call, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying this answer, or None to give it to the caller."""
        if response.status_code not in RETRIED_STATUSES or attempt >= self.max_retries or not call.resendable:
            return None
        asked = parse_retry_after(response.headers.get("Retry-After"))
        delay = self.backoff(attempt) if asked is None else asked
        return delay if delay <= self.max_wait_s else None

    def delay_after_error(self, call: Call, attempt: int) -> float | None:
        if attempt >= self.max_retries or not call.survives_broken_connections:
            return None
        return self.backoff(attempt)


def parse_model(model) -> Callable[[httpx.Response], Any]:
    return lambda response: model.model_validate(response.json())


def no_content(_response: httpx.Response) -> None:
    return None


def json_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.strip():
            yield json.loads(line)


class EventParser:
    """Server-Sent Events (the WHATWG ``text/event-stream`` format), one line at a time."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event, self._data = "", []

    def feed(self, line: str) -> Event | None:
        """The event that this line completes (a blank line ends one), else None."""
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event = ""
            return None
        raw = "\n".join(self._data)
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw
        event = Event(id=self.last_id, event=self._event or "message", data=data)
        self._event, self._data = "", []
        return event


class EventsUnavailable(Exception):
    """The server has no event stream here (an older server): the caller falls back to polling."""


def events_unavailable(status: int, slug: str | None, content_type: str) -> bool:
    """A 404 of the route (not of the resource: ``job-not-found``), a 405, or an answer that is not a stream."""
    if status in (404, 405):
        return slug in (None, "not-found", "method-not-allowed", "about:blank")
    return status < 300 and not content_type.startswith("text/event-stream")


FIRST_POLL_INTERVAL_S = 0.25
MAX_POLL_INTERVAL_S = 5.0


def next_poll_interval(interval: float, response: httpx.Response) -> float:
    """Back off by half each time up to 5 s, but never sooner than the server's Retry-After."""
    backoff = min(interval * 1.5, MAX_POLL_INTERVAL_S)
    asked = parse_retry_after(response.headers.get("Retry-After"))
    return backoff if asked is None else max(backoff, asked)


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}
