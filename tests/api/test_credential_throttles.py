"""Throttles on credentials (``api.auth.throttle``): the token endpoint per client address and per
key, failed authentications per client address; against real Redis and the session's database.

Each test calls from addresses of its own, so the windows in the session's Redis never mix.
"""
from __future__ import annotations

import dataclasses
import uuid

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from db.models import ApiKey, RefreshToken
from db.session import session_scope
from tests.support.problems import assert_problem

TOKEN_URL = "/v1/auth/token"
LIMITS = {"token_requests_per_address": 5, "token_requests_per_key": 2, "token_window_s": 60,
          "failed_auth_limit": 3, "failed_auth_window_s": 60}


@pytest.fixture(scope="module")
def throttled_settings(settings):
    return dataclasses.replace(settings, **LIMITS)


@pytest.fixture(scope="module")
def throttled_app(throttled_settings):
    from api import create_app

    return create_app(throttled_settings, {"TESTING": True})


def new_address() -> str:
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def caller(app, address: str | None = None):
    """A test client whose requests come from ``address`` (a new one by default)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address or new_address()
    return client


def grant(client, tenant):
    return client.post(TOKEN_URL, json={"grant_type": "api_key", "api_key": tenant.api_key})


def refresh(client, token: str):
    return client.post(TOKEN_URL, json={"grant_type": "refresh_token", "refresh_token": token})


def assert_throttled(response, slug: str) -> dict:
    body = assert_problem(response, 429, slug)
    assert int(response.headers["Retry-After"]) >= 1
    return body


def refresh_rows(settings, tenant) -> int:
    with session_scope(settings.database_url) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == tenant.key_prefix))
        return session.scalar(select(func.count()).select_from(RefreshToken).where(RefreshToken.api_key_id == key_id))


def test_token_requests_are_limited_per_client_address(throttled_app, make_tenant):
    client = caller(throttled_app)
    tenants = [make_tenant() for _ in range(6)]  # a key each: the per-key limit stays out of the way
    for tenant in tenants[:5]:
        assert grant(client, tenant).status_code == 200
    body = assert_throttled(grant(client, tenants[5]), "rate-limit-exceeded")
    assert (body["limit"], body["window_s"]) == (5, 60)
    assert grant(caller(throttled_app), tenants[5]).status_code == 200


def test_tokens_are_limited_per_key_before_a_refresh_row_is_written(throttled_app, throttled_settings, make_tenant):
    tenant = make_tenant()
    first = grant(caller(throttled_app), tenant)
    assert first.status_code == 200
    assert refresh(caller(throttled_app), first.get_json()["refresh_token"]).status_code == 200
    assert refresh_rows(throttled_settings, tenant) == 2
    assert_throttled(grant(caller(throttled_app), tenant), "rate-limit-exceeded")
    assert_throttled(refresh(caller(throttled_app), first.get_json()["refresh_token"]), "rate-limit-exceeded")
    assert refresh_rows(throttled_settings, tenant) == 2
    assert grant(caller(throttled_app), make_tenant()).status_code == 200  # another key is not held back


@pytest.mark.parametrize("fail", ["api-key-header", "bearer", "api-key-grant", "refresh-grant"])
def test_failed_authentications_are_throttled_per_client_address(throttled_app, make_tenant, fail):
    address = new_address()
    client = caller(throttled_app, address)
    attempts = {
        "api-key-header": lambda: client.get("/v1/jobs", headers={"Authorization": f"ApiKey sk_{uuid.uuid4().hex}"}),
        "bearer": lambda: client.get("/v1/jobs", headers={"Authorization": "Bearer not.a.token"}),
        "api-key-grant": lambda: client.post(TOKEN_URL, json={"grant_type": "api_key", "api_key": "sk_wrong"}),
        "refresh-grant": lambda: refresh(client, "not.a.token"),
    }[fail]
    for _ in range(3):
        assert attempts().status_code == 401
    body = assert_throttled(attempts(), "too-many-failed-authentications")
    assert (body["limit"], body["window_s"]) == (3, 60)

    tenant = make_tenant()
    # The address is refused before any credential is checked, even a valid one...
    assert_throttled(client.get("/v1/jobs", headers=tenant.headers), "too-many-failed-authentications")
    assert_throttled(grant(client, tenant), "too-many-failed-authentications")
    # ...and only that address.
    assert caller(throttled_app).get("/v1/jobs", headers=tenant.headers).status_code == 200


def test_missing_credentials_are_not_failed_authentications(throttled_app):
    client = caller(throttled_app)
    for _ in range(5):
        assert_problem(client.get("/v1/jobs"), 401, "missing-credentials")


def test_another_api_process_refuses_a_throttled_address_at_its_first_failure(throttled_app, throttled_settings):
    from api import create_app

    address = new_address()
    for _ in range(4):
        caller(throttled_app, address).get("/v1/jobs", headers={"X-API-Key": "sk_wrong"})
    other_process = create_app(throttled_settings, {"TESTING": True})
    assert_throttled(caller(other_process, address).get("/v1/jobs", headers={"X-API-Key": "sk_wrong"}),
                     "too-many-failed-authentications")


def test_the_address_behind_trusted_proxies_is_the_one_counted(throttled_settings, make_tenant):
    from api import create_app

    behind_proxy = create_app(dataclasses.replace(throttled_settings, proxy_hops=1), {"TESTING": True})
    proxy = caller(behind_proxy, "10.0.0.1")
    attacker, user = new_address(), new_address()
    for _ in range(4):
        proxy.get("/v1/jobs", headers={"X-API-Key": "sk_wrong", "X-Forwarded-For": attacker})
    tenant = make_tenant()
    assert proxy.get("/v1/jobs", headers={**tenant.headers, "X-Forwarded-For": user}).status_code == 200
    assert_throttled(proxy.get("/v1/jobs", headers={**tenant.headers, "X-Forwarded-For": attacker}),
                     "too-many-failed-authentications")


def test_the_throttles_fail_open_without_redis(throttled_settings, make_tenant):
    from api import create_app

    app = create_app(throttled_settings, {"TESTING": True})
    app.extensions["samo_redis"] = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5,
                                                   socket_timeout=0.5, decode_responses=True)
    client = caller(app)
    for _ in range(5):
        assert client.get("/v1/jobs", headers={"X-API-Key": "sk_wrong"}).status_code == 401
    tenant = make_tenant()
    for _ in range(4):
        assert grant(client, tenant).status_code == 200
