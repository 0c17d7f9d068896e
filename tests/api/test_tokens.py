"""POST /v1/auth/token: API-key and refresh-token grants, rotation and reuse detection."""
from __future__ import annotations

import dataclasses
import time
import uuid

import jwt
import pytest
from sqlalchemy import select

from api.auth.key_cache import revoke_key
from db.api_keys import ALL_SCOPES
from db.models import ApiKey, RefreshToken
from db.session import session_scope
from tests.support.problems import assert_problem
from tests.support.threads import run_on_threads

TOKEN_URL = "/v1/auth/token"


def grant_key(client, tenant, **fields):
    return client.post(TOKEN_URL, json={"grant_type": "api_key", "api_key": tenant.api_key, **fields})


def refresh(client, token, **fields):
    return client.post(TOKEN_URL, json={"grant_type": "refresh_token", "refresh_token": token, **fields})


def decode(settings, token):
    return jwt.decode(token, settings.jwt_secret, algorithms=["HS256"], audience="samo-brain-api")


def test_api_key_grant_issues_access_and_refresh_tokens(client, make_tenant, settings):
    tenant = make_tenant()
    response = grant_key(client, tenant)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.jwt_access_ttl_s
    assert body["refresh_expires_in"] == settings.jwt_refresh_ttl_s
    assert body["scope"] == " ".join(sorted(ALL_SCOPES))
    access, refresh_claims = decode(settings, body["access_token"]), decode(settings, body["refresh_token"])
    assert access["typ"] == "access" and refresh_claims["typ"] == "refresh"
    assert access["iss"] == "samo-brain" and access["aud"] == "samo-brain-api"
    assert access["sub"] == str(tenant.tenant_id)
    assert access["exp"] - access["iat"] == settings.jwt_access_ttl_s
    assert access["jti"] != refresh_claims["jti"]
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    with session_scope(settings.database_url) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == tenant.key_prefix))
        stored = session.get(RefreshToken, refresh_claims["jti"])
        assert access["kid"] == str(key_id)
        assert stored is not None and stored.api_key_id == key_id and stored.revoked_at is None


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_api_key_grant_takes_the_key_from_a_header(client, make_tenant, header):
    tenant = make_tenant()
    value = f"ApiKey {tenant.api_key}" if header == "Authorization" else tenant.api_key
    response = client.post(TOKEN_URL, json={"grant_type": "api_key"}, headers={header: value})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_form_encoded_requests_are_accepted(client, make_tenant):
    tenant = make_tenant()
    response = client.post(TOKEN_URL, data={"grant_type": "api_key", "api_key": tenant.api_key})
    assert response.status_code == 200


def test_wrong_revoked_and_missing_keys(client, make_tenant, settings):
    tenant = make_tenant()
    assert_problem(client.post(TOKEN_URL, json={"grant_type": "api_key", "api_key": tenant.api_key + "x"}),
                   401, "invalid-api-key")
    assert_problem(client.post(TOKEN_URL, json={"grant_type": "api_key"}), 401, "missing-credentials")
    assert revoke_key(settings, tenant.key_prefix) is not None
    assert_problem(grant_key(client, tenant), 401, "invalid-api-key")


@pytest.mark.parametrize(
    ("kwargs", "slug"),
    [
        ({"data": "not json", "content_type": "application/json"}, "invalid-request"),
        ({"json": ["grant_type", "api_key"]}, "invalid-request"),
        ({"json": {}}, "invalid-request"),
        ({"json": {"grant_type": 7}}, "invalid-request"),
        ({"json": {"grant_type": "password", "username": "a"}}, "unsupported-grant-type"),
        ({"json": {"grant_type": "refresh_token"}}, "invalid-request"),
        ({"json": {"grant_type": "api_key", "api_key": 12}}, "invalid-request"),
    ],
)
def test_bad_bodies_are_400_problems(client, kwargs, slug):
    assert_problem(client.post(TOKEN_URL, **kwargs), 400, slug)


