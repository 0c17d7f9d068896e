"""Access and refresh JWTs: encoding and strict decoding, with no Flask or database in sight.

HS256 is pinned on decode so a token can never choose its own verification algorithm
(``alg: none``, or an asymmetric algorithm keyed with our shared secret).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

ISSUER = "samo-brain"
AUDIENCE = "samo-brain-api"
ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
TOKEN_TYPES = (ACCESS, REFRESH)
LEEWAY_S = 5
REQUIRED_CLAIMS = ("exp", "iat", "sub", "typ", "iss", "aud", "jti", "kid")


class TokenError(Exception):
    """Base of every decode failure; ``slug`` is the problem type the API answers with."""

    slug = "invalid-token"


class InvalidToken(TokenError):
    slug = "invalid-token"


class TokenExpired(TokenError):
    slug = "token-expired"


class WrongTokenType(TokenError):
    slug = "wrong-token-type"


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: frozenset[str]
    typ: str
    jti: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class EncodedToken:
    token: str
    jti: str
    expires_at: int
    ttl_s: int


def format_scopes(scopes) -> str:
    return " ".join(sorted(set(scopes)))


def parse_scopes(scope: str) -> frozenset[str]:
    return frozenset(part for part in scope.split(" ") if part)


def encode_token(
    secret: str,
    *,
    tenant_id: uuid.UUID,
    api_key_id: uuid.UUID,
    scopes,
    typ: str,
    ttl_s: int,
    now: int | None = None,
) -> EncodedToken:
    if not secret:
        raise ValueError("a JWT secret is required")
    if typ not in TOKEN_TYPES:
        raise ValueError(f"unknown token type {typ!r}")
    issued_at = int(time.time()) if now is None else int(now)
    jti = uuid.uuid4().hex
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(tenant_id),
        "kid": str(api_key_id),
        "scope": format_scopes(scopes),
        "typ": typ,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "jti": jti,
    }
    token = jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})
    return EncodedToken(token=token, jti=jti, expires_at=issued_at + ttl_s, ttl_s=ttl_s)


def decode_token(secret: str, token: str, expected_typ: str, leeway_s: int = LEEWAY_S) -> TokenClaims:
    """Verify signature, issuer, audience, times and type; raise a ``TokenError`` on any doubt.

    The type is checked only after the signature, so ``WrongTokenType`` never answers for a
    forged token.
    """
    if not secret:
        raise InvalidToken("token authentication is disabled")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=leeway_s,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenExpired("the token has expired") from error
    except jwt.PyJWTError as error:
        raise InvalidToken("the token is not valid") from error
    if claims["typ"] not in TOKEN_TYPES:
        raise InvalidToken("the token has an unknown type")
    if claims["typ"] != expected_typ:
        raise WrongTokenType(f"a {claims['typ']} token was presented where a {expected_typ} token is required")
    try:
        tenant_id = uuid.UUID(str(claims["sub"]))
        api_key_id = uuid.UUID(str(claims["kid"]))
    except ValueError as error:
        raise InvalidToken("the token's subject is malformed") from error
    scope = claims.get("scope", "")
    if not isinstance(scope, str) or not isinstance(claims["jti"], str):
        raise InvalidToken("the token's claims are malformed")
    return TokenClaims(
        tenant_id=tenant_id,
        api_key_id=api_key_id,
        scopes=parse_scopes(scope),
        typ=claims["typ"],
        jti=claims["jti"],
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
    )
