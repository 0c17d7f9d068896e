"""What each answer means for a delivery, and when the next attempt is due."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from config.settings import Settings
from workers.webhook_http import HttpOutcome
from workers.webhook_retries import Verdict, next_delay, retry_after_seconds, verdict_of

SCHEDULE = Settings().webhook_retry_schedule_s


@pytest.mark.parametrize(("status", "error", "verdict"), [
    (200, None, Verdict.DELIVERED), (204, None, Verdict.DELIVERED),
    (500, None, Verdict.RETRY), (503, None, Verdict.RETRY), (429, None, Verdict.RETRY),
    (None, "timed out after 10000 ms", Verdict.RETRY), (None, "connection error: refused", Verdict.RETRY),
    (410, None, Verdict.GONE),
    (400, None, Verdict.FINAL), (401, None, Verdict.FINAL), (404, None, Verdict.FINAL), (302, None, Verdict.FINAL),
])
def test_verdicts(status, error, verdict):
    assert verdict_of(HttpOutcome(status, 5, error=error)) is verdict


def test_the_default_schedule_is_the_specifications_about_a_day():
    assert SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert 24 * 3600 <= sum(SCHEDULE) <= 30 * 3600


def test_delays_follow_the_schedule_then_give_up():
    assert [next_delay(SCHEDULE, n, jitter=0) for n in range(1, 9)] == [5, 300, 1800, 7200, 18000, 36000, 36000, None]


def test_jitter_stays_within_its_share():
    rng = random.Random(1)
    delays = [next_delay(SCHEDULE, 2, jitter=0.2, rng=rng) for _ in range(200)]
    assert min(delays) >= 240 and max(delays) <= 360 and len(set(delays)) > 100


def test_retry_after_is_a_floor_and_is_capped():
    assert next_delay((0, 1, 1), 1, jitter=0, retry_after_s=7) == 7
    assert next_delay((0, 300), 1, jitter=0, retry_after_s=7) == 300
    assert next_delay((0, 1), 1, jitter=0, retry_after_s=10**9, retry_after_max_s=3600) == 3600


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
