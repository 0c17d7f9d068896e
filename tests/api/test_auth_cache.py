"""The per-process cache of verified API keys (api/auth/key_cache.py), against the session's database and real Redis.

What it promises: a change announced through Redis (``revoke_key``, the CLI) takes effect on the
next request; a change made behind its back (an UPDATE by hand) within the TTL; with TTL 0,
at once.
"""
from __future__ import annotations

import dataclasses
import time

import pytest

from api.auth.key_cache import AuthCache, revoke_key
from db.api_keys import revoke_api_key
from db.session import session_scope


def revoke_silently(settings, prefix: str) -> None:
    """Revoke in the database only, as a hand-written UPDATE would: nothing is announced."""
    with session_scope(settings.database_url) as session:
        assert revoke_api_key(session, prefix) is not None


@pytest.fixture
def app_with_ttl(settings):
    from api import create_app

    def make(ttl_s: float):
        return create_app(dataclasses.replace(settings, auth_cache_ttl_s=ttl_s), {"TESTING": True})

    return make


def test_an_announced_revocation_is_seen_on_the_next_request(client, make_tenant, settings):
    tenant = make_tenant()
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    assert revoke_key(settings, tenant.key_prefix) is not None
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 401


def test_an_unannounced_revocation_is_seen_after_the_ttl(app_with_ttl, make_tenant, settings):
    client = app_with_ttl(1.0).test_client()
    assert client.get("/v1/jobs", headers=make_tenant().headers).status_code == 200  # first-request imports
    tenant = make_tenant()
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    revoke_silently(settings, tenant.key_prefix)
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200  # trusted from the cache
    time.sleep(1.1)
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 401


def test_ttl_zero_verifies_every_request_against_the_database(app_with_ttl, make_tenant, settings):
    client = app_with_ttl(0).test_client()
    tenant = make_tenant()
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    revoke_silently(settings, tenant.key_prefix)
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 401


def test_a_key_change_drops_every_entry_of_every_process(app_with_ttl, make_tenant, settings):
    """Two apps stand for two API processes: one announcement reaches both."""
    first, second = app_with_ttl(60).test_client(), app_with_ttl(60).test_client()
    revoked, kept = make_tenant(), make_tenant()
    for client in (first, second):
        for tenant in (revoked, kept):
            assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    assert revoke_key(settings, revoked.key_prefix) is not None
    for client in (first, second):
        assert client.get("/v1/jobs", headers=revoked.headers).status_code == 401
        assert client.get("/v1/jobs", headers=kept.headers).status_code == 200


def test_a_lookup_that_raced_a_key_change_is_not_kept():
    cache = AuthCache(ttl_s=60)
    cache.observe_epoch("1")
    epoch_before_lookup = cache.epoch
    cache.observe_epoch("2")  # a key changed while the database was being read
    cache.put(("key", "digest"), object(), "free", epoch_before_lookup)
    assert cache.get(("key", "digest")) is None
    cache.put(("key", "digest"), object(), "free", cache.epoch)
    assert cache.get(("key", "digest")) is not None


def test_the_cache_stays_bounded():
    cache = AuthCache(ttl_s=60, max_entries=3)
    for n in range(10):
        cache.put(("key", str(n)), object(), "free", cache.epoch)
    assert len(cache._entries) <= 3
