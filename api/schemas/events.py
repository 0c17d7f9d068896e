"""Live events: the stream ticket request and answer, and the event streams' OpenAPI description."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator


class EventTicketCreate(BaseModel):
    """Exactly one of ``job_id`` and ``batch_id``: the stream the ticket opens."""

    model_config = ConfigDict(extra="forbid")

    job_id: UUID | None = None
    batch_id: UUID | None = None

    @model_validator(mode="after")
    def one_stream(self) -> EventTicketCreate:
        if (self.job_id is None) == (self.batch_id is None):
            raise ValueError("give exactly one of job_id and batch_id")
        return self


class EventTicket(BaseModel):
    ticket: str
    expires_at: datetime
    url: str


COMPONENT_MODELS = (EventTicketCreate, EventTicket)

STREAM_DESCRIPTION = (
    "Server-Sent Events. Each event has an integer `id` (increasing; send it back as `Last-Event-ID` to "
    "resume), an `event` name and one JSON object as `data`. The stream ends after `event: done`, whose data "
    "is the resource's document, or after SAMO_EVENTS_MAX_STREAM_S with a `retry:` hint. A `: keep-alive` "
    "comment comes every SAMO_EVENTS_HEARTBEAT_S without events. Authenticate with the usual headers or "
    "with `?ticket=` from POST /v1/events/tickets (for EventSource, which cannot send headers)."
)


def _stream_parameters(path_id: str) -> list[dict]:
    return [
        {"name": path_id, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
        {"name": "ticket", "in": "query", "schema": {"type": "string"},
         "description": "A single-use stream ticket, valid 60 s, for this stream only."},
        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
         "description": "Resume after this event: the events since then are sent first."},
    ]


#: One event of the stream, as a client's parser reads it: ``data`` is one JSON object's text.
SERVER_SENT_EVENT = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "event": {"type": "string"}, "data": {"type": "string"},
                   "retry": {"type": "integer"}},
}


def _stream(summary: str, path_id: str, events: str) -> dict:
    return {"get": {
        "summary": summary,
        "description": f"{STREAM_DESCRIPTION} {events}",
        "parameters": _stream_parameters(path_id),
        "responses": {"200": {"description": "An event stream",
                              "headers": {"Cache-Control": {"schema": {"type": "string", "example": "no-cache"}}},
                              "content": {"text/event-stream": {"schema": SERVER_SENT_EVENT}}}},
    }}


def event_paths(json_content) -> dict:
    return {
        "/v1/jobs/{job_id}/events": _stream(
            "A job's live events", "job_id",
            "Events: `status` `{job_id, status}` at each change; `progress` `{job_id, seconds_done, "
            "seconds_total}` while a recording is transcribed; `done` with the job (as GET /v1/jobs/{id})."),
        "/v1/batches/{batch_id}/events": _stream(
            "A batch's live events", "batch_id",
            "Events: `progress` `{batch_id, status, counts, progress, eta_s}` while items finish; `done` with "
            "the batch (as GET /v1/batches/{id})."),
        "/v1/events/tickets": {"post": {
            "summary": "A single-use, 60-second ticket for one event stream (for browsers' EventSource)",
            "description": "Needs `jobs:read` for a job's stream, `batches:read` for a batch's; the job or "
                           "batch must be the caller's.",
            "requestBody": {"required": True, "content": json_content(EventTicketCreate)},
            "responses": {"201": {"description": "The ticket and the stream URL that takes it",
                                  "content": json_content(EventTicket)}},
        }},
    }
