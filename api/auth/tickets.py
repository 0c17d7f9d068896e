"""Stream tickets: what a browser's ``EventSource`` (which cannot send headers) puts in the URL.

A ticket is issued to an authenticated caller for one event stream (``POST /v1/events/tickets``),
stored in Redis under its SHA-256 only (the ticket itself is never kept), and is good for that
stream, once, within ``TICKET_TTL_S``: redeeming reads and deletes it in one script, so two
requests with the same ticket cannot both get in. It is accepted only by views marked
:func:`accepts_ticket` and carries only the read scope that stream needs.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, request

from api.extensions import redis_client
from api.problems import Problem
from db.models import utcnow

TICKET_TTL_S = 60
TICKET_KEY = "samo:tickets:{}"
TICKET_PARAMETER = "ticket"
_REDEEM = "local value = redis.call('GET', KEYS[1]) if value then redis.call('DEL', KEYS[1]) end return value"


@dataclass(frozen=True)
class TicketGrant:
    """What a ticket lets its bearer do: read ``path`` as ``api_key_id`` of ``tenant_id`` with ``scope``."""

    tenant_id: uuid.UUID
    api_key_id: uuid.UUID
    tier: str
    scope: str
    path: str


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_at: datetime


def _key(ticket: str) -> str:
    return TICKET_KEY.format(hashlib.sha256(ticket.encode()).hexdigest())


def issue_ticket(grant: TicketGrant) -> IssuedTicket:
    ticket = secrets.token_urlsafe(32)
    value = json.dumps({"tenant_id": str(grant.tenant_id), "api_key_id": str(grant.api_key_id),
                        "tier": grant.tier, "scope": grant.scope, "path": grant.path})
    redis_client().set(_key(ticket), value, ex=TICKET_TTL_S)
    return IssuedTicket(ticket, utcnow() + timedelta(seconds=TICKET_TTL_S))


def invalid_ticket() -> Problem:
    return Problem(401, "invalid-ticket", "Invalid stream ticket",
                   "The stream ticket is unknown, expired or already used; ask POST /v1/events/tickets "
                   "for a new one.")


def redeem_ticket(ticket: str, path: str) -> TicketGrant:
    """The grant of ``ticket``, which is used up; a 401 if it is not valid, a 403 if it is for another stream."""
    if not ticket or len(ticket) > 256:
        raise invalid_ticket()
    value = redis_client().eval(_REDEEM, 1, _key(ticket))
    if value is None:
        raise invalid_ticket()
    stored = json.loads(value)
    if stored["path"] != path:
        raise Problem(403, "ticket-not-for-this-stream", "Ticket not for this stream",
                      "This stream ticket was issued for another event stream.")
    return TicketGrant(uuid.UUID(stored["tenant_id"]), uuid.UUID(stored["api_key_id"]), stored["tier"],
                       stored["scope"], stored["path"])


def accepts_ticket(view: Callable) -> Callable:
    """Mark a view as one that a stream ticket (``?ticket=``) may authenticate, instead of headers."""
    view.samo_accepts_ticket = True  # type: ignore[attr-defined]
    return view


def presented_ticket() -> str | None:
    """The request's ``?ticket=`` when its view accepts tickets; None otherwise (the ticket is ignored)."""
    if TICKET_PARAMETER not in request.args or request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "samo_accepts_ticket", False):
        return None
    return request.args.get(TICKET_PARAMETER, "")
