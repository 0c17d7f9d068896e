"""Per-key request rate limits (a sliding-window log in Redis) and the per-tenant jobs-in-flight cap.

Rate limiting fails open: Redis holds no accepted work, so losing it must not stop the API.
After a Redis error the limiter stands aside for a few seconds instead of paying a connection
timeout on every request.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Flask, Response, current_app, g, has_app_context, has_request_context, request
from redis.exceptions import NoScriptError, ResponseError
from sqlalchemy.orm import Session

from api.auth.key_cache import EPOCH_KEY
from api.auth.principal import reauthenticate_if_keys_changed
from api.extensions import redis_client
from api.extensions import settings as app_settings
from api.fastpath.coalescing import Coalescer
from api.problems import Problem
from config.settings import RateLimitTier, Settings
from db.limits import TenantLock, count_jobs_in_flight, lock_tenant

log = logging.getLogger(__name__)

KEY_PREFIX = "samo:ratelimit:"
REDIS_BACKOFF_S = 5.0
MAX_HITS_PER_ROUND_TRIP = 128
JOBS_IN_FLIGHT_RETRY_AFTER_S = 5
#: How long an admission on the estimate counts as pending if its request never releases it
#: (its process died): longer than any request takes to commit its jobs.
PENDING_ADMISSION_MS = 60_000

# The in-flight estimate (InFlightEstimate): admitted on it while it stays under the cap,
# otherwise counted exactly. The new estimate, or -1 when there is none or it would pass the cap.
# An admission is also recorded until its jobs are committed: as a member of the pending set
# (``token:new_jobs``, scored by its time, forgotten after pending_ms if never released) and in
# the tenant's admission sequence, which an exact count reads before and after it counts.
ADMIT_ON_ESTIMATE_FUNCTION = """
local function admit_on_estimate(key, pending_key, sequence_key, new_jobs, cap, token, pending_ms)
  local estimate = redis.call('GET', key)
  if not estimate then return -1 end
  local after = tonumber(estimate) + tonumber(new_jobs)
  if after > tonumber(cap) then return -1 end
  redis.call('INCRBY', key, new_jobs)
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', pending_key, now_ms, token .. ':' .. new_jobs)
  redis.call('PEXPIRE', pending_key, pending_ms)
  redis.call('INCRBY', sequence_key, new_jobs)
  redis.call('PEXPIRE', sequence_key, 3600000)
  return after
end
"""
ADMIT_ON_ESTIMATE_LUA = (
    "if redis.replicate_commands then redis.replicate_commands() end\n" + ADMIT_ON_ESTIMATE_FUNCTION
    + "return admit_on_estimate(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])\n"
)

# Before an exact count: the jobs of admissions still pending (the set pruned of those older
# than ARGV[1] ms) and the admission sequence, {pending_jobs, sequence}.
PENDING_ADMISSIONS_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[1]))
local jobs = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  jobs = jobs + tonumber(string.match(member, ':(%d+)$'))
end
return {jobs, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""

# After an exact count, atomically: the jobs in flight are those counted (ARGV[1], committed
# ones plus the pending ones read before the count) plus every admission since, on the estimate
# or by another exact count (the sequence KEYS[3] has moved on from ARGV[2]); if ARGV[3] more fit
# under the cap ARGV[4], the estimate KEYS[1] becomes their sum for ARGV[5] ms and they are
# pending (in KEYS[2] as token ARGV[6], for at most ARGV[7] ms) and in the sequence like any
# other admission. Returns {in_flight, admitted (1/0)}.
DECIDE_EXACTLY_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local sequence = tonumber(redis.call('GET', KEYS[3]) or '0')
local since = sequence - tonumber(ARGV[2])
if since < 0 then since = sequence end
local in_flight = tonumber(ARGV[1]) + since
local after = in_flight + tonumber(ARGV[3])
if after > tonumber(ARGV[4]) then return {in_flight, 0} end
redis.call('SET', KEYS[1], after, 'PX', ARGV[5])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now_ms, ARGV[6] .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('INCRBY', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], 3600000)
return {in_flight, 1}
"""

