"""Exceptions: an API's problem+json answer (RFC 9457) raised as :class:`ProblemError` or a subclass."""
from __future__ import annotations

from datetime import UTC
from typing import Any

import httpx


class SamoError(Exception):
    """Base of every exception this package raises."""


class APIConnectionError(SamoError):
    """The API could not be reached (or the connection broke) and retries, where allowed, ran out."""


class WaitTimeout(SamoError):
    """A job or batch was not finished when the wait's time ran out; ``last`` is what was seen last."""

    def __init__(self, message: str, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


class ProblemError(SamoError):
    """The API answered 4xx or 5xx. ``type`` is the problem's URI, ``slug`` its last path segment
    (what to branch on), ``errors`` the per-field list of a validation problem, ``extensions``
    every other member of the document."""

    def __init__(self, status: int, body: dict[str, Any], headers: httpx.Headers | None = None) -> None:
        self.status = status
        self.body = body
        self.type: str = str(body.get("type") or "about:blank")
        self.title: str = str(body.get("title") or f"HTTP {status}")
        self.detail: str | None = body.get("detail")
        self.instance: str | None = body.get("instance")
        self.errors: list[dict[str, Any]] = list(body.get("errors") or [])
        self.extensions = {k: v for k, v in body.items()
                           if k not in ("type", "title", "status", "detail", "instance", "errors")}
        self.headers = headers or httpx.Headers()
        super().__init__(f"{status} {self.title}" + (f": {self.detail}" if self.detail else ""))

    @property
    def slug(self) -> str:
        return self.type.rstrip("/").rsplit("/", 1)[-1]

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("Retry-After"))


class BadRequestError(ProblemError):
    """400."""


class AuthenticationError(ProblemError):
    """401: missing, invalid, expired or revoked credentials."""


class PermissionDeniedError(ProblemError):
    """403: the key's scopes do not allow the operation."""


class NotFoundError(ProblemError):
    """404: no such resource among the caller's."""


class ConflictError(ProblemError):
    """409: conflicts with the resource's state, or an Idempotency-Key reused for another request."""


class UnprocessableError(ProblemError):
    """422: well-formed but invalid input; ``errors`` says which fields."""


class RateLimitError(ProblemError):
    """429: a rate limit or cap on jobs in flight; ``retry_after`` says when to try again."""


class ServiceUnavailableError(ProblemError):
    """503: a dependency of the API is down; ``retry_after`` says when to try again."""


ERRORS_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 422: UnprocessableError, 429: RateLimitError, 503: ServiceUnavailableError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` of delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def problem_from_response(response: httpx.Response) -> ProblemError:
    """The exception for an error response, whether or not its body is a problem document."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"title": response.reason_phrase or f"HTTP {response.status_code}", "status": response.status_code}
    error_class = ERRORS_BY_STATUS.get(response.status_code, ProblemError)
    return error_class(response.status_code, body, response.headers)
