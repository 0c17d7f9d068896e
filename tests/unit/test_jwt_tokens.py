"""Token encoding and strict decoding, without Flask or a database."""
from __future__ import annotations

import time
import uuid

import jwt
import pytest

from api.auth import jwt as jwt_tokens
from api.auth.jwt import ACCESS, REFRESH, InvalidToken, TokenExpired, WrongTokenType, decode_token, encode_token

SECRET = "unit-test-secret-" + "x" * 64
TENANT = uuid.uuid4()
KEY = uuid.uuid4()


def issue(typ=ACCESS, ttl_s=60, now=None, scopes=("jobs:read", "jobs:write")):
    return encode_token(SECRET, tenant_id=TENANT, api_key_id=KEY, scopes=scopes, typ=typ, ttl_s=ttl_s, now=now)


def claims(**overrides):
    now = int(time.time())
    base = {"iss": "samo-brain", "aud": "samo-brain-api", "sub": str(TENANT), "kid": str(KEY),
            "scope": "jobs:read", "typ": ACCESS, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip_carries_identity_scopes_and_times():
    issued = issue(scopes=("jobs:write", "jobs:read", "jobs:read"), now=int(time.time()))
    decoded = decode_token(SECRET, issued.token, ACCESS)
    assert decoded.tenant_id == TENANT
    assert decoded.api_key_id == KEY
    assert decoded.scopes == {"jobs:read", "jobs:write"}
    assert decoded.jti == issued.jti
    assert decoded.expires_at - decoded.issued_at == 60
    raw = jwt.decode(issued.token, SECRET, algorithms=["HS256"], audience="samo-brain-api")
    assert raw["scope"] == "jobs:read jobs:write"
    assert raw["iss"] == "samo-brain" and raw["typ"] == ACCESS
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


def test_each_token_has_its_own_jti():
    assert issue().jti != issue().jti


def test_expired_token_is_reported_as_expired():
    stale = issue(ttl_s=60, now=int(time.time()) - 3600)
    with pytest.raises(TokenExpired):
        decode_token(SECRET, stale.token, ACCESS)


def test_small_leeway_accepts_a_token_a_moment_past_expiry():
    just_expired = issue(ttl_s=60, now=int(time.time()) - 62)
    assert decode_token(SECRET, just_expired.token, ACCESS).api_key_id == KEY


@pytest.mark.parametrize(("presented", "expected"), [(REFRESH, ACCESS), (ACCESS, REFRESH)])
def test_token_types_are_not_interchangeable(presented, expected):
    with pytest.raises(WrongTokenType):
        decode_token(SECRET, issue(typ=presented).token, expected)


def test_wrong_secret_is_invalid_not_expired_or_mistyped():
    stale_refresh = issue(typ=REFRESH, now=int(time.time()) - 3600)
    with pytest.raises(InvalidToken):
        decode_token("another-secret-" + "y" * 32, stale_refresh.token, ACCESS)


def test_alg_none_is_refused():
    unsigned = jwt.encode(claims(), key=None, algorithm="none")
    with pytest.raises(InvalidToken):
        decode_token(SECRET, unsigned, ACCESS)


def test_other_hmac_algorithm_with_the_right_secret_is_refused():
    hs512 = jwt.encode(claims(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken):
        decode_token(SECRET, hs512, ACCESS)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "typ", "jti", "kid"])
def test_required_claims(missing):
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        decode_token(SECRET, token, ACCESS)


@pytest.mark.parametrize(
    "override",
    [{"iss": "someone-else"}, {"aud": "another-api"}, {"typ": "id"}, {"sub": "not-a-uuid"}, {"scope": ["jobs:read"]},
     {"iat": int(time.time()) + 3600}],
)
def test_foreign_or_malformed_claims_are_invalid(override):
    token = jwt.encode(claims(**override), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        decode_token(SECRET, token, ACCESS)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage_is_invalid(garbage):
    with pytest.raises(InvalidToken):
        decode_token(SECRET, garbage, ACCESS)


def test_no_secret_means_no_tokens():
    with pytest.raises(ValueError):
        encode_token("", tenant_id=TENANT, api_key_id=KEY, scopes=(), typ=ACCESS, ttl_s=60)
    with pytest.raises(InvalidToken):
        decode_token("", issue().token, ACCESS)


def test_scope_helpers():
    assert jwt_tokens.parse_scopes(" jobs:read  jobs:write ") == {"jobs:read", "jobs:write"}
    assert jwt_tokens.format_scopes(["b", "a", "b"]) == "a b"
    assert jwt_tokens.parse_scopes("") == frozenset()
