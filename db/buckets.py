"""Calendar arithmetic shared by the rollups and the subject presence rows: 15-minute UTC slots,
and the days, ISO weeks (from Monday) and months that hold them, in UTC or in a caller's zone.

Every UTC offset in use is a whole number of quarter hours, so a local day, week or month of any
zone, daylight-saving days included, is a run of whole slots.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SLOT = timedelta(minutes=15)


def slot_of(moment: datetime) -> datetime:
    """The start of the 15-minute UTC slot holding ``moment`` (aware)."""
    utc = moment.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


def next_bucket(start: date, unit: str) -> date:
    """The first day of the day, week or month after the one starting on ``start``."""
    if unit == "day":
        return start + timedelta(days=1)
    if unit == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def local_bucket(moment: datetime, zone: ZoneInfo, unit: str) -> date:
    """The first local day of the day, ISO week (Monday) or month holding ``moment`` in ``zone``."""
    day = moment.astimezone(zone).date()
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def local_bounds(label: date, unit: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local bucket starting on ``label`` as UTC instants ``[start, end)``."""
    return (datetime.combine(label, time(), tzinfo=zone).astimezone(UTC),
            datetime.combine(next_bucket(label, unit), time(), tzinfo=zone).astimezone(UTC))


def utc_bucket_start(moment: datetime, unit: str) -> datetime:
    """The start of the UTC day, week or month holding ``moment``."""
    return datetime.combine(local_bucket(moment, UTC, unit), time(), tzinfo=UTC)


def utc_bucket_end(start: datetime, unit: str) -> datetime:
    """The end of the UTC day, week or month starting at ``start``."""
    return datetime.combine(next_bucket(start.date(), unit), time(), tzinfo=UTC)
