"""Per-key request rate limits (a sliding-window log in Redis) and the per-tenant jobs-in-flight cap.

Rate limiting fails open: Redis holds no accepted work, so losing it must not stop the API.
After a Redis error the limiter stands aside for a few seconds instead of paying a connection
timeout on every request.
"""
from __future__ import annotations

import logging
import math
import time
import uuid
import zlib
from dataclasses import dataclass

import redis
from flask import Flask, Response, current_app, g
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api.extensions import redis_client, settings as app_settings
from api.problems import Problem
from config.settings import RateLimitTier, Settings
from db.models import UNFINISHED_STATUSES, Job

log = logging.getLogger(__name__)

KEY_PREFIX = "samo:ratelimit:"
REDIS_BACKOFF_S = 5.0
JOBS_IN_FLIGHT_RETRY_AFTER_S = 5
# Namespace for pg_advisory_xact_lock(int, int): serialises job admission per tenant.
JOBS_IN_FLIGHT_LOCK_CLASS = 0x5A30

# Server TIME keeps every API process on one clock; one member per admitted request.
# Returns {allowed, count, now_ms, oldest_ms (-1 if the window is empty)}.
SLIDING_WINDOW_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now_ms, now_ms .. ':' .. ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window_ms)
local oldest_ms = -1
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then oldest_ms = tonumber(oldest[2]) end
return {allowed, count, now_ms, oldest_ms}
"""


@dataclass(frozen=True)
class WindowState:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the oldest entry leaves the window, i.e. a slot frees


def seconds_until_slot_frees(window_ms: int, now_ms: int, oldest_ms: int) -> int:
    """Whole seconds (at least 1) until the oldest entry ages out; a full window if empty."""
    if oldest_ms < 0:
        return max(1, math.ceil(window_ms / 1000))
    return max(1, math.ceil((oldest_ms + window_ms - now_ms) / 1000))


def window_state(limit: int, window_ms: int, allowed: bool, count: int, now_ms: int, oldest_ms: int) -> WindowState:
    """Turn the script's raw answer into what the headers say."""
    return WindowState(
        allowed=allowed,
        limit=limit,
        remaining=max(0, limit - count),
        reset_s=seconds_until_slot_frees(window_ms, now_ms, oldest_ms),
    )


def _sf_string(value: str) -> str:
    """An RFC 8941 sf-string (the policy name in the RateLimit fields)."""
    printable = "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_header(tier: RateLimitTier) -> str:
    return f"{_sf_string(tier.name)};q={tier.requests};w={tier.window_s}"


def ratelimit_header(tier: RateLimitTier, state: WindowState) -> str:
    return f"{_sf_string(tier.name)};r={state.remaining};t={state.reset_s}"


def tier_for(config: Settings, name: str | None) -> RateLimitTier:
    tiers = config.rate_limit_tiers
    if name in tiers:
        return tiers[name]
    if config.default_tier in tiers:
        return tiers[config.default_tier]
    return next(iter(tiers.values()))


class SlidingWindowLimiter:
    def __init__(self, client: redis.Redis, key_prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.script = client.register_script(SLIDING_WINDOW_LUA)

    def hit(self, subject: str, tier: RateLimitTier) -> WindowState:
        """Count one request for ``subject`` if the window has room; raises ``redis.RedisError``."""
        window_ms = tier.window_s * 1000
        allowed, count, now_ms, oldest_ms = self.script(
            keys=[self.key_prefix + subject], args=[tier.requests, window_ms, uuid.uuid4().hex]
        )
        return window_state(tier.requests, window_ms, bool(int(allowed)), int(count), int(now_ms), int(oldest_ms))


class _LimiterState:
    def __init__(self) -> None:
        self.limiter: SlidingWindowLimiter | None = None
        self.client: redis.Redis | None = None
        self.skip_until = 0.0


def _state() -> _LimiterState:
    return current_app.extensions["samo_ratelimit"]


def _limiter() -> SlidingWindowLimiter:
    state = _state()
    client = redis_client()
    if state.limiter is None or state.client is not client:
        state.limiter, state.client = SlidingWindowLimiter(client), client
    return state.limiter


def _enforce_rate_limit() -> None:
    principal = g.get("principal")
    if principal is None:
        return
    state = _state()
    if time.monotonic() < state.skip_until:
        return
    tier = tier_for(app_settings(), principal.tier)
    try:
        window = _limiter().hit(str(principal.api_key_id), tier)
    except redis.RedisError as error:
        state.skip_until = time.monotonic() + REDIS_BACKOFF_S
        log.warning("rate limiting suspended for %.0fs: Redis unavailable (%s)", REDIS_BACKOFF_S,
                    type(error).__name__)
        return
    g.rate_limit = (tier, window)
    if not window.allowed:
        raise Problem(
            429, "rate-limit-exceeded", "Rate limit exceeded",
            f"This API key may make {tier.requests} requests per {tier.window_s} seconds.",
            headers={"Retry-After": str(window.reset_s)},
            limit=tier.requests, window_s=tier.window_s, tier=tier.name,
        )


def _add_headers(response: Response) -> Response:
    recorded = g.get("rate_limit")
    if recorded is not None:
        tier, window = recorded
        response.headers["RateLimit-Policy"] = policy_header(tier)
        response.headers["RateLimit"] = ratelimit_header(tier, window)
    return response


def count_jobs_in_flight(session: Session, tenant_id: uuid.UUID, up_to: int) -> int:
    """Interactive jobs only: batch items have their own limit, batches in flight (api/batches.py).

    Counts at most ``up_to`` rows, so a submission costs the same however far over its cap a
    tenant is.
    """
    unfinished = (
        select(Job.id)
        .where(Job.tenant_id == tenant_id, Job.status.in_(UNFINISHED_STATUSES), Job.batch_id.is_(None))
        .limit(up_to)
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(unfinished)) or 0


def _lock_tenant_admission(session: Session, tenant_id: uuid.UUID) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:cls, :obj)"),
                        {"cls": JOBS_IN_FLIGHT_LOCK_CLASS, "obj": zlib.crc32(tenant_id.bytes) - 2**31})


def enforce_jobs_in_flight(session: Session, principal, new_jobs: int = 1, config: Settings | None = None) -> int:
    """Refuse work beyond the tier's cap on unfinished jobs; returns the count in flight.

    On PostgreSQL this takes a per-tenant transaction lock so concurrent submissions cannot
    both pass the check: call it in the transaction that inserts the jobs, and commit soon.
    """
    tier = tier_for(config or app_settings(), principal.tier)
    _lock_tenant_admission(session, principal.tenant_id)
    in_flight = count_jobs_in_flight(session, principal.tenant_id, tier.max_jobs_in_flight + 1)
    if in_flight + new_jobs > tier.max_jobs_in_flight:
        raise Problem(
            429, "too-many-jobs-in-flight", "Too many jobs in flight",
            f"At most {tier.max_jobs_in_flight} jobs may be queued or running at once; "
            "wait for some to finish.",
            headers={"Retry-After": str(JOBS_IN_FLIGHT_RETRY_AFTER_S)},
            limit=tier.max_jobs_in_flight, in_flight=in_flight,
        )
    return in_flight


def init_app(app: Flask) -> None:
    app.extensions["samo_ratelimit"] = _LimiterState()
    app.before_request(_enforce_rate_limit)
    app.after_request(_add_headers)
