"""Authentication and scopes on /v1/, through the Flask client against the session's database and real Redis."""
from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import update

from api.auth.key_cache import announce_key_change, revoke_key
from db.api_keys import create_api_key, find_tenant, revoke_api_key
from db.models import ApiKey, utcnow
from db.session import session_scope
from tests.support.problems import assert_problem

JOB = {"type": "emotion", "input": {"text": "What a lovely day."}}


def assert_unauthorized(response, slug):
    body = assert_problem(response, 401, slug)
    challenge = response.headers["WWW-Authenticate"]
    assert "ApiKey" in challenge and "Bearer" in challenge
    return body


def issue_tokens(client, tenant, **fields):
    response = client.post("/v1/auth/token", json={"grant_type": "api_key", "api_key": tenant.api_key, **fields})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def key_claims(settings, tenant, **overrides):
    with session_scope(settings.database_url) as session:
        key_id = session.query(ApiKey.id).filter(ApiKey.prefix == tenant.key_prefix).scalar()
    now = int(time.time())
    claims = {"iss": "samo-brain", "aud": "samo-brain-api", "sub": str(tenant.tenant_id), "kid": str(key_id),
              "scope": "jobs:read jobs:write", "typ": "access", "iat": now, "exp": now + 300,
              "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return claims


# --- API keys --------------------------------------------------------------------------------

def test_no_credentials_is_401_missing_credentials(client):
    assert_unauthorized(client.get("/v1/jobs"), "missing-credentials")
    assert_unauthorized(client.post("/v1/jobs", json=JOB), "missing-credentials")


def test_unknown_paths_under_v1_are_denied_by_default(client):
    assert_unauthorized(client.get("/v1/no-such-thing"), "missing-credentials")


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "ApiKey", "Bearer   ", "samo_abc"])
def test_unusable_authorization_headers_count_as_missing(client, authorization):
    assert_unauthorized(client.get("/v1/jobs", headers={"Authorization": authorization}), "missing-credentials")


def test_api_key_in_authorization_header(client, make_tenant):
    tenant = make_tenant()
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    assert client.get("/v1/jobs", headers={"Authorization": f"apikey {tenant.api_key}"}).status_code == 200


def test_api_key_in_x_api_key_header(client, make_tenant):
    tenant = make_tenant()
    assert client.get("/v1/jobs", headers={"X-API-Key": tenant.api_key}).status_code == 200
    assert client.post("/v1/jobs", json=JOB, headers={"X-API-Key": tenant.api_key}).status_code == 202


def test_both_headers_at_once_is_ambiguous(client, make_tenant):
    tenant = make_tenant()
    response = client.get("/v1/jobs", headers={**tenant.headers, "X-API-Key": tenant.api_key})
    assert_problem(response, 400, "ambiguous-credentials")


def test_wrong_key_is_401_invalid_api_key(client, make_tenant):
    tenant = make_tenant()
    forged = tenant.api_key[:-4] + ("AAAA" if not tenant.api_key.endswith("AAAA") else "BBBB")
    assert_unauthorized(client.get("/v1/jobs", headers={"X-API-Key": forged}), "invalid-api-key")
    assert_unauthorized(client.get("/v1/jobs", headers={"X-API-Key": "not-even-a-key"}), "invalid-api-key")


def test_revoked_key_answers_exactly_like_a_wrong_one(client, make_tenant, settings):
    tenant = make_tenant()
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    assert revoke_key(settings, tenant.key_prefix) is not None
    revoked = assert_unauthorized(client.get("/v1/jobs", headers=tenant.headers), "invalid-api-key")
    wrong = assert_unauthorized(client.get("/v1/jobs", headers={"X-API-Key": "samo_00000000_x"}), "invalid-api-key")
    assert {k: v for k, v in revoked.items() if k != "instance"} == {k: v for k, v in wrong.items() if k != "instance"}


def test_other_keys_of_the_tenant_keep_working_after_a_revocation(client, make_tenant, settings):
    tenant = make_tenant()
    with session_scope(settings.database_url) as session:
        second = create_api_key(session, find_tenant(session, tenant.name)).key
        revoke_api_key(session, tenant.key_prefix)
    assert client.get("/v1/jobs", headers={"X-API-Key": second}).status_code == 200


def test_missing_scope_is_403_with_the_required_scope(client, make_tenant):
    reader = make_tenant(scopes=["jobs:read"])
    writer = make_tenant(scopes=["jobs:write"])
    body = assert_problem(client.post("/v1/jobs", json=JOB, headers=reader.headers), 403, "insufficient-scope")
    assert body["required_scope"] == "jobs:write"
    body = assert_problem(client.get("/v1/jobs", headers=writer.headers), 403, "insufficient-scope")
    assert body["required_scope"] == "jobs:read"
    assert client.get("/v1/jobs", headers=reader.headers).status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(client, make_tenant, db_session, settings):
    """Written when the key is verified against the database (not from the process's cache)."""
    tenant = make_tenant()

    def last_used():
        db_session.expire_all()
        value = db_session.query(ApiKey.last_used_at).filter(ApiKey.prefix == tenant.key_prefix).scalar()
        db_session.rollback()
        return value

    assert last_used() is None
    client.get("/v1/jobs", headers=tenant.headers)
    first = last_used()
    assert first is not None
    client.get("/v1/jobs", headers=tenant.headers)
    assert last_used() == first
    db_session.execute(update(ApiKey).where(ApiKey.prefix == tenant.key_prefix)
                       .values(last_used_at=utcnow() - timedelta(minutes=2)))
    db_session.commit()
    client.get("/v1/jobs", headers=tenant.headers)
    assert last_used() < first  # still trusted from the cache: no lookup, no write
    assert announce_key_change(settings.redis_url)
    client.get("/v1/jobs", headers=tenant.headers)
    assert last_used() > first


