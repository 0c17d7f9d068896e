"""The query of a timeline: ``from``, ``to``, ``bucket`` and ``tz``, checked into a :class:`TimelineQuery`.

``from`` and ``to`` are local dates (midnight in ``tz``) or RFC 3339 timestamps; ``to`` is
exclusive. A range may hold at most :data:`MAX_RANGE` of its bucket, so one answer stays small.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.intake.entries import parse_occurred_at
from api.problems import Problem
from db.rollups import UNITS

MAX_RANGE = {"day": timedelta(days=400), "week": timedelta(days=7 * 262), "month": timedelta(days=3700)}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class TimelineQuery:
    start: datetime
    end: datetime
    unit: str
    zone: ZoneInfo

    def echo(self) -> dict:
        return {"from": self.start.astimezone(self.zone).isoformat(), "to": self.end.astimezone(self.zone).isoformat(),
                "bucket": self.unit, "tz": self.zone.key}


def invalid_query(field: str, message: str) -> Problem:
    return Problem(422, "invalid-timeline-query", "Invalid timeline query", f"`{field}` {message}.",
                   errors=[{"field": field, "message": message}])


def parse_zone(raw: str | None) -> ZoneInfo:
    name = (raw or "UTC").strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid_query("tz", "must be an IANA time zone such as Europe/Paris or Asia/Kolkata") from None


def parse_bound(field: str, raw: str | None, zone: ZoneInfo) -> datetime:
    if raw is None or not raw.strip():
        raise invalid_query(field, "is required: a date (YYYY-MM-DD, midnight in `tz`) or an RFC 3339 timestamp")
    text = raw.strip()
    if _DATE.fullmatch(text):
        try:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=zone).astimezone(UTC)
        except ValueError:
            raise invalid_query(field, "is not a real date") from None
    try:
        return parse_occurred_at(text).astimezone(UTC)
    except ValueError as error:
        raise invalid_query(field, f"must be a date (YYYY-MM-DD) or {error.args[0].removeprefix('must be ')}") from None


def parse_timeline_query(args) -> TimelineQuery:
    zone = parse_zone(args.get("tz"))
    unit = (args.get("bucket") or "day").strip()
    if unit not in UNITS:
        raise invalid_query("bucket", f"must be one of {', '.join(UNITS)}")
    start, end = parse_bound("from", args.get("from"), zone), parse_bound("to", args.get("to"), zone)
    if start >= end:
        raise invalid_query("to", "must be after `from`")
    if end - start > MAX_RANGE[unit]:
        raise invalid_query("to", f"is too far after `from` for `bucket={unit}`: at most {MAX_RANGE[unit].days} days")
    return TimelineQuery(start, end, unit, zone)
