"""Throttles on credentials, so that a leaked or guessed one cannot be hammered.

``POST /v1/auth/token`` is limited per client address, before its body is read, and per API
key, before a refresh-token row is written for it. Failed authentications (a wrong, revoked or
malformed API key on any endpoint, an invalid bearer or refresh token: every
``CredentialsRejected``) are counted per client address; the one past the limit answers 429
instead of 401, and from then on the process refuses that address's ``/v1/`` requests before
checking any credential, until the oldest failure leaves the window.

That refusal is remembered by each API process for itself: checking Redis before every request
would add a round trip to every authenticated request, which the fast path exists to avoid. So
another process checks at most one more credential of a throttled address before its own first
failure from it (answered 429) tells it too. The windows are the sliding-window logs of
``api.auth.ratelimit`` in Redis, and like the rate limits they fail open when Redis is away.
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid

import redis
from flask import Flask, Response, current_app, request

from api.auth.principal import PROTECTED_PREFIX, CredentialsRejected
from api.auth.ratelimit import REDIS_BACKOFF_S, SlidingWindowLimiter, WindowState, request_limiter
from api.extensions import settings as app_settings
from api.problems import Problem, problem_response
from config.settings import RateLimitTier

log = logging.getLogger(__name__)

#: Addresses a process remembers as throttled; past this, the ones whose refusal ended go first.
MAX_REMEMBERED_ADDRESSES = 10_000


class _ThrottleState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refused_until: dict[str, float] = {}
        self.limiter: SlidingWindowLimiter | None = None
        self.skip_until = 0.0

    def remember(self, address: str, seconds: int) -> None:
        with self.lock:
            if len(self.refused_until) >= MAX_REMEMBERED_ADDRESSES:
                now = time.monotonic()
                self.refused_until = {a: t for a, t in self.refused_until.items() if t > now}
                while len(self.refused_until) >= MAX_REMEMBERED_ADDRESSES:
                    self.refused_until.pop(next(iter(self.refused_until)))
            self.refused_until[address] = time.monotonic() + seconds

    def seconds_refused(self, address: str) -> int:
        until = self.refused_until.get(address)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            self.refused_until.pop(address, None)
            return 0
        return max(1, math.ceil(left))


def _state() -> _ThrottleState:
    return current_app.extensions["samo_auth_throttle"]


def client_address() -> str:
    """The caller's address (``SAMO_PROXY_HOPS`` says how many proxies' X-Forwarded-For to trust)."""
    return request.remote_addr or "unknown"


def _hit(name: str, whose: str, requests: int, window_s: int) -> WindowState | None:
    """One hit on the ``name`` window of ``whose``; ``None`` when the limit is off or Redis is unavailable."""
    if requests <= 0:
        return None
    state = _state()
    if time.monotonic() < state.skip_until:
        return None
    try:
        return request_limiter(state).hit(f"{name}:{whose}", RateLimitTier(name, requests, window_s, 0))
    except redis.RedisError as error:
        state.skip_until = time.monotonic() + REDIS_BACKOFF_S
        log.warning("credential throttles suspended for %.0fs: Redis unavailable (%s)", REDIS_BACKOFF_S,
                    type(error).__name__)
        return None


def too_many_failures(retry_after_s: int) -> Problem:
    config = app_settings()
    return Problem(
        429, "too-many-failed-authentications", "Too many failed authentications",
        f"This client address may fail authentication {config.failed_auth_limit} times per "
        f"{config.failed_auth_window_s} seconds; wait before trying again.",
        headers={"Retry-After": str(retry_after_s)},
        limit=config.failed_auth_limit, window_s=config.failed_auth_window_s,
    )


def _token_limit_exceeded(whom: str, requests: int, window: WindowState) -> Problem:
    window_s = app_settings().token_window_s
    return Problem(
        429, "rate-limit-exceeded", "Rate limit exceeded",
        f"{whom} may request {requests} tokens per {window_s} seconds.",
        headers={"Retry-After": str(window.reset_s)}, limit=requests, window_s=window_s,
    )


def limit_token_requests_by_address() -> None:
    """Count a token request of the caller's address; 429 past ``SAMO_TOKEN_REQUESTS_PER_ADDRESS``."""
    config = app_settings()
    window = _hit("token-address", client_address(), config.token_requests_per_address, config.token_window_s)
    if window is not None and not window.allowed:
        raise _token_limit_exceeded("This client address", config.token_requests_per_address, window)


def limit_tokens_for_key(api_key_id: uuid.UUID) -> None:
    """Count a token issued for the key; 429 past ``SAMO_TOKEN_REQUESTS_PER_KEY``."""
    config = app_settings()
    window = _hit("token-key", str(api_key_id), config.token_requests_per_key, config.token_window_s)
    if window is not None and not window.allowed:
        raise _token_limit_exceeded("This API key", config.token_requests_per_key, window)


def _refuse_throttled_address() -> None:
    if not request.path.startswith(PROTECTED_PREFIX):
        return
    seconds = _state().seconds_refused(client_address())
    if seconds:
        raise too_many_failures(seconds)


def _count_rejection(rejected: CredentialsRejected) -> Response:
    """The 401, or 429 when it is one failure too many for the address."""
    config = app_settings()
    address = client_address()
    window = _hit("failed-auth", address, config.failed_auth_limit, config.failed_auth_window_s)
    if window is None or window.allowed:
        return problem_response(rejected)
    _state().remember(address, window.reset_s)
    log.warning("failed authentications from %s throttled for %ds", address, window.reset_s)
    return problem_response(too_many_failures(window.reset_s))


def init_app(app: Flask) -> None:
    """Before ``api.auth.principal.init_app``: a throttled address is refused before its credentials are read."""
    app.extensions["samo_auth_throttle"] = _ThrottleState()
    app.before_request(_refuse_throttled_address)
    app.register_error_handler(CredentialsRejected, _count_rejection)