def test_keys_never_reach_the_logs(client, make_tenant, caplog):
    tenant = make_tenant()
    with caplog.at_level("DEBUG"):
        client.get("/v1/jobs", headers=tenant.headers)
        client.get("/v1/jobs", headers={"X-API-Key": tenant.api_key + "x"})
        tokens = issue_tokens(client, tenant)
        client.get("/v1/jobs", headers=bearer(tokens["access_token"]))
    secret_part = tenant.api_key.split("_", 2)[2]
    assert secret_part not in caplog.text
    assert tokens["access_token"] not in caplog.text


# --- JWT access tokens -----------------------------------------------------------------------

def test_access_token_authenticates_like_the_key(client, make_tenant):
    tenant = make_tenant()
    tokens = issue_tokens(client, tenant)
    submitted = client.post("/v1/jobs", json=JOB, headers=bearer(tokens["access_token"]))
    assert submitted.status_code == 202
    listed = client.get("/v1/jobs", headers=bearer(tokens["access_token"]))
    assert listed.status_code == 200
    assert submitted.get_json()["id"] in listed.get_data(as_text=True)


def test_token_scope_narrowing_is_enforced(client, make_tenant):
    tenant = make_tenant()
    tokens = issue_tokens(client, tenant, scope="jobs:read")
    assert client.get("/v1/jobs", headers=bearer(tokens["access_token"])).status_code == 200
    response = client.post("/v1/jobs", json=JOB, headers=bearer(tokens["access_token"]))
    assert_problem(response, 403, "insufficient-scope")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_expired_access_token_is_401_token_expired(client, make_tenant, settings):
    tenant = make_tenant()
    past = int(time.time()) - 3600
    token = jwt.encode(key_claims(settings, tenant, iat=past - 900, exp=past), settings.jwt_secret, algorithm="HS256")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(token)), "token-expired")


def test_refresh_token_is_not_an_access_token(client, make_tenant):
    tokens = issue_tokens(client, make_tenant())
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(tokens["refresh_token"])), "wrong-token-type")


def test_alg_none_is_refused(client, make_tenant, settings):
    token = jwt.encode(key_claims(settings, make_tenant()), key=None, algorithm="none")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(token)), "invalid-token")


def test_other_algorithm_even_with_the_right_secret_is_refused(client, make_tenant, settings):
    token = jwt.encode(key_claims(settings, make_tenant()), settings.jwt_secret + "-" * 32, algorithm="HS512")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(token)), "invalid-token")
    token = jwt.encode(key_claims(settings, make_tenant()), settings.jwt_secret, algorithm="HS384")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(token)), "invalid-token")


def test_token_signed_with_another_secret_is_refused(client, make_tenant, settings):
    token = jwt.encode(key_claims(settings, make_tenant()), "not-the-secret-" + "z" * 32, algorithm="HS256")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(token)), "invalid-token")


def test_token_for_another_tenant_than_its_key_is_refused(client, make_tenant, settings):
    victim, attacker = make_tenant(), make_tenant()
    claims = key_claims(settings, attacker, sub=str(victim.tenant_id))
    token = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(token)), "invalid-token")


def test_revoking_the_key_kills_its_access_tokens(client, make_tenant, settings):
    tenant = make_tenant()
    tokens = issue_tokens(client, tenant)
    assert client.get("/v1/jobs", headers=bearer(tokens["access_token"])).status_code == 200
    assert revoke_key(settings, tenant.key_prefix) is not None
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(tokens["access_token"])), "invalid-token")


def test_bearer_is_refused_when_tokens_are_disabled(app, client, make_tenant, settings, monkeypatch):
    tokens = issue_tokens(client, make_tenant())
    monkeypatch.setitem(app.config, "SAMO_SETTINGS", dataclasses.replace(settings, jwt_secret=""))
    assert_unauthorized(client.get("/v1/jobs", headers=bearer(tokens["access_token"])), "invalid-token")


def test_garbage_bearer_is_invalid_token(client):
    assert_unauthorized(client.get("/v1/jobs", headers=bearer("not.a.jwt")), "invalid-token")


@pytest.mark.parametrize("headers", [{"X-API-Key": ""}, {"X-API-Key": "   "}])
def test_an_empty_x_api_key_beside_authorization_is_ambiguous_too(client, make_tenant, headers):
    tenant = make_tenant()
    response = client.get("/v1/jobs", headers={**tenant.headers, **headers})
    assert_problem(response, 400, "ambiguous-credentials")
    empty_authorization = client.get("/v1/jobs", headers={"Authorization": "", "X-API-Key": tenant.api_key})
    assert_problem(empty_authorization, 400, "ambiguous-credentials")
