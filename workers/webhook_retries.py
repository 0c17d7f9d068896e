"""What an attempt's outcome means for the delivery, and when the next attempt is due.

* 2xx: delivered.
* timeouts, connection errors, names that do not resolve (perhaps only for now), 5xx and 429:
  retried on the schedule, a ``Retry-After`` answer pushing the next attempt back (capped);
* 410 Gone: the receiver says the endpoint is gone for good, which disables the endpoint;
* any other answer (3xx, which is never followed, and other 4xx) and destinations the SSRF
  guard refuses: a final failure, as retrying would get the same answer.

Delays carry +/- ``jitter`` so that the retries of many deliveries that failed together (a
receiver outage) do not all arrive together again.
"""
from __future__ import annotations

import enum
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from workers.webhook_http import HttpOutcome


class Verdict(str, enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"
    FINAL = "final"


def verdict_of(outcome: HttpOutcome) -> Verdict:
    status = outcome.status_code
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    if status == 429 or status >= 500:
        return Verdict.RETRY
    return Verdict.FINAL


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def next_delay(schedule: tuple[float, ...], attempts_in_round: int, jitter: float,
               retry_after_s: float | None = None, retry_after_max_s: float = 3600,
               rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after ``attempts_in_round`` attempts; None: give up.

    ``schedule[0]`` is the delay before the first attempt, so after n attempts the next delay
    is ``schedule[n]``. ``Retry-After`` is a floor, never a way to retry sooner than planned.
    """
    if attempts_in_round >= len(schedule):
        return None
    delay = float(schedule[attempts_in_round])
    if jitter > 0:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, retry_after_max_s))
    return max(0.0, delay)