def test_scope_can_narrow_but_not_widen(client, make_tenant, settings):
    tenant = make_tenant(scopes=["jobs:read", "jobs:write"])
    narrowed = grant_key(client, tenant, scope="jobs:read").get_json()
    assert narrowed["scope"] == "jobs:read"
    assert decode(settings, narrowed["access_token"])["scope"] == "jobs:read"
    assert grant_key(client, tenant, scope=["jobs:write"]).get_json()["scope"] == "jobs:write"
    body = assert_problem(grant_key(client, tenant, scope="jobs:read webhooks:manage"), 400, "invalid-scope")
    assert body["not_allowed"] == ["webhooks:manage"]
    assert_problem(grant_key(client, tenant, scope=""), 400, "invalid-scope")
    assert_problem(grant_key(client, tenant, scope=5), 400, "invalid-request")


def test_refresh_rotates_and_a_spent_refresh_token_is_refused(client, make_tenant, settings):
    first = grant_key(client, make_tenant()).get_json()
    second_response = refresh(client, first["refresh_token"])
    assert second_response.status_code == 200, second_response.get_data(as_text=True)
    second = second_response.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {second['access_token']}"}).status_code == 200
    with session_scope(settings.database_url) as session:
        spent = session.get(RefreshToken, decode(settings, first["refresh_token"])["jti"])
        assert spent.revoked_at is not None
    assert_problem(refresh(client, first["refresh_token"]), 401, "invalid-token")


def test_reuse_of_a_spent_refresh_token_revokes_the_live_one_too(client, make_tenant):
    first = grant_key(client, make_tenant()).get_json()
    second = refresh(client, first["refresh_token"]).get_json()
    assert_problem(refresh(client, first["refresh_token"]), 401, "invalid-token")
    assert_problem(refresh(client, second["refresh_token"]), 401, "invalid-token")


def test_refresh_may_narrow_scope_but_not_regain_it(client, make_tenant):
    tenant = make_tenant(scopes=["jobs:read", "jobs:write"])
    narrowed = grant_key(client, tenant, scope="jobs:read").get_json()
    assert_problem(refresh(client, narrowed["refresh_token"], scope="jobs:write"), 400, "invalid-scope")
    full = grant_key(client, tenant).get_json()
    assert refresh(client, full["refresh_token"], scope="jobs:write").get_json()["scope"] == "jobs:write"


def test_access_token_is_not_a_refresh_token(client, make_tenant):
    tokens = grant_key(client, make_tenant()).get_json()
    assert_problem(refresh(client, tokens["access_token"]), 401, "wrong-token-type")


def test_expired_refresh_token(client, make_tenant, settings):
    tenant = make_tenant()
    claims = decode(settings, grant_key(client, tenant).get_json()["refresh_token"])
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    stale = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    assert_problem(refresh(client, stale), 401, "token-expired")


def test_unrecorded_or_forged_refresh_tokens_are_refused(client, make_tenant, settings):
    claims = decode(settings, grant_key(client, make_tenant()).get_json()["refresh_token"])
    claims["jti"] = uuid.uuid4().hex
    assert_problem(refresh(client, jwt.encode(claims, settings.jwt_secret, algorithm="HS256")), 401, "invalid-token")
    assert_problem(refresh(client, jwt.encode(claims, "x" * 64, algorithm="HS256")), 401, "invalid-token")
    assert_problem(refresh(client, "garbage"), 401, "invalid-token")


def test_refresh_after_the_key_is_revoked_is_refused(client, make_tenant, settings):
    tenant = make_tenant()
    tokens = grant_key(client, tenant).get_json()
    assert revoke_key(settings, tenant.key_prefix) is not None
    assert_problem(refresh(client, tokens["refresh_token"]), 401, "invalid-token")


def test_tokens_disabled_without_a_secret(app, client, make_tenant, settings, monkeypatch):
    tenant = make_tenant()
    monkeypatch.setitem(app.config, "SAMO_SETTINGS", dataclasses.replace(settings, jwt_secret=""))
    assert_problem(grant_key(client, tenant), 503, "tokens-disabled")


def test_concurrent_refreshes_with_one_token_admit_one(app, make_tenant):
    import threading

    first = grant_key(app.test_client(), make_tenant()).get_json()
    barrier = threading.Barrier(2)
    statuses = []

    def attempt():
        client = app.test_client()
        barrier.wait()
        statuses.append(refresh(client, first["refresh_token"]).status_code)

    run_on_threads(attempt, 2)
    assert sorted(statuses) == [200, 401]