# Server TIME keeps every API process on one clock; one member per admitted request.
# Returns {allowed, count, now_ms, oldest_ms (-1 if the window is empty), the value at KEYS[2]
# if given (the API key epoch, api/auth/key_cache.py: read here to save a round trip) or false,
# and, if KEYS[3] is given, a job submission's admission on the in-flight estimate at KEYS[3]
# (admit_on_estimate with its pending set KEYS[4], sequence KEYS[5], ARGV[4] new jobs, cap
# ARGV[5], token ARGV[6] and ARGV[7] ms; only when the request is allowed) or false}.
SLIDING_WINDOW_LUA = ADMIT_ON_ESTIMATE_FUNCTION + """
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
local also = false
if KEYS[2] then also = redis.call('GET', KEYS[2]) end
local admitted = false
if KEYS[3] and allowed == 1 then
  admitted = admit_on_estimate(KEYS[3], KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
end
return {allowed, count, now_ms, oldest_ms, also, admitted}
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


@dataclass(frozen=True)
class WindowHit:
    """One request's call of the sliding-window script (see :meth:`SlidingWindowLimiter.hit_and_read`)."""

    subject: str
    tier: RateLimitTier
    read_key: str | None = None
    admit: EstimateAdmission | None = None

    def keys_and_args(self, key_prefix: str) -> tuple[list, list]:
        if self.admit is not None and self.read_key is None:
            raise ValueError("admit needs read_key: the script takes the estimate's key as KEYS[3]")
        keys = ([key_prefix + self.subject] + ([self.read_key] if self.read_key else [])
                + (self.admit.keys() if self.admit else []))
        args = [self.tier.requests, self.tier.window_s * 1000, next(_members)]
        return keys, args + (self.admit.args() if self.admit else [])

    def answer(self, reply: list) -> tuple[WindowState, str | None, int | None]:
        allowed, count, now_ms, oldest_ms, value, admitted = reply
        state = window_state(self.tier.requests, self.tier.window_s * 1000, bool(int(allowed)), int(count),
                             int(now_ms), int(oldest_ms))
        return state, value, int(admitted) if admitted is not None and int(admitted) >= 0 else None


