"""The fixed windows that make `subject.shift_detected` at most once per subject and window."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.shift_events import fixed_window_start

WEEK = timedelta(days=7)


def test_moments_of_one_window_name_the_same_start():
    start = fixed_window_start(datetime(2026, 12, 2, 1, 0, tzinfo=UTC), WEEK)
    assert start <= datetime(2026, 12, 2, 1, 0, tzinfo=UTC) < start + WEEK
    assert fixed_window_start(start, WEEK) == start
    assert fixed_window_start(start + WEEK - timedelta(microseconds=1), WEEK) == start
    assert fixed_window_start(start + WEEK, WEEK) == start + WEEK


def test_windows_count_from_the_unix_epoch():
    assert fixed_window_start(datetime(1970, 1, 8, 12, tzinfo=UTC), WEEK) == datetime(1970, 1, 8, tzinfo=UTC)
    assert fixed_window_start(datetime(2026, 12, 2, 5, tzinfo=UTC), timedelta(days=1)) == datetime(2026, 12, 2,
                                                                                                  tzinfo=UTC)
