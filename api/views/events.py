"""Live events of a job or a batch as Server-Sent Events, and the stream tickets browsers open them with.

A stream replays the events stored for its job or batch (``tasks.live_events``) after the
client's ``Last-Event-ID``, then waits for more through the process's one Redis subscription
(``api.fastpath.completions``): a waiting stream is a greenlet blocked on an event, holding no
Redis or database connection. It reads the database when woken without a new stored event (a
completion), after a terminal event, and every ``events_poll_interval_s`` while Redis is away
(every heartbeat otherwise), so the final ``done``, built from the database, always comes.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from flask import Blueprint, Response, request, stream_with_context

from api.auth.principal import check_scope, require_scope
from api.auth.tickets import TicketGrant, accepts_ticket, issue_ticket
from api.extensions import completion_listener, db_session, redis_client, settings
from api.intake.requests import parse_body
from api.problems import Problem
from api.schemas.events import EventTicketCreate
from api.views.batches import batch_document
from api.views.jobs import job_document
from api.views.owned import tenant_owned
from db import documents
from db.batches import status_counts
from db.models import TERMINAL_STATUSES, Batch, BatchStatus, Job
from tasks.live_events import Kind, events_after, last_event_id

bp = Blueprint("events", __name__, url_prefix="/v1")

MAX_EVENT_ID = 10**18
TERMINAL_STATUS_NAMES = frozenset(status.value for status in TERMINAL_STATUSES) | {"completed"}


@dataclass
class Source:
    """What a stream follows: ``finished_document()`` reads the resource and answers its final
    document once it is finished (else None); ``snapshot()``, for streams that start with one, its
    current state as an event."""

    kind: Kind
    resource_id: uuid.UUID
    finished_document: Callable[[], dict | None]
    snapshot: Callable[[], tuple[str, dict] | None] | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.resource_id}"


def finished_job(job_id: uuid.UUID) -> dict | None:
    session = db_session()
    job = session.get(Job, job_id, populate_existing=True)
    document = job_document(job) if job is not None and job.status in TERMINAL_STATUSES else None
    session.rollback()
    return document


def batch_state(batch_id: uuid.UUID) -> tuple[Batch | None, dict[str, int]]:
    session = db_session()
    batch = session.get(Batch, batch_id, populate_existing=True)
    counts = status_counts(session, batch_id) if batch is not None else {}
    return batch, counts


def finished_batch(batch_id: uuid.UUID) -> dict | None:
    batch, counts = batch_state(batch_id)
    document = batch_document(batch, counts) if batch is not None and batch.status != BatchStatus.RUNNING else None
    db_session().rollback()
    return document


def batch_snapshot(batch_id: uuid.UUID) -> tuple[str, dict] | None:
    batch, counts = batch_state(batch_id)
    data = documents.batch_progress(batch, counts) if batch is not None else None
    db_session().rollback()
    return ("progress", data) if data is not None else None


def requested_last_event_id() -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or int(raw) >= MAX_EVENT_ID:
        raise Problem(400, "invalid-last-event-id", "Invalid Last-Event-ID",
                      "Last-Event-ID must be the integer id of an event of this stream.")
    return int(raw)


def sse(event: str, data: str, event_id: int) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


def stored_events(source: Source, after: int) -> list:
    try:
        return events_after(redis_client(), source.kind, source.resource_id, after)
    except redis.RedisError:
        return []


def newest_event_id(source: Source) -> int:
    try:
        return last_event_id(redis_client(), source.kind, source.resource_id)
    except redis.RedisError:
        return 0


def event_lines(source: Source, resume_after: int | None) -> Iterator[str]:
    """The stream's text: stored events after ``resume_after``, live ones, then ``done`` or a ``retry:``."""
    config = settings()
    listener = completion_listener()
    deadline = time.monotonic() + config.events_max_stream_s
    with listener.watching(source.key) as woken:
        listener.wait_subscribed(1.0)
        last = resume_after or 0
        document = source.finished_document()
        if document is None and resume_after is None and source.snapshot is not None:
            last = newest_event_id(source)
            if (snapshot := source.snapshot()) is not None:
                yield sse(snapshot[0], json.dumps(snapshot[1]), last)
        elif document is not None and resume_after is None:
            yield sse("done", json.dumps(document), newest_event_id(source) + 1)
            return
        last_write = last_read = time.monotonic()
        woke = False
        while True:
            events = stored_events(source, last)
            for stored in events:
                yield sse(stored.event, stored.data, stored.id)
                last = stored.id
            now = time.monotonic()
            if events:
                last_write = now
            if (woke and not events) or ends(events) or now - last_read >= poll_s(config):
                document = source.finished_document()
                last_read = now
            if document is not None:
                yield sse("done", json.dumps(document), last + 1)
                return
            if now >= deadline or listener.draining:
                yield f"retry: {config.events_retry_ms}\n\n"
                return
            wake_in = min(deadline, last_write + config.events_heartbeat_s, last_read + poll_s(config)) - now
            woke = woken.wait(max(wake_in, 0.0))
            if woke:
                woken.clear()
            elif time.monotonic() - last_write >= config.events_heartbeat_s:
                yield ": keep-alive\n\n"
                last_write = time.monotonic()


def poll_s(config) -> float:
    """How often to read the database unprompted: slowly while the subscription works, faster without it."""
    return config.events_poll_interval_s if not completion_listener().subscribed else max(
        config.events_poll_interval_s, config.events_heartbeat_s)


def ends(events: list) -> bool:
    """Whether an event says its job or batch reached a terminal state."""
    for stored in events:
        try:
            if json.loads(stored.data).get("status") in TERMINAL_STATUS_NAMES:
                return True
        except (ValueError, AttributeError):
            continue
    return False


def stream_response(source: Source) -> Response:
    resume_after = requested_last_event_id()
    response = Response(stream_with_context(event_lines(source, resume_after)), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.get("/jobs/<uuid:job_id>/events")
@accepts_ticket
@require_scope("jobs:read")
def job_events(job_id: uuid.UUID | str):
    found = tenant_owned(Job, job_id, "job").id
    db_session().rollback()
    return stream_response(Source("job", found, lambda: finished_job(found)))


@bp.get("/batches/<uuid:batch_id>/events")
@accepts_ticket
@require_scope("batches:read")
def batch_events(batch_id: uuid.UUID | str):
    found = tenant_owned(Batch, batch_id, "batch").id
    db_session().rollback()
    return stream_response(Source("batch", found, lambda: finished_batch(found), lambda: batch_snapshot(found)))


@bp.post("/events/tickets")
def create_ticket():
    """A single-use ticket for one of the caller's event streams."""
    body, _raw = parse_body(EventTicketCreate)
    if body.job_id is not None:
        scope, model, noun, resource_id, path = "jobs:read", Job, "job", body.job_id, documents.job_path(body.job_id)
    else:
        scope, model, noun, resource_id = "batches:read", Batch, "batch", body.batch_id
        path = documents.batch_path(body.batch_id)
    principal = check_scope(scope)
    tenant_owned(model, resource_id, noun)
    db_session().rollback()
    stream_path = f"{path}/events"
    issued = issue_ticket(TicketGrant(principal.tenant_id, principal.api_key_id, principal.tier, scope,
                                      stream_path))
    return {"ticket": issued.ticket, "expires_at": documents.iso_datetime(issued.expires_at),
            "url": f"{request.script_root}{stream_path}?ticket={issued.ticket}"}, 201

