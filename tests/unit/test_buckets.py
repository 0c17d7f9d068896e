"""Calendar buckets: quarter-hour slots, and local or UTC days, weeks and months around the edges
that break naive arithmetic (month ends, a year's turn, daylight-saving days, odd offsets)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from db.buckets import local_bounds, local_bucket, next_bucket, slot_of, utc_bucket_end, utc_bucket_start

KATHMANDU = ZoneInfo("Asia/Kathmandu")
NEW_YORK = ZoneInfo("America/New_York")


def test_a_slot_starts_on_the_utc_quarter_hour_before_the_moment():
    moment = datetime(2026, 3, 1, 5, 59, 59, 999999, tzinfo=KATHMANDU)
    assert slot_of(moment) == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert slot_of(datetime(2026, 3, 1, 0, 15, tzinfo=UTC)) == datetime(2026, 3, 1, 0, 15, tzinfo=UTC)


@pytest.mark.parametrize(("start", "unit", "following"), [
    (date(2026, 1, 31), "day", date(2026, 2, 1)),
    (date(2026, 12, 28), "week", date(2027, 1, 4)),
    (date(2026, 1, 1), "month", date(2026, 2, 1)),
    (date(2028, 2, 1), "month", date(2028, 3, 1)),
    (date(2026, 12, 1), "month", date(2027, 1, 1)),
])
def test_the_next_bucket_starts_where_this_one_ends(start, unit, following):
    assert next_bucket(start, unit) == following


def test_local_buckets_follow_the_zone_not_utc():
    late_sunday_in_new_york = datetime(2026, 11, 2, 3, 30, tzinfo=UTC)
    assert local_bucket(late_sunday_in_new_york, NEW_YORK, "day") == date(2026, 11, 1)
    assert local_bucket(late_sunday_in_new_york, NEW_YORK, "week") == date(2026, 10, 26)
    assert local_bucket(late_sunday_in_new_york, UTC, "week") == date(2026, 11, 2)
    assert local_bucket(late_sunday_in_new_york, NEW_YORK, "month") == date(2026, 11, 1)


def test_a_daylight_saving_day_is_as_long_as_the_clocks_make_it():
    start, end = local_bounds(date(2026, 11, 1), "day", NEW_YORK)
    assert end - start == timedelta(hours=25)
    start, end = local_bounds(date(2026, 3, 8), "day", NEW_YORK)
    assert end - start == timedelta(hours=23)
    assert start == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize("unit", ["day", "week", "month"])
def test_utc_buckets_hold_the_moment_and_end_where_the_next_begins(unit):
    moment = datetime(2026, 12, 31, 23, 59, tzinfo=KATHMANDU)
    start = utc_bucket_start(moment, unit)
    end = utc_bucket_end(start, unit)
    assert start <= moment < end
    assert utc_bucket_start(end, unit) == end
    assert start.tzinfo is UTC and start.time().isoformat() == "00:00:00"
