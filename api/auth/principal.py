"""Authentication of every ``/v1/`` request: API keys and JWT access tokens.

Default deny: any request under ``/v1/`` needs credentials unless its view is marked
``@public`` (only the token endpoint is). Keys and tokens are never logged.
"""
from __future__ import annotations

import functools
import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from flask import Flask, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.auth import jwt as jwt_tokens
from api.auth.key_cache import AuthCache
from api.auth.tickets import presented_ticket, redeem_ticket
from api.extensions import db_session, settings
from api.problems import Problem
from db import api_keys
from db.api_keys import hash_api_key
from db.models import utcnow

log = logging.getLogger(__name__)

PROTECTED_PREFIX = "/v1/"
REALM = "samo-brain"
# last_used_at is a coarse signal; writing it on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: frozenset[str]
    tier: str
    method: Literal["api_key", "jwt", "ticket"]

    @property
    def actor(self) -> dict[str, str]:
        """Who acted, as the audit trail records it."""
        return {"api_key_id": str(self.api_key_id), "via": self.method}


@dataclass(frozen=True)
class Credentials:
    """What the request presented: a scheme (``api_key`` or ``bearer``) and the secret."""

    scheme: Literal["api_key", "bearer"]
    secret: str


def www_authenticate(bearer_error: str | None = None, scope: str | None = None) -> str:
    bearer = f'Bearer realm="{REALM}"'
    if bearer_error:
        bearer += f', error="{bearer_error}"'
    if scope:
        bearer += f', scope="{scope}"'
    return f'ApiKey realm="{REALM}", {bearer}'


class CredentialsRejected(Problem):
    """A 401 for credentials that were presented and are not valid; ``api.auth.throttle`` counts
    these per client address."""


def unauthorized(slug: str, title: str, detail: str) -> CredentialsRejected:
    bearer_error = "invalid_token" if slug in {"invalid-token", "token-expired", "wrong-token-type"} else None
    return CredentialsRejected(401, slug, title, detail,
                               headers={"WWW-Authenticate": www_authenticate(bearer_error)})


def missing_credentials(detail: str = "Send an API key (Authorization: ApiKey <key> or X-API-Key) "
                        "or a bearer access token.") -> Problem:
    return Problem(401, "missing-credentials", "Missing credentials", detail,
                   headers={"WWW-Authenticate": www_authenticate()})


def invalid_api_key() -> CredentialsRejected:
    # Wrong, malformed and revoked keys all get this one answer.
    return unauthorized("invalid-api-key", "Invalid API key", "The API key is not valid.")


def token_problem(error: jwt_tokens.TokenError) -> CredentialsRejected:
    titles = {
        "invalid-token": "Invalid token",
        "token-expired": "Token expired",
        "wrong-token-type": "Wrong token type",
    }
    return unauthorized(error.slug, titles[error.slug], str(error))


def presented_credentials() -> Credentials | None:
    """Read the credentials from the headers; ``None`` when there are none at all.

    Both headers at once are ambiguous, even when one of them is empty: an empty ``X-API-Key``
    beside an ``Authorization`` is as likely a client's bug as its intent, so it is refused
    like any other pair rather than silently ignored.
    """
    if "Authorization" in request.headers and "X-API-Key" in request.headers:
        raise Problem(400, "ambiguous-credentials", "Ambiguous credentials",
                      "Send either an Authorization header or an X-API-Key header, not both.")
    authorization = request.headers.get("Authorization", "").strip()
    header_key = request.headers.get("X-API-Key", "").strip()
    if header_key:
        return Credentials("api_key", header_key)
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    scheme = scheme.lower()
    if scheme not in ("apikey", "bearer"):
        raise missing_credentials("Unsupported Authorization scheme; use ApiKey or Bearer.")
    if not secret:
        raise missing_credentials("The Authorization header carries no credentials.")
    return Credentials("api_key" if scheme == "apikey" else "bearer", secret)


@dataclass(frozen=True)
class KeyRecord:
    """What authentication needs of an API key and its tenant: read as plain columns, not as ORM objects."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    key_hash: str
    scopes: list[str] | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def _record_and_tier(row) -> tuple[KeyRecord, str] | None:
    return (KeyRecord(*row[:6]), row[6]) if row is not None else None


def lookup_api_key(session: Session, presented_key: str) -> tuple[KeyRecord, str] | None:
    """The active key record and its tenant's tier, or ``None`` for wrong or revoked keys."""
    digest = hash_api_key(presented_key)
    found = _record_and_tier(api_keys.key_with_tier_by_hash(session, digest))
    if found is None or not hmac.compare_digest(found[0].key_hash, digest) or not found[0].is_active:
        return None
    return found


def lookup_key_by_id(session: Session, api_key_id: uuid.UUID, tenant_id: uuid.UUID) -> tuple[KeyRecord, str] | None:
    found = _record_and_tier(api_keys.key_with_tier_by_id(session, api_key_id))
    if found is None or not found[0].is_active or found[0].tenant_id != tenant_id:
        return None
    return found


def touch_last_used(session: Session, record: KeyRecord) -> None:
    """Record use at most once per minute per key; the conditional UPDATE settles races."""
    now = utcnow()
    last_used = record.last_used_at
    if last_used is not None and now - last_used < LAST_USED_RESOLUTION:
        return
    try:
        api_keys.touch_last_used(session, record.id, now, unless_since=now - LAST_USED_RESOLUTION)
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.warning("could not record last use of API key %s", record.id, exc_info=True)


def auth_cache() -> AuthCache:
    return current_app.extensions["samo_auth_cache"]