class _WindowMembers:
    """Distinct window entries without a random draw per request: a random prefix per process
    (drawn again in a forked child) and a counter."""

    def __init__(self) -> None:
        self._start()
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    def __next__(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


_members = _WindowMembers()


class SlidingWindowLimiter:
    def __init__(self, client: redis.Redis, key_prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.script = client.register_script(SLIDING_WINDOW_LUA)
        self._connection: redis.Connection | None = None

    def hit(self, subject: str, tier: RateLimitTier) -> WindowState:
        """Count one request for ``subject`` if the window has room; raises ``redis.RedisError``."""
        return self.hit_and_read(subject, tier)[0]

    def hit_and_read(self, subject: str, tier: RateLimitTier, read_key: str | None = None,
                     admit: EstimateAdmission | None = None) -> tuple[WindowState, str | None, int | None]:
        """:meth:`hit`, the value of ``read_key`` (None if unset) read in the same round trip, and,
        for ``admit`` (which needs ``read_key``), the in-flight estimate after admitting its jobs
        (None: count exactly; also None when the request was refused or nothing was asked)."""
        hit = WindowHit(subject, tier, read_key, admit)
        keys, args = hit.keys_and_args(self.key_prefix)
        return hit.answer(self.script(keys=keys, args=args))

    def hit_many(self, hits: list[WindowHit]) -> list[tuple[WindowState, str | None, int | None] | Exception]:
        """:meth:`hit_and_read` for each of ``hits``, in one pipelined round trip.

        A reply that is an error (a hit's own) is returned in its place; a connection error
        raises for all. The script is loaded (and the hits that missed it run again) when Redis
        does not know it: on first use, or after a restart or a ``SCRIPT FLUSH``.
        """
        calls = [hit.keys_and_args(self.key_prefix) for hit in hits]
        replies = self._evalsha_pipeline(calls)
        missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            self.client.script_load(SLIDING_WINDOW_LUA)
            for index, reply in zip(missing, self._evalsha_pipeline([calls[i] for i in missing])):
                replies[index] = reply
        return [reply if isinstance(reply, Exception) else hit.answer(reply) for hit, reply in zip(hits, replies)]

    def _evalsha_pipeline(self, calls: list[tuple[list, list]]) -> list:
        """The calls pipelined on the limiter's own connection; each error reply in its call's place.

        Only :meth:`hit_many` uses it, and only from one thread (``api.fastpath.coalescing``), so it needs
        neither a pool checkout per round trip (redis-py polls a checked-out connection for
        stray data, a system call each time) nor a lock.
        """
        commands = [("EVALSHA", self.script.sha, len(keys), *keys, *args) for keys, args in calls]
        connection = self._connection
        if connection is None:
            pool = self.client.connection_pool
            connection = self._connection = pool.connection_class(**pool.connection_kwargs)
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            replies = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ResponseError as error:
                    replies.append(error)
            return replies
        except BaseException:
            connection.disconnect()
            raise


@dataclass(frozen=True)
class EstimateAdmission:
    """Jobs a request asks to admit on the tenant's in-flight estimate (:class:`InFlightEstimate`),
    recorded as pending under ``token`` until :func:`release_admission`."""

    tenant_id: uuid.UUID
    new_jobs: int
    cap: int
    token: str = dataclasses.field(default_factory=lambda: next(_members))

    def keys(self) -> list[str]:
        return InFlightEstimate.keys(self.tenant_id)

    def args(self) -> list:
        return [self.new_jobs, self.cap, self.token, PENDING_ADMISSION_MS]

    def member(self) -> str:
        return f"{self.token}:{self.new_jobs}"


class _LimiterState:
    def __init__(self) -> None:
        self.hits: Coalescer[WindowHit, tuple] | None = None
        self.client: redis.Redis | None = None
        self.limiter: SlidingWindowLimiter | None = None
        self.skip_until = 0.0
        self.estimate: InFlightEstimate | None = None
        self.releases: Coalescer[list[EstimateAdmission], None] | None = None
        self.releases_estimate: InFlightEstimate | None = None


def _state() -> _LimiterState:
    return current_app.extensions["samo_ratelimit"]


def _limiter_hits() -> Coalescer[WindowHit, tuple]:
    """The process's rate-limit calls: concurrent requests share one pipelined round trip."""
    state = _state()
    client = redis_client()
    if state.hits is None or state.client is not client:
        state.client = client
        state.hits = Coalescer(SlidingWindowLimiter(client).hit_many, "samo-rate-limit", MAX_HITS_PER_ROUND_TRIP)
    return state.hits


def request_limiter(state) -> SlidingWindowLimiter:
    """``state.limiter``, made again when the app's Redis client changed: a limiter for request
    threads' own round trips (:meth:`SlidingWindowLimiter.hit_and_read` uses the client's pool),
    never the coalescer's, whose ``hit_many`` connection has one user."""
    client = redis_client()
    if state.limiter is None or state.limiter.client is not client:
        state.limiter = SlidingWindowLimiter(client)
    return state.limiter


def _window_hit(hit: WindowHit) -> tuple[WindowState, str | None, int | None]:
    """The request's call of the sliding-window script: through the process's coalescer on the
    fast path (``api.fastpath``), else in a round trip of the request's own."""
    if app_settings().group_commit:
        return _limiter_hits().submit(hit)
    return request_limiter(_state()).hit_and_read(hit.subject, hit.tier, hit.read_key, hit.admit)


def admits_jobs(view):
    """Mark a view that submits one job: its rate-limit round trip also admits the job on the
    tenant's in-flight estimate, and :func:`enforce_jobs_in_flight` uses that answer."""
    view.admits_jobs = 1
    return view


def _estimate_admission(principal, tier: RateLimitTier) -> EstimateAdmission | None:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    new_jobs = getattr(view, "admits_jobs", 0)
    if not new_jobs:
        return None
    return EstimateAdmission(principal.tenant_id, new_jobs, tier.max_jobs_in_flight)


def _enforce_rate_limit() -> None:
    principal = g.get("principal")
    if principal is None:
        return
    state = _state()
    if time.monotonic() < state.skip_until:
        return
    tier = tier_for(app_settings(), principal.tier)
    admission = _estimate_admission(principal, tier)
    try:
        window, key_epoch, admitted = _window_hit(WindowHit(str(principal.api_key_id), tier, EPOCH_KEY, admission))
    except redis.RedisError as error:
        _redis_failed(error)
        return
    reauthenticate_if_keys_changed(key_epoch)
    g.rate_limit = (tier, window)
    if not window.allowed:
        raise Problem(
            429, "rate-limit-exceeded", "Rate limit exceeded",
            f"This API key may make {tier.requests} requests per {tier.window_s} seconds.",
            headers={"Retry-After": str(window.reset_s)},
            limit=tier.requests, window_s=tier.window_s, tier=tier.name,
        )
    if admission is not None:
        g.jobs_admitted_on_estimate = (admission, admitted)


def _add_headers(response: Response) -> Response:
    recorded = g.get("rate_limit")
    if recorded is not None:
        tier, window = recorded
        response.headers["RateLimit-Policy"] = policy_header(tier)
        response.headers["RateLimit"] = ratelimit_header(tier, window)
    return response


class InFlightEstimate:
    """A per-tenant upper bound on interactive jobs in flight, kept in Redis for ``ttl_s``.

    Counting a tenant's unfinished jobs in the database on every submission, under a lock that
    serialises them, would cap one tenant's submissions at one database round trip each. So the
    exact (bounded) count, under the tenant's lock, is taken only when the estimate says the
    cap is near, or is missing (it expires ``ttl_s`` seconds after an exact count, so an
    estimate left high by jobs that finished meanwhile does not linger); in between, each
    admission adds to it. Finished jobs never lower it, so it errs high, and a refusal is
    always decided by the exact count. A submission admitted in its rate-limit round trip
    (:func:`admits_jobs`) counts even if its body then turns out invalid or replays an
    ``Idempotency-Key``: that, too, only raises the estimate.

    The exact count cannot see jobs admitted whose rows are not committed yet, in any API
    process. So every admission, on the estimate or by an exact count, stays in the tenant's
    pending set until its request has committed its jobs (or given up: :func:`release_admission`),
    and every one bumps the tenant's admission sequence. An exact count reads the pending jobs and
    the sequence first, counts the committed rows, then decides and sets the estimate in one
    script that adds the admissions made since (:data:`DECIDE_EXACTLY_LUA`): nothing admitted
    concurrently is dropped, with or without the database's lock. A job committed while it is
    counted may be counted twice, which only errs high.
    """

    def __init__(self, client: redis.Redis, ttl_s: float = 60.0) -> None:
        self.client = client
        self.ttl_ms = int(ttl_s * 1000)
        self.script = client.register_script(ADMIT_ON_ESTIMATE_LUA)
        self.pending_script = client.register_script(PENDING_ADMISSIONS_LUA)
        self.decide_script = client.register_script(DECIDE_EXACTLY_LUA)

    @staticmethod
    def key(tenant_id: uuid.UUID) -> str:
        return f"{KEY_PREFIX}inflight:{tenant_id}"

    @classmethod
    def keys(cls, tenant_id: uuid.UUID) -> list[str]:
        """The estimate, the pending admissions and the admission sequence."""
        key = cls.key(tenant_id)
        return [key, key + ":pending", key + ":sequence"]

    def admit(self, admission: EstimateAdmission) -> int | None:
        """The estimate after admitting the admission's jobs (now pending), or None: count exactly."""
        after = int(self.script(keys=admission.keys(), args=admission.args()))
        return after if after >= 0 else None

    def pending(self, tenant_id: uuid.UUID) -> PendingAdmissions:
        """What an exact count must add to the rows it counts; read before counting them."""
        _, pending_key, sequence_key = self.keys(tenant_id)
        jobs, sequence = self.pending_script(keys=[pending_key, sequence_key], args=[PENDING_ADMISSION_MS])
        return PendingAdmissions(int(jobs), int(sequence))

    def decide(self, admission: EstimateAdmission, counted: int, pending: PendingAdmissions) -> tuple[int, bool]:
        """Jobs in flight (``counted`` rows, the ``pending`` jobs and admissions since) and whether
        the admission's jobs fit under its cap; if they do, the estimate includes them and they
        are pending until :meth:`release`."""
        in_flight, admitted = self.decide_script(
            keys=admission.keys(),
            args=[counted + pending.jobs, pending.sequence, admission.new_jobs, admission.cap, self.ttl_ms,
                  admission.token, PENDING_ADMISSION_MS])
        return int(in_flight), bool(int(admitted))

    def release(self, admissions: list[EstimateAdmission]) -> None:
        """The admissions' jobs are committed (or never will be): no longer pending."""
        with self.client.pipeline(transaction=False) as pipeline:
            for admission in admissions:
                pipeline.zrem(admission.keys()[1], admission.member())
            pipeline.execute()


@dataclass(frozen=True)
class PendingAdmissions:
    #: Jobs admitted and not yet committed.
    jobs: int
    #: The tenant's admission sequence when they were read.
    sequence: int


def _estimate() -> InFlightEstimate | None:
    """The app's estimate, or None outside a request or while Redis is being skipped."""
    if not has_app_context() or "samo_ratelimit" not in current_app.extensions:
        return None
    state = _state()
    if time.monotonic() < state.skip_until:
        return None
    client = redis_client()
    if state.estimate is None or state.estimate.client is not client:
        state.estimate = InFlightEstimate(client)
    return state.estimate


def _redis_failed(error: redis.RedisError) -> None:
    _state().skip_until = time.monotonic() + REDIS_BACKOFF_S
    log.warning("rate limiting suspended for %.0fs: Redis unavailable (%s)", REDIS_BACKOFF_S, type(error).__name__)


@dataclass(frozen=True)
class Admission:
    #: Jobs in flight before these (estimated or counted).
    in_flight: int
    #: True when counted exactly under the tenant's admission lock: insert the jobs in the same
    #: transaction, so that concurrent submissions near the cap are decided one at a time.
    locked: bool


def enforce_jobs_in_flight(sessions: Callable[[], Session], principal, new_jobs: int = 1,
                           config: Settings | None = None) -> Admission:
    """Refuse work beyond the tier's cap on unfinished jobs.

    Far from the cap the Redis estimate admits (:class:`InFlightEstimate`), in the request's
    rate-limit round trip when its view is marked :func:`admits_jobs`. Near the cap, or without
    the estimate, the jobs are counted under a per-tenant transaction lock
    (``db.limits.lock_tenant``), which the caller holds until it commits the new jobs.
    ``sessions()`` gives that session; it is asked for only when the jobs are counted. Either
    admission is pending until the caller has committed the jobs and calls
    :func:`release_admission` (the request's teardown does, if it did not).
    """
    tier = tier_for(config or app_settings(), principal.tier)
    cap = tier.max_jobs_in_flight
    early = g.pop("jobs_admitted_on_estimate", None) if has_request_context() else None
    asked_early = early is not None and (early[0].tenant_id, early[0].new_jobs) == (principal.tenant_id, new_jobs)
    if early is not None and early[1] is not None:
        _hold_pending(early[0])
        if asked_early:
            # Admitted in the rate-limit round trip already (:func:`admits_jobs`).
            return Admission(early[1] - new_jobs, locked=False)
    estimate = _estimate()
    if not asked_early and estimate is not None:
        admission = EstimateAdmission(principal.tenant_id, new_jobs, cap)
        try:
            admitted = estimate.admit(admission)
        except redis.RedisError as error:
            _redis_failed(error)
            estimate, admitted = None, None
        if admitted is not None:
            _hold_pending(admission)
            return Admission(admitted - new_jobs, locked=False)
    session = sessions()
    lock_tenant(session, principal.tenant_id, TenantLock.JOBS_IN_FLIGHT)
    pending = _pending_admissions(estimate, principal.tenant_id)
    counted = count_jobs_in_flight(session, principal.tenant_id, cap + 1)
    in_flight, admitted = counted, counted + new_jobs <= cap
    if pending is not None:
        admission = EstimateAdmission(principal.tenant_id, new_jobs, cap)
        try:
            in_flight, admitted = estimate.decide(admission, counted, pending)
            if admitted:
                _hold_pending(admission)
        except redis.RedisError as error:
            _redis_failed(error)
    if not admitted:
        raise Problem(
            429, "too-many-jobs-in-flight", "Too many jobs in flight",
            f"At most {cap} jobs may be queued or running at once; wait for some to finish.",
            headers={"Retry-After": str(JOBS_IN_FLIGHT_RETRY_AFTER_S)},
            limit=cap, in_flight=in_flight,
        )
    return Admission(in_flight, locked=True)


def _pending_admissions(estimate: InFlightEstimate | None, tenant_id: uuid.UUID) -> PendingAdmissions | None:
    if estimate is None:
        return None
    try:
        return estimate.pending(tenant_id)
    except redis.RedisError as error:
        _redis_failed(error)
        return None


def _hold_pending(admission: EstimateAdmission) -> None:
    if has_request_context():
        g.setdefault("jobs_pending_admission", []).append(admission)


def release_admission() -> None:
    """The request's admitted jobs are committed, or will not be: they are in the next exact
    count's rows, if anywhere, and no longer pending."""
    admissions = g.pop("jobs_pending_admission", None) if has_request_context() else None
    if not admissions:
        return
    estimate = _estimate()
    if estimate is None:
        return
    try:
        if app_settings().group_commit:
            _releases(estimate).submit(admissions)
        else:
            estimate.release(admissions)
    except redis.RedisError as error:
        _redis_failed(error)


def _releases(estimate: InFlightEstimate) -> Coalescer[list[EstimateAdmission], None]:
    """The process's releases on the fast path: concurrent requests' in one pipelined round trip."""
    state = _state()
    if state.releases is None or state.releases_estimate is not estimate:
        def release_all(groups: list[list[EstimateAdmission]]) -> list[None]:
            estimate.release([admission for group in groups for admission in group])
            return [None] * len(groups)

        state.releases_estimate = estimate
        state.releases = Coalescer(release_all, "samo-admission-release", MAX_HITS_PER_ROUND_TRIP)
    return state.releases


def init_app(app: Flask) -> None:
    app.extensions["samo_ratelimit"] = _LimiterState()
    app.before_request(_enforce_rate_limit)
    app.after_request(_add_headers)
    app.teardown_request(lambda _error: release_admission())
