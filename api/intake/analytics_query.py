"""Query parameters of the insights and correlations endpoints: durations and instants, each refused
with a 422 problem naming the parameter."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from api.intake.entries import parse_occurred_at
from api.problems import Problem

_DURATION = re.compile(r"(\d{1,4})([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_WINDOW = timedelta(days=366)
MAX_BASELINE = timedelta(days=3 * 366)


def invalid(name: str, message: str) -> Problem:
    return Problem(422, "invalid-analytics-query", "Invalid analytics query", f"`{name}` {message}.",
                   errors=[{"field": name, "message": message}])


def duration(args, name: str, default: str, longest: timedelta) -> timedelta:
    """``12h``, ``7d`` or ``4w``: whole hours, days or weeks, from one hour to ``longest``."""
    raw = args.get(name, default).strip()
    match = _DURATION.fullmatch(raw)
    if match is None:
        raise invalid(name, "must be a number of hours, days or weeks such as 12h, 7d or 4w")
    value = int(match.group(1)) * _UNITS[match.group(2)]
    if not timedelta(hours=1) <= value <= longest:
        raise invalid(name, f"must be from 1h to {longest.days}d")
    return value


def instant(args, name: str, default: datetime | None) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return default
    try:
        return parse_occurred_at(raw)
    except ValueError as error:
        raise invalid(name, str(error)) from None