def cached_lookup(subject: tuple[str, str], lookup: Callable[[], tuple[KeyRecord, str] | None]
                  ) -> tuple[KeyRecord, str] | None:
    """``lookup()`` (the database), or its answer from the process's cache (``api.auth.key_cache``)."""
    cache = auth_cache()
    entry = cache.get(subject)
    if entry is not None:
        g.auth_from_cache = True
        return entry.record, entry.tier
    epoch = cache.epoch
    found = lookup()
    if found is not None:
        cache.put(subject, found[0], found[1], epoch)
    return found


def authenticate_api_key(sessions: Callable[[], Session], key: str) -> Principal:
    """``sessions()`` gives the database session, asked for only when the key is not in the cache."""
    digest = hash_api_key(key)
    found = cached_lookup(("key", digest), lambda: _lookup_and_touch(sessions(), lookup_api_key, key))
    if found is None:
        raise invalid_api_key()
    record, tier = found
    return Principal(record.tenant_id, record.id, frozenset(record.scopes or ()), tier, "api_key")


def _lookup_and_touch(session: Session, lookup: Callable, *args) -> tuple[KeyRecord, str] | None:
    found = lookup(session, *args)
    if found is not None:
        touch_last_used(session, found[0])
    return found


def authenticate_bearer(sessions: Callable[[], Session], token: str) -> Principal:
    secret = settings().jwt_secret
    if not secret:
        raise unauthorized("invalid-token", "Invalid token", "Token authentication is disabled on this server.")
    try:
        claims = jwt_tokens.decode_token(secret, token, jwt_tokens.ACCESS)
    except jwt_tokens.TokenError as error:
        raise token_problem(error) from None
    # A revoked key takes its tokens with it: the key is looked up (or found in the cache) every time.
    found = cached_lookup(
        ("key-id", str(claims.api_key_id)),
        lambda: _lookup_and_touch(sessions(), lookup_key_by_id, claims.api_key_id, claims.tenant_id),
    )
    if found is None or found[0].tenant_id != claims.tenant_id:
        raise unauthorized("invalid-token", "Invalid token", "The token's API key is no longer valid.")
    record, tier = found
    scopes = claims.scopes & frozenset(record.scopes or ())
    return Principal(record.tenant_id, record.id, scopes, tier, "jwt")


def authenticate(credentials: Credentials) -> Principal:
    if credentials.scheme == "api_key":
        return authenticate_api_key(db_session, credentials.secret)
    return authenticate_bearer(db_session, credentials.secret)


def reauthenticate_if_keys_changed(epoch: str | None) -> None:
    """Called with the key epoch Redis holds (read by the rate-limit script): a change drops the
    process's cache, and a request authenticated from it is authenticated again from the database."""
    if not auth_cache().observe_epoch(epoch) or not g.pop("auth_from_cache", False):
        return
    credentials = g.get("auth_credentials")
    if credentials is not None:
        g.principal = authenticate(credentials)


def public(view: Callable) -> Callable:
    """Mark a view under ``/v1/`` as reachable without credentials."""
    view.samo_public = True  # type: ignore[attr-defined]
    return view


def _is_public_endpoint() -> bool:
    if request.endpoint is None:
        return False
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "samo_public", False))


#: Query parameters that would put a long-lived credential in a URL (logs, history, Referer): refused.
URL_CREDENTIAL_PARAMETERS = ("access_token", "api_key", "apikey", "refresh_token")


def _refuse_credentials_in_url() -> None:
    named = [name for name in URL_CREDENTIAL_PARAMETERS if name in request.args]
    if named:
        raise Problem(400, "credentials-in-url", "Credentials in the URL",
                      f"Credentials are never accepted in the URL ({named[0]}); send them in a header, or use "
                      "a stream ticket (POST /v1/events/tickets) for event streams.")


def _authenticate_with_ticket(ticket: str) -> None:
    if "Authorization" in request.headers or "X-API-Key" in request.headers:
        raise Problem(400, "ambiguous-credentials", "Ambiguous credentials",
                      "Send either a stream ticket or credentials in a header, not both.")
    grant = redeem_ticket(ticket, request.path)
    g.principal = Principal(grant.tenant_id, grant.api_key_id, frozenset({grant.scope}), grant.tier, "ticket")


def _authenticate_request() -> None:
    if not request.path.startswith(PROTECTED_PREFIX):
        return
    _refuse_credentials_in_url()
    if _is_public_endpoint():
        return
    ticket = presented_ticket()
    if ticket is not None:
        _authenticate_with_ticket(ticket)
        return
    credentials = presented_credentials()
    if credentials is None:
        raise missing_credentials()
    g.auth_credentials = credentials
    g.principal = authenticate(credentials)


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise missing_credentials()
    return principal


def check_scope(scope: str) -> Principal:
    """The caller, if its credentials carry ``scope``; else a 403."""
    principal = current_principal()
    if scope not in principal.scopes:
        headers = {}
        if principal.method == "jwt":
            headers["WWW-Authenticate"] = www_authenticate("insufficient_scope", scope)
        raise Problem(403, "insufficient-scope", "Insufficient scope",
                      f"This operation requires the {scope!r} scope.", headers=headers,
                      required_scope=scope)
    return principal


def require_scope(scope: str) -> Callable[[Callable], Callable]:
    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check_scope(scope)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def init_app(app: Flask) -> None:
    app.extensions["samo_auth_cache"] = AuthCache(app.config["SAMO_SETTINGS"].auth_cache_ttl_s)
    app.before_request(_authenticate_request)
