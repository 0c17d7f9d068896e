"""``Client`` and ``AsyncClient``: configuration, authentication, retries, paging, streams and waits.

The resources (``samo.resources``) describe each operation as a :class:`~samo._calls.Call`; the
sync client answers a call with its result and the async client with an awaitable of it, so both
share every resource class. Retries, paging, streams and waits are written once, as generators of
steps (``samo._steps``) that each client's driver performs with its own I/O.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from dataclasses import replace
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from samo._calls import (
    FIRST_POLL_INTERVAL_S,
    Call,
    EventParser,
    EventsUnavailable,
    RetryPolicy,
    events_unavailable,
    next_poll_interval,
    parse_model,
    without_none,
)
from samo._steps import Close, Item, NextLine, Read, Send, Sleep
from samo._version import __version__
from samo.errors import APIConnectionError, ProblemError, SamoError, WaitTimeout, problem_from_response
from samo.models import Event, Token
from samo.resources import Batches, Jobs, Subjects, Webhooks

DEFAULT_BASE_URL = "http://127.0.0.1:5000"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Longer than the server's heartbeat on an event stream, so a quiet stream is not taken for a dead one.
STREAM_READ_TIMEOUT_S = 45.0
#: A token is renewed when this share of its lifetime has passed.
TOKEN_RENEWAL_SHARE = 0.8
AUTH_MODES = ("key", "token")


class _Auth:
    """The ``Authorization`` header: the API key itself, or a bearer token exchanged for it at
    ``POST /v1/auth/token`` and exchanged again before it expires (or when the API refuses it)."""

    def __init__(self, api_key: str, mode: str) -> None:
        if mode not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}, not {mode!r}")
        self.api_key, self.mode = api_key, mode
        self.token: str | None = None
        self.renew_at = 0.0

    @property
    def renewable(self) -> bool:
        return self.mode == "token"

    def header(self) -> str | None:
        """None when a token must first be exchanged."""
        if self.mode == "key":
            return f"ApiKey {self.api_key}"
        if self.token is not None and time.monotonic() < self.renew_at:
            return f"Bearer {self.token}"
        return None

    def exchange(self) -> Call:
        return Call("POST", "/v1/auth/token", json={"grant_type": "api_key", "api_key": self.api_key},
                    parse=parse_model(Token), authenticated=False)

    def store(self, token: Token) -> None:
        self.token = token.access_token
        self.renew_at = time.monotonic() + token.expires_in * TOKEN_RENEWAL_SHARE

    def forget(self) -> None:
        self.token = None


def _stream_timeout(base: httpx.Timeout, deadline: float | None) -> httpx.Timeout:
    read = STREAM_READ_TIMEOUT_S
    if deadline is not None:
        read = max(1.0, min(read, deadline - time.monotonic() + 1.0))
    return httpx.Timeout(base.connect or 10.0, read=read, write=base.write, pool=base.pool)


def _parse_done(model: type[BaseModel], event: Event) -> BaseModel | None:
    try:
        return model.model_validate(event.data)
    except ValidationError:
        return None


Steps = Generator[Any, Any, Any]


class _BaseClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, auth: str = "key",
                 timeout: float | httpx.Timeout | None = None, max_retries: int = 3, max_retry_wait_s: float = 60.0,
                 headers: dict[str, str] | None = None, **httpx_options: Any) -> None:
        """``base_url`` and ``api_key`` default to ``SAMO_API_URL`` and ``SAMO_API_KEY``; ``auth="token"``
        exchanges the key for short-lived tokens; ``httpx_options`` go to the httpx client."""
        api_key = api_key or os.environ.get("SAMO_API_KEY")
        if not api_key:
            raise SamoError("An API key is needed: pass api_key= or set SAMO_API_KEY.")
        self.base_url = (base_url or os.environ.get("SAMO_API_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else (
            DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout))
        self.retry = RetryPolicy(max_retries=max_retries, max_wait_s=max_retry_wait_s)
        self._auth = _Auth(api_key, auth)
        self._http_options = {"base_url": self.base_url, "timeout": self.timeout,
                              "headers": {"User-Agent": f"samo-brain-python/{__version__}",
                                          "Accept": "application/json", **(headers or {})},
                              **httpx_options}
        self.jobs = Jobs(self)
        self.batches = Batches(self)
        self.subjects = Subjects(self)
        self.webhooks = Webhooks(self)

    def _request(self, call: Call, authorization: str | None) -> httpx.Request:
        headers = dict(call.headers)
        if authorization:
            headers["Authorization"] = authorization
        options: dict[str, Any] = {"params": without_none(call.params or {}), "headers": headers}
        if call.json is not None:
            options["json"] = call.json
        elif call.body is not None:
            options["content"] = self._content(call.body())
        elif call.multipart is not None:
            options["data"], options["files"] = call.multipart()
        if call.timeout is not None:
            options["timeout"] = call.timeout
        return self._http.build_request(call.method, call.path, **options)

    def _content(self, body: Iterable[bytes] | bytes) -> Any:
        return body

    def _connection_error(self, error: httpx.TransportError) -> APIConnectionError:
        return APIConnectionError(f"cannot reach {self.base_url}: {type(error).__name__}")

    def _events_call(self, path: str, parser: EventParser, deadline: float | None) -> Call:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if parser.last_id is not None:
            headers["Last-Event-ID"] = parser.last_id
        return Call("GET", path, headers=headers, timeout=_stream_timeout(self.timeout, deadline))

    @staticmethod
    def _stream_problem(error: ProblemError) -> EventsUnavailable | ProblemError:
        return EventsUnavailable() if events_unavailable(error.status, error.slug, "") else error

    @staticmethod
    def _timed_out(current: Any) -> WaitTimeout:
        noun = type(current).__name__.lower()
        return WaitTimeout(f"{noun} {getattr(current, 'id', '')} did not finish in time "
                           f"(last status: {getattr(current, 'status', None)})", current)

    # --- what the resources call: the sync client answers with results, the async one with awaitables

    def _execute(self, call: Call) -> Any:
        return self._drive(self._execute_steps(call))

    def _pages(self, call: Call, model: type[BaseModel]) -> Any:
        return self._iterate(self._pages_steps(call, model))

    def _records(self, call: Call, model: type[BaseModel] | None) -> Any:
        return self._iterate(self._records_steps(call, model))

    def _events(self, path: str, deadline: float | None = None) -> Any:
        return self._iterate(self._events_steps(path, deadline))

    def _wait(self, current: Any, fetch: Call, model: type[BaseModel], events_path: str | None,
              timeout: float | None) -> Any:
        return self._drive(self._wait_steps(current, fetch, model, events_path, timeout))

    def _run(self, create: Call, fetch_path: str, model: type[BaseModel], timeout: float | None) -> Any:
        return self._drive(self._run_steps(create, fetch_path, model, timeout))

    # --- the algorithms, as steps

    def _authorization_steps(self, call: Call) -> Steps:
        if not call.authenticated:
            return None
        header = self._auth.header()
        if header is None:
            self._auth.store((yield from self._execute_steps(self._auth.exchange())))
            header = self._auth.header()
        return header

    def _send_steps(self, call: Call, stream: bool = False) -> Steps:
        """The response of the call's first acceptable attempt; a problem answer raises :class:`ProblemError`."""
        attempt, renewed = 0, False
        while True:
            authorization = yield from self._authorization_steps(call)
            try:
                response = yield Send(self._request(call, authorization), stream)
            except httpx.TransportError as error:
                delay = self.retry.delay_after_error(call, attempt)
                if delay is None:
                    raise self._connection_error(error) from error
                yield Sleep(delay)
                attempt += 1
                continue
            if response.status_code == 401 and call.authenticated and self._auth.renewable and not renewed:
                yield Close(response)
                self._auth.forget()
                renewed = True
                continue
            delay = self.retry.delay_after_status(call, attempt, response)
            if delay is not None:
                yield Close(response)
                yield Sleep(delay)
                attempt += 1
                continue
            if response.status_code >= 400:
                yield Read(response)
                yield Close(response)
                raise problem_from_response(response)
            return response

    def _execute_steps(self, call: Call) -> Steps:
        response = yield from self._send_steps(call)
        return call.parse(response) if call.parse else response.json()

    def _pages_steps(self, call: Call, model: type[BaseModel]) -> Steps:
        """Every item of every page, following ``next_cursor``; a page is asked for only when needed."""
        params = dict(call.params or {})
        while True:
            page = (yield from self._send_steps(replace(call, params=params))).json()
            for item in page["data"]:
                yield Item(model.model_validate(item))
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def _records_steps(self, call: Call, model: type[BaseModel] | None) -> Steps:
        """One JSON line of a streamed JSONL answer at a time, as ``model`` (or a dict)."""
        response = yield from self._send_steps(call, stream=True)
        while (line := (yield NextLine(response))) is not None:
            if line.strip():
                record = json.loads(line)
                yield Item(model.model_validate(record) if model else record)
        yield Close(response)

    def _events_steps(self, path: str, deadline: float | None) -> Steps:
        """A resource's event stream up to its ``done`` event, reconnecting with ``Last-Event-ID``
        when the connection breaks (at most ``max_retries`` times in a row)."""
        parser, reconnects = EventParser(), 0
        while deadline is None or time.monotonic() < deadline:
            try:
                response = yield from self._send_steps(self._events_call(path, parser, deadline), stream=True)
            except ProblemError as error:
                raise self._stream_problem(error) from error
            if events_unavailable(response.status_code, None, response.headers.get("Content-Type", "")):
                yield Close(response)
                raise EventsUnavailable()
            try:
                while (line := (yield NextLine(response))) is not None:
                    event = parser.feed(line)
                    if event is not None:
                        reconnects = 0
                        yield Item(event)
                        if event.event == "done":
                            return
                    if deadline is not None and time.monotonic() >= deadline:
                        return
            except httpx.TransportError as error:
                if reconnects >= self.retry.max_retries:
                    raise self._connection_error(error) from error
                reconnects += 1
            yield Close(response)

    def _done_event_steps(self, events: Steps) -> Steps:
        """An event stream's steps, its I/O passed up and its events kept back, until its ``done`` event."""
        outcome, error = None, None
        while True:
            try:
                step = events.throw(error) if error is not None else events.send(outcome)
            except StopIteration:
                return None
            outcome, error = None, None
            if isinstance(step, Item):
                if step.value.event == "done":
                    events.close()
                    return step.value
                continue
            try:
                outcome = yield step
            except Exception as caught:  # noqa: BLE001 - handed back to the stream, which decides
                error = caught

    def _wait_steps(self, current: Any, fetch: Call, model: type[BaseModel], events_path: str | None,
                    timeout: float | None) -> Steps:
        """Until ``current`` is finished: its event stream when the server has one, else polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if current is None:
            current = yield from self._execute_steps(fetch)
        if current.is_finished:
            return current
        if events_path is not None:
            try:
                done = yield from self._done_event_steps(self._events_steps(events_path, deadline))
            except (EventsUnavailable, APIConnectionError):
                done = None
            if done is not None:
                return _parse_done(model, done) or (yield from self._execute_steps(fetch))
        return (yield from self._poll_steps(current, fetch, deadline))

    def _poll_steps(self, current: Any, fetch: Call, deadline: float | None) -> Steps:
        interval = FIRST_POLL_INTERVAL_S
        while not current.is_finished:
            if deadline is not None and time.monotonic() + interval > deadline:
                raise self._timed_out(current)
            yield Sleep(interval)
            response = yield from self._send_steps(fetch)
            current = fetch.parse(response)
            interval = next_poll_interval(interval, response)
        return current

    def _run_steps(self, create: Call, fetch_path: str, model: type[BaseModel], timeout: float | None) -> Steps:
        """Submit with ``Prefer: wait``, then wait on the job's events, then poll."""
        started = time.monotonic()
        job = yield from self._execute_steps(create)
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        path = fetch_path.format(id=job.id)
        return (yield from self._wait_steps(job, Call("GET", path, parse=parse_model(model)), model,
                                            f"{path}/events", remaining))


