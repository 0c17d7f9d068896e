"""``POST /v1/auth/token``: trade an API key or a refresh token for short-lived JWTs.

Refresh tokens rotate: each one is single-use and recorded in ``refresh_tokens``. Presenting a
spent one means it leaked (or a client retried), so every live refresh token of that key is
revoked too; the holder of the key can always start over with the ``api_key`` grant.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy.orm import Session

from api.auth import jwt as jwt_tokens
from api.auth.principal import (
    KeyRecord,
    invalid_api_key,
    lookup_api_key,
    lookup_key_by_id,
    missing_credentials,
    presented_credentials,
    public,
    token_problem,
    touch_last_used,
    unauthorized,
)
from api.auth.throttle import limit_token_requests_by_address, limit_tokens_for_key
from api.extensions import db_session, settings
from api.intake.requests import check_form, optional_json_body
from api.problems import Problem
from db import refresh_tokens
from db.models import RefreshToken, utcnow

log = logging.getLogger(__name__)

bp = Blueprint("tokens", __name__)

GRANT_TYPES = ("api_key", "refresh_token")


def _bad_request(detail: str) -> Problem:
    return Problem(400, "invalid-request", "Invalid token request", detail)


def _request_fields() -> dict[str, Any]:
    if request.mimetype == "application/x-www-form-urlencoded":
        check_form(request.form, request.files)
        return request.form.to_dict()
    body = optional_json_body()
    if not isinstance(body, dict):
        raise _bad_request("The body must be a JSON object with a grant_type.")
    return body


def _string_field(fields: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = fields.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad_request(f"{name!r} must be a non-empty string.")
    return value.strip()


def requested_scopes(fields: dict[str, Any], allowed: frozenset[str]) -> frozenset[str]:
    """The ``scope`` field narrows what the grant allows; asking for more is an error."""
    scope = fields.get("scope")
    if scope is None:
        return allowed
    if isinstance(scope, list) and all(isinstance(item, str) for item in scope):
        wanted = frozenset(item.strip() for item in scope if item.strip())
    elif isinstance(scope, str):
        wanted = jwt_tokens.parse_scopes(scope)
    else:
        raise _bad_request("'scope' must be a space-separated string or a list of strings.")
    if not wanted:
        raise Problem(400, "invalid-scope", "Invalid scope", "The requested scope is empty.")
    beyond = wanted - allowed
    if beyond:
        raise Problem(400, "invalid-scope", "Invalid scope",
                      "The requested scope exceeds what this grant allows.",
                      not_allowed=sorted(beyond), allowed=sorted(allowed))
    return wanted


def _issue(session: Session, record: KeyRecord, scopes: frozenset[str]) -> dict[str, Any]:
    config = settings()
    now = int(utcnow().timestamp())
    common = dict(tenant_id=record.tenant_id, api_key_id=record.id, scopes=scopes, now=now)
    access = jwt_tokens.encode_token(config.jwt_secret, typ=jwt_tokens.ACCESS,
                                     ttl_s=config.jwt_access_ttl_s, **common)
    refresh = jwt_tokens.encode_token(config.jwt_secret, typ=jwt_tokens.REFRESH,
                                      ttl_s=config.jwt_refresh_ttl_s, **common)
    expired_before = datetime.fromtimestamp(now, UTC)
    # Expired rows can never be presented again (their JWT exp has passed): prune them here.
    refresh_tokens.prune_expired(session, record.id, expired_before)
    session.add(RefreshToken(jti=refresh.jti, api_key_id=record.id,
                             expires_at=datetime.fromtimestamp(refresh.expires_at, UTC)))
    session.commit()
    return {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.ttl_s,
        "refresh_token": refresh.token,
        "refresh_expires_in": refresh.ttl_s,
        "scope": jwt_tokens.format_scopes(scopes),
    }


def _api_key_grant(session: Session, fields: dict[str, Any]) -> dict[str, Any]:
    key = _string_field(fields, "api_key", required=False)
    if key is None:
        credentials = presented_credentials()
        if credentials is None:
            raise missing_credentials("Send the API key in the body ('api_key') or in a header.")
        if credentials.scheme != "api_key":
            raise _bad_request("The api_key grant takes an API key, not a bearer token.")
        key = credentials.secret
    found = lookup_api_key(session, key)
    if found is None:
        raise invalid_api_key()
    record, _tier = found
    limit_tokens_for_key(record.id)
    scopes = requested_scopes(fields, frozenset(record.scopes or ()))
    issued = _issue(session, record, scopes)
    touch_last_used(session, record)
    return issued


def _refresh_grant(session: Session, fields: dict[str, Any]) -> dict[str, Any]:
    token = _string_field(fields, "refresh_token")
    try:
        claims = jwt_tokens.decode_token(settings().jwt_secret, token, jwt_tokens.REFRESH)
    except jwt_tokens.TokenError as error:
        raise token_problem(error) from None
    limit_tokens_for_key(claims.api_key_id)
    stored = refresh_tokens.locked_refresh_token(session, claims.jti)
    if stored is None or stored.api_key_id != claims.api_key_id:
        raise unauthorized("invalid-token", "Invalid token", "The refresh token is not recognised.")
    if stored.revoked_at is not None:
        refresh_tokens.revoke_live_tokens(session, stored.api_key_id, utcnow())
        session.commit()
        log.warning("spent refresh token presented again for API key %s; revoked its refresh tokens",
                    stored.api_key_id)
        raise unauthorized("invalid-token", "Invalid token", "The refresh token has already been used.")
    found = lookup_key_by_id(session, claims.api_key_id, claims.tenant_id)
    if found is None:
        raise unauthorized("invalid-token", "Invalid token", "The token's API key is no longer valid.")
    record, _tier = found
    scopes = requested_scopes(fields, claims.scopes & frozenset(record.scopes or ()))
    stored.revoked_at = utcnow()
    issued = _issue(session, record, scopes)  # commits the revocation with the new token
    touch_last_used(session, record)
    return issued


@bp.post("/v1/auth/token")
@public
def issue_token():
    if not settings().jwt_secret:
        raise Problem(503, "tokens-disabled", "Tokens disabled",
                      "This server issues no tokens (no JWT secret is configured); use an API key.")
    limit_token_requests_by_address()
    fields = _request_fields()
    grant_type = _string_field(fields, "grant_type")
    if grant_type not in GRANT_TYPES:
        raise Problem(400, "unsupported-grant-type", "Unsupported grant type",
                      f"grant_type must be one of: {', '.join(GRANT_TYPES)}.")
    session = db_session()
    grant = _api_key_grant if grant_type == "api_key" else _refresh_grant
    response = jsonify(grant(session, fields))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
