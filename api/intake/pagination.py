"""Keyset pagination shared by the list endpoints: newest first on (created_at, id).

Offsets drift when rows arrive between two page requests; a cursor naming the last row seen
keeps every page stable.
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from enum import Enum
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from api.intake.characters import parse_json
from api.problems import Problem
from db.pages import newest_first

Status = TypeVar("Status", bound=Enum)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
#: Batch rows are numbered in a 32-bit integer column.
MAX_ROW = 2**31 - 1


def parse_limit(raw: str | None) -> int:
    try:
        limit = int(raw) if raw else DEFAULT_PAGE_SIZE
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise Problem(400, "invalid-limit", "Invalid limit", f"`limit` must be an integer from 1 to {MAX_PAGE_SIZE}.")
    return limit


def parse_row_cursor(raw: str | None) -> int:
    """A cursor over a batch's items: the last row of the previous page, as the row column stores it."""
    cursor = raw or "0"
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= len(str(MAX_ROW))) or int(cursor) > MAX_ROW:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "`cursor` is not one this API returned.")
    return int(cursor)


def encode_cursor(row) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, row_id = parse_json(base64.urlsafe_b64decode(padded))
        when = datetime.fromisoformat(created_at)
        if when.utcoffset() is None:
            raise ValueError("the cursors this API writes carry their zone")
        return when, uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error):
        raise Problem(400, "invalid-cursor", "Invalid cursor", "`cursor` is not one this API returned.") from None


def newest_first_page(session: Session, query: Select, model, limit: int,
                      cursor: str | None) -> tuple[list, str | None]:
    """One page of ``query``'s rows of ``model`` and the cursor of the next page (None on the last)."""
    rows = newest_first(session, query, model, limit, decode_cursor(cursor) if cursor else None)
    page = rows[:limit]
    return page, encode_cursor(page[-1]) if len(rows) > limit else None


def parse_status_filter(raw: str | None, statuses: type[Status]) -> list[Status]:
    """A comma-separated `status` query parameter as members of ``statuses``."""
    try:
        return [statuses(value.strip()) for value in (raw or "").split(",") if value.strip()]
    except ValueError:
        allowed = ", ".join(s.value for s in statuses)
        raise Problem(400, "invalid-status-filter", "Invalid status filter",
                      f"`status` must be a comma-separated list of: {allowed}.") from None