class _Streams:
    """The streamed responses a drive has open and their line iterators; whatever is left open
    when the drive ends (finished, failed or abandoned by its consumer) is closed."""

    def __init__(self) -> None:
        self.open: dict[int, tuple[httpx.Response, Any]] = {}

    def add(self, response: httpx.Response, lines: Any) -> None:
        self.open[id(response)] = (response, lines)

    def lines(self, response: httpx.Response) -> Any:
        return self.open[id(response)][1]

    def discard(self, response: httpx.Response) -> None:
        self.open.pop(id(response), None)

    def leftovers(self) -> list[httpx.Response]:
        responses = [response for response, _lines in self.open.values()]
        self.open.clear()
        return responses


class Client(_BaseClient):
    """The synchronous client: ``with samo.Client(base_url, api_key) as client: ...``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **options: Any) -> None:
        super().__init__(base_url, api_key, **options)
        self._http = httpx.Client(**self._http_options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _drive(self, steps: Steps) -> Any:
        items = self._iterate(steps)
        while True:
            try:
                next(items)
            except StopIteration as stop:
                return stop.value

    def _iterate(self, steps: Steps) -> Iterator[Any]:
        """Perform the steps; each ``Item`` goes to the consumer. Returns what the steps return."""
        streams, outcome, error = _Streams(), None, None
        try:
            while True:
                try:
                    step = steps.throw(error) if error is not None else steps.send(outcome)
                except StopIteration as stop:
                    return stop.value
                outcome, error = None, None
                if isinstance(step, Item):
                    yield step.value
                    continue
                try:
                    outcome = self._perform(step, streams)
                except Exception as caught:  # noqa: BLE001 - handed to the steps, which decide
                    error = caught
        finally:
            steps.close()
            for response in streams.leftovers():
                response.close()

    def _perform(self, step: Any, streams: _Streams) -> Any:
        if isinstance(step, Send):
            response = self._http.send(step.request, stream=step.stream)
            if step.stream:
                streams.add(response, response.iter_lines())
            return response
        if isinstance(step, NextLine):
            return next(streams.lines(step.response), None)
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
        elif isinstance(step, Read):
            step.response.read()
        elif isinstance(step, Close):
            streams.discard(step.response)
            step.response.close()
        return None


class AsyncClient(_BaseClient):
    """The asyncio client: ``async with samo.AsyncClient(base_url, api_key) as client: await ...``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **options: Any) -> None:
        super().__init__(base_url, api_key, **options)
        self._http = httpx.AsyncClient(**self._http_options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    def _content(self, body: Iterable[bytes] | bytes) -> Any:
        if isinstance(body, bytes):
            return body

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in body:
                yield chunk
        return chunks()

    async def _drive(self, steps: Steps) -> Any:
        """Perform the steps, which yield no ``Item``, and answer what they return."""
        streams, outcome, error = _Streams(), None, None
        try:
            while True:
                try:
                    step = steps.throw(error) if error is not None else steps.send(outcome)
                except StopIteration as stop:
                    return stop.value
                outcome, error = None, None
                try:
                    outcome = await self._perform(step, streams)
                except Exception as caught:  # noqa: BLE001 - handed to the steps, which decide
                    error = caught
        finally:
            steps.close()
            for response in streams.leftovers():
                await response.aclose()

    async def _iterate(self, steps: Steps) -> AsyncIterator[Any]:
        """Perform the steps; each ``Item`` goes to the consumer (async generators return nothing)."""
        streams, outcome, error = _Streams(), None, None
        try:
            while True:
                try:
                    step = steps.throw(error) if error is not None else steps.send(outcome)
                except StopIteration:
                    return
                outcome, error = None, None
                if isinstance(step, Item):
                    yield step.value
                    continue
                try:
                    outcome = await self._perform(step, streams)
                except Exception as caught:  # noqa: BLE001 - handed to the steps, which decide
                    error = caught
        finally:
            steps.close()
            for response in streams.leftovers():
                await response.aclose()

    async def _perform(self, step: Any, streams: _Streams) -> Any:
        if isinstance(step, Send):
            response = await self._http.send(step.request, stream=step.stream)
            if step.stream:
                streams.add(response, response.aiter_lines())
            return response
        if isinstance(step, NextLine):
            return await anext(streams.lines(step.response), None)
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Read):
            await step.response.aread()
        elif isinstance(step, Close):
            streams.discard(step.response)
            await step.response.aclose()
        return None
