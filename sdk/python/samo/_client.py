"""``Client`` and ``AsyncClient``: configuration, authentication, retries, paging, streams and waits.

The resources (``samo.resources``) describe each operation as a :class:`~samo._calls.Call`; the
sync client answers a call with its result and the async client with an awaitable of it, so both
share every resource class. Paging, streams and waits are the parts written once per client.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
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

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call, authorization: str | None) -> httpx.Request:
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
        return http.build_request(call.method, call.path, **options)

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
    def _check_stream(response: httpx.Response) -> None:
        if events_unavailable(response.status_code, None, response.headers.get("Content-Type", "")):
            raise EventsUnavailable()

    @staticmethod
    def _stream_problem(error: ProblemError) -> EventsUnavailable | ProblemError:
        return EventsUnavailable() if events_unavailable(error.status, error.slug, "") else error

    @staticmethod
    def _timed_out(current: Any) -> WaitTimeout:
        noun = type(current).__name__.lower()
        return WaitTimeout(f"{noun} {getattr(current, 'id', '')} did not finish in time "
                           f"(last status: {getattr(current, 'status', None)})", current)


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

    def _authorization(self, call: Call) -> str | None:
        if not call.authenticated:
            return None
        header = self._auth.header()
        if header is None:
            self._auth.store(self._execute(self._auth.exchange()))
            header = self._auth.header()
        return header

    def _send(self, call: Call, stream: bool = False) -> httpx.Response:
        """The response of the call's first acceptable attempt; a problem answer raises :class:`ProblemError`."""
        attempt, renewed = 0, False
        while True:
            try:
                response = self._http.send(self._request(self._http, call, self._authorization(call)), stream=stream)
            except httpx.TransportError as error:
                delay = self.retry.delay_after_error(call, attempt)
                if delay is None:
                    raise self._connection_error(error) from error
                time.sleep(delay)
                attempt += 1
                continue
            if response.status_code == 401 and call.authenticated and self._auth.renewable and not renewed:
                response.close()
                self._auth.forget()
                renewed = True
                continue
            delay = self.retry.delay_after_status(call, attempt, response)
            if delay is not None:
                response.close()
                time.sleep(delay)
                attempt += 1
                continue
            if response.status_code >= 400:
                response.read()
                response.close()
                raise problem_from_response(response)
            return response

    def _execute(self, call: Call) -> Any:
        response = self._send(call)
        return call.parse(response) if call.parse else response.json()

    def _pages(self, call: Call, model: type[BaseModel]) -> Iterator[Any]:
        """Every item of every page, following ``next_cursor``; a page is asked for only when needed."""
        params = dict(call.params or {})
        while True:
            page = self._send(replace(call, params=params)).json()
            for item in page["data"]:
                yield model.model_validate(item)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def _records(self, call: Call, model: type[BaseModel] | None) -> Iterator[Any]:
        """One JSON line of a streamed JSONL answer at a time, as ``model`` (or a dict)."""
        import json

        with self._stream(call) as response:
            for line in response.iter_lines():
                if line.strip():
                    record = json.loads(line)
                    yield model.model_validate(record) if model else record

    def _stream(self, call: Call):
        from contextlib import closing

        return closing(self._send(call, stream=True))

    def _events(self, path: str, deadline: float | None = None) -> Iterator[Event]:
        """A resource's event stream up to its ``done`` event, reconnecting with ``Last-Event-ID``
        when the connection breaks (at most ``max_retries`` times in a row)."""
        parser, reconnects = EventParser(), 0
        while deadline is None or time.monotonic() < deadline:
            try:
                response = self._send(self._events_call(path, parser, deadline), stream=True)
            except ProblemError as error:
                raise self._stream_problem(error) from error
            try:
                self._check_stream(response)
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        reconnects = 0
                        yield event
                        if event.event == "done":
                            return
                    if deadline is not None and time.monotonic() >= deadline:
                        return
            except httpx.TransportError as error:
                if reconnects >= self.retry.max_retries:
                    raise self._connection_error(error) from error
                reconnects += 1
            finally:
                response.close()

    def _wait(self, current: Any, fetch: Call, model: type[BaseModel], events_path: str | None,
              timeout: float | None) -> Any:
        """Until ``current`` is finished: its event stream when the server has one, else polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if current is None:
            current = self._execute(fetch)
        if current.is_finished:
            return current
        if events_path is not None:
            try:
                for event in self._events(events_path, deadline):
                    if event.event == "done":
                        return _parse_done(model, event) or self._execute(fetch)
            except (EventsUnavailable, APIConnectionError):
                pass
        return self._poll(current, fetch, deadline)

    def _poll(self, current: Any, fetch: Call, deadline: float | None) -> Any:
        interval = FIRST_POLL_INTERVAL_S
        while not current.is_finished:
            if deadline is not None and time.monotonic() + interval > deadline:
                raise self._timed_out(current)
            time.sleep(interval)
            response = self._send(fetch)
            current = fetch.parse(response)
            interval = next_poll_interval(interval, response)
        return current

    def _run(self, create: Call, fetch_path: str, model: type[BaseModel], timeout: float | None) -> Any:
        """Submit with ``Prefer: wait``, then wait on the job's events, then poll."""
        started = time.monotonic()
        job = self._execute(create)
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        return self._wait(job, Call("GET", fetch_path.format(id=job.id), parse=parse_model(model)), model,
                          f"{fetch_path.format(id=job.id)}/events", remaining)


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

    async def _authorization(self, call: Call) -> str | None:
        if not call.authenticated:
            return None
        header = self._auth.header()
        if header is None:
            self._auth.store(await self._execute(self._auth.exchange()))
            header = self._auth.header()
        return header

    async def _send(self, call: Call, stream: bool = False) -> httpx.Response:
        attempt, renewed = 0, False
        while True:
            try:
                request = self._request(self._http, call, await self._authorization(call))
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                delay = self.retry.delay_after_error(call, attempt)
                if delay is None:
                    raise self._connection_error(error) from error
                await asyncio.sleep(delay)
                attempt += 1
                continue
            if response.status_code == 401 and call.authenticated and self._auth.renewable and not renewed:
                await response.aclose()
                self._auth.forget()
                renewed = True
                continue
            delay = self.retry.delay_after_status(call, attempt, response)
            if delay is not None:
                await response.aclose()
                await asyncio.sleep(delay)
                attempt += 1
                continue
            if response.status_code >= 400:
                await response.aread()
                await response.aclose()
                raise problem_from_response(response)
            return response

    async def _execute(self, call: Call) -> Any:
        response = await self._send(call)
        return call.parse(response) if call.parse else response.json()

    async def _pages(self, call: Call, model: type[BaseModel]) -> AsyncIterator[Any]:
        params = dict(call.params or {})
        while True:
            page = (await self._send(replace(call, params=params))).json()
            for item in page["data"]:
                yield model.model_validate(item)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    async def _records(self, call: Call, model: type[BaseModel] | None) -> AsyncIterator[Any]:
        import json

        response = await self._send(call, stream=True)
        try:
            async for line in response.aiter_lines():
                if line.strip():
                    record = json.loads(line)
                    yield model.model_validate(record) if model else record
        finally:
            await response.aclose()

    async def _events(self, path: str, deadline: float | None = None) -> AsyncIterator[Event]:
        parser, reconnects = EventParser(), 0
        while deadline is None or time.monotonic() < deadline:
            try:
                response = await self._send(self._events_call(path, parser, deadline), stream=True)
            except ProblemError as error:
                raise self._stream_problem(error) from error
            try:
                self._check_stream(response)
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        reconnects = 0
                        yield event
                        if event.event == "done":
                            return
                    if deadline is not None and time.monotonic() >= deadline:
                        return
            except httpx.TransportError as error:
                if reconnects >= self.retry.max_retries:
                    raise self._connection_error(error) from error
                reconnects += 1
            finally:
                await response.aclose()

    async def _wait(self, current: Any, fetch: Call, model: type[BaseModel], events_path: str | None,
                    timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        if current is None:
            current = await self._execute(fetch)
        if current.is_finished:
            return current
        if events_path is not None:
            try:
                async for event in self._events(events_path, deadline):
                    if event.event == "done":
                        return _parse_done(model, event) or await self._execute(fetch)
            except (EventsUnavailable, APIConnectionError):
                pass
        return await self._poll(current, fetch, deadline)

    async def _poll(self, current: Any, fetch: Call, deadline: float | None) -> Any:
        interval = FIRST_POLL_INTERVAL_S
        while not current.is_finished:
            if deadline is not None and time.monotonic() + interval > deadline:
                raise self._timed_out(current)
            await asyncio.sleep(interval)
            response = await self._send(fetch)
            current = fetch.parse(response)
            interval = next_poll_interval(interval, response)
        return current

    async def _run(self, create: Call, fetch_path: str, model: type[BaseModel], timeout: float | None) -> Any:
        started = time.monotonic()
        job = await self._execute(create)
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        return await self._wait(job, Call("GET", fetch_path.format(id=job.id), parse=parse_model(model)), model,
                                f"{fetch_path.format(id=job.id)}/events", remaining)
