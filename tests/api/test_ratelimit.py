"""Rate limits and the jobs-in-flight cap, through the Flask client against real Redis and the session's database."""
from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid

import pytest
import redis as redis_lib
from sqlalchemy import update

from api.auth.principal import Principal
from api.auth.ratelimit import InFlightEstimate, SlidingWindowLimiter, WindowHit, enforce_jobs_in_flight
from api.problems import Problem
from config.settings import RateLimitTier
from db.api_keys import create_api_key, find_tenant
from db.models import Job, JobStatus
from db.session import session_scope
from tests.support.problems import assert_problem
from tests.support.threads import run_on_threads

JOB = {"type": "emotion", "input": {"text": "I am so proud of you."}}
RATELIMIT = re.compile(r'^"(?P<tier>[^"]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


@pytest.fixture
def app(app, plain_app, submit_path):
    """Every test here runs on both submission paths (tests/api/conftest.py)."""
    return app if submit_path == "group-commit" else plain_app


def parse_ratelimit(response):
    match = RATELIMIT.match(response.headers["RateLimit"])
    assert match, response.headers["RateLimit"]
    return match["tier"], int(match["r"]), int(match["t"])


def test_headers_on_successful_responses(client, make_tenant):
    tenant = make_tenant()
    response = client.get("/v1/jobs", headers=tenant.headers)
    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == '"free";q=1000;w=60'
    assert parse_ratelimit(response)[:2] == ("free", 999)
    assert 1 <= parse_ratelimit(response)[2] <= 60


def test_headers_on_error_responses_too(client, make_tenant):
    tenant = make_tenant(scopes=["jobs:read"])
    forbidden = client.post("/v1/jobs", json=JOB, headers=tenant.headers)
    assert forbidden.status_code == 403 and "RateLimit" in forbidden.headers
    missing = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=tenant.headers)
    assert missing.status_code == 404 and "RateLimit-Policy" in missing.headers


def test_unauthenticated_responses_carry_no_rate_limit_headers(client):
    response = client.get("/v1/jobs")
    assert response.status_code == 401
    assert "RateLimit" not in response.headers


def test_tiny_tier_gets_429_with_retry_after_and_headers(client, make_tenant):
    tenant = make_tenant(tier="tiny")
    remaining = [parse_ratelimit(client.get("/v1/jobs", headers=tenant.headers))[1] for _ in range(3)]
    assert remaining == [2, 1, 0]
    refused = client.get("/v1/jobs", headers=tenant.headers)
    body = assert_problem(refused, 429, "rate-limit-exceeded")
    assert body["limit"] == 3 and body["window_s"] == 60
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.headers["RateLimit-Policy"] == '"tiny";q=3;w=60'
    tier, r, t = parse_ratelimit(refused)
    assert (tier, r, t) == ("tiny", 0, retry_after)
    # Refused requests do not extend the penalty.
    again = client.get("/v1/jobs", headers=tenant.headers)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) <= retry_after


def test_limits_are_per_key_and_shared_by_the_keys_tokens(client, make_tenant, settings):
    tenant = make_tenant(tier="tiny")
    with session_scope(settings.database_url) as session:
        other_key = create_api_key(session, find_tenant(session, tenant.name)).key
    token = client.post("/v1/auth/token", json={"grant_type": "api_key", "api_key": tenant.api_key})
    access = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    assert client.get("/v1/jobs", headers=access).status_code == 200
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    assert client.get("/v1/jobs", headers=access).status_code == 429
    assert client.get("/v1/jobs", headers={"X-API-Key": other_key}).status_code == 200


def test_redis_down_fails_open_without_headers(app, client, make_tenant, monkeypatch):
    tenant = make_tenant(tier="tiny")
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, socket_timeout=0.5)
    monkeypatch.setitem(app.extensions, "samo_redis", dead)
    state = app.extensions["samo_ratelimit"]
    try:
        for _ in range(5):
            response = client.get("/v1/jobs", headers=tenant.headers)
            assert response.status_code == 200
            assert "RateLimit" not in response.headers and "RateLimit-Policy" not in response.headers
    finally:
        state.skip_until = 0.0


# --- the limiter against real Redis ----------------------------------------------------------

def test_concurrent_hits_admit_exactly_the_limit(redis):
    limiter = SlidingWindowLimiter(redis, key_prefix=f"test:{uuid.uuid4().hex}:")
    tier = RateLimitTier("t", requests=7, window_s=60, max_jobs_in_flight=1)
    results = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        for _ in range(5):
            results.append(limiter.hit("key", tier).allowed)

    run_on_threads(worker, 8)
    assert len(results) == 40 and results.count(True) == 7


def test_window_slides(redis):
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = SlidingWindowLimiter(redis, key_prefix=prefix)
    tier = RateLimitTier("t", requests=2, window_s=1, max_jobs_in_flight=1)
    assert [limiter.hit("k", tier).allowed for _ in range(3)] == [True, True, False]
    assert 0 < redis.pttl(prefix + "k") <= 1000
    time.sleep(1.05)
    state = limiter.hit("k", tier)
    assert state.allowed and state.remaining == 1


def test_script_survives_a_script_cache_flush(redis):
    limiter = SlidingWindowLimiter(redis, key_prefix=f"test:{uuid.uuid4().hex}:")
    tier = RateLimitTier("t", requests=5, window_s=60, max_jobs_in_flight=1)
    limiter.hit("k", tier)
    redis.script_flush()
    assert limiter.hit("k", tier).remaining == 3


def test_hits_in_one_round_trip_count_like_hits_one_by_one(redis):
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = SlidingWindowLimiter(redis, key_prefix=prefix)
    tier = RateLimitTier("t", requests=3, window_s=60, max_jobs_in_flight=1)
    hits = [WindowHit("a", tier)] * 4 + [WindowHit("b", tier, read_key=prefix + "epoch")]
    redis.set(prefix + "epoch", "7")
    answers = limiter.hit_many(hits)
    assert [state.allowed for state, _, _ in answers] == [True, True, True, False, True]
    assert [state.remaining for state, _, _ in answers] == [2, 1, 0, 0, 2]
    assert answers[-1][1] == "7"
    assert redis.zcard(prefix + "a") == 3, "every allowed hit is its own entry in the window"


def test_hits_in_one_round_trip_survive_a_script_cache_flush(redis):
    limiter = SlidingWindowLimiter(redis, key_prefix=f"test:{uuid.uuid4().hex}:")
    tier = RateLimitTier("t", requests=5, window_s=60, max_jobs_in_flight=1)
    limiter.hit_many([WindowHit("k", tier)])
    redis.script_flush()
    assert [state.remaining for state, _, _ in limiter.hit_many([WindowHit("k", tier)] * 2)] == [3, 2]


def test_hits_in_one_round_trip_raise_for_all_when_redis_is_gone():
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, socket_timeout=0.5)
    limiter = SlidingWindowLimiter(dead)
    with pytest.raises(redis_lib.ConnectionError):
        limiter.hit_many([WindowHit("k", RateLimitTier("t", requests=5, window_s=60, max_jobs_in_flight=1))] * 3)


# --- jobs in flight --------------------------------------------------------------------------

def test_in_flight_cap_through_the_jobs_api(client, make_tenant, settings):
    tenant = make_tenant(tier="oneflight")
    first = client.post("/v1/jobs", json=JOB, headers=tenant.headers)
    assert first.status_code == 202
    refused = client.post("/v1/jobs", json=JOB, headers=tenant.headers)
    body = assert_problem(refused, 429, "too-many-jobs-in-flight")
    assert body["limit"] == 1 and body["in_flight"] == 1
    assert int(refused.headers["Retry-After"]) >= 1
    assert "RateLimit" in refused.headers
    with session_scope(settings.database_url) as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(first.get_json()["id"]))
                        .values(status=JobStatus.SUCCEEDED))
    assert client.post("/v1/jobs", json=JOB, headers=tenant.headers).status_code == 202


def test_in_flight_counts_queued_and_running_only(make_tenant, settings, db_session):
    tenant = make_tenant(tier="oneflight")
    principal = Principal(tenant.tenant_id, uuid.uuid4(), frozenset(), "oneflight", "api_key")
    assert enforce_jobs_in_flight(lambda: db_session, principal, config=settings).in_flight == 0
    with pytest.raises(Problem) as refused:
        enforce_jobs_in_flight(lambda: db_session, principal, new_jobs=2, config=settings)
    assert refused.value.slug == "too-many-jobs-in-flight"
    db_session.rollback()
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.RUNNING):
        db_session.add(Job(tenant_id=tenant.tenant_id, type="emotion", status=status, input={"text": "x"}))
    db_session.commit()
    with pytest.raises(Problem) as refused:
        enforce_jobs_in_flight(lambda: db_session, principal, config=settings)
    assert refused.value.extensions == {"limit": 1, "in_flight": 1}
    db_session.rollback()
    free = Principal(tenant.tenant_id, uuid.uuid4(), frozenset(), "free", "api_key")
    assert enforce_jobs_in_flight(lambda: db_session, free, new_jobs=5, config=settings).in_flight == 1
    db_session.rollback()


def test_concurrent_submissions_cannot_both_pass_the_cap(app, make_tenant, settings):
    """Two requests' admissions, each pending until its job is committed: on PostgreSQL the
    tenant's advisory lock serialises them, on SQLite the pending admissions in Redis do."""
    from api.auth.ratelimit import release_admission
    from db.session import get_sessionmaker

    tenant = make_tenant(tier="oneflight")
    principal = Principal(tenant.tenant_id, uuid.uuid4(), frozenset(), "oneflight", "api_key")
    barrier = threading.Barrier(2)
    outcomes = []

    def submit():
        session = get_sessionmaker(settings.database_url)()
        try:
            with app.test_request_context("/v1/jobs", method="POST"):
                barrier.wait()
                enforce_jobs_in_flight(lambda: session, principal, config=settings)
                time.sleep(0.3)  # widen the check-then-insert gap the admission must cover
                session.add(Job(tenant_id=tenant.tenant_id, type="emotion", input={"text": "x"}))
                session.commit()
                release_admission()
            outcomes.append("admitted")
        except Problem as problem:
            outcomes.append(problem.slug)
        finally:
            session.rollback()
            session.close()

    run_on_threads(submit, 2)
    assert sorted(outcomes) == ["admitted", "too-many-jobs-in-flight"]


def estimate_of(redis, tenant) -> int | None:
    value = redis.get(InFlightEstimate.key(tenant.tenant_id))
    return int(value) if value is not None else None


def test_submissions_far_from_the_cap_are_admitted_in_the_rate_limit_round_trip(client, make_tenant, redis,
                                                                              monkeypatch):
    tenant = make_tenant()
    assert client.post("/v1/jobs", json=JOB, headers=tenant.headers).status_code == 202
    assert estimate_of(redis, tenant) == 1  # counted exactly: no estimate yet

    def second_round_trip(*_args, **_kwargs):
        raise AssertionError("the admission should have come with the rate limit's answer")

    monkeypatch.setattr(InFlightEstimate, "admit", second_round_trip)
    for expected in (2, 3):
        assert client.post("/v1/jobs", json=JOB, headers=tenant.headers).status_code == 202
        assert estimate_of(redis, tenant) == expected
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    assert estimate_of(redis, tenant) == 3  # other endpoints admit nothing


def test_near_the_cap_the_early_admission_defers_to_the_exact_count(client, make_tenant, redis, settings):
    tenant = make_tenant(tier="oneflight")
    redis.set(InFlightEstimate.key(tenant.tenant_id), 1)  # stale: no job is in flight
    assert client.post("/v1/jobs", json=JOB, headers=tenant.headers).status_code == 202
    assert estimate_of(redis, tenant) == 1
    refused = client.post("/v1/jobs", json=JOB, headers=tenant.headers)
    assert_problem(refused, 429, "too-many-jobs-in-flight")


def test_a_rate_limited_submission_raises_no_estimate(client, make_tenant, redis):
    tenant = make_tenant(tier="tiny")
    for _ in range(3):
        assert client.post("/v1/jobs", json=JOB, headers=tenant.headers).status_code == 202
    assert estimate_of(redis, tenant) == 3
    assert_problem(client.post("/v1/jobs", json=JOB, headers=tenant.headers), 429, "rate-limit-exceeded")
    assert estimate_of(redis, tenant) == 3


def test_an_exact_count_keeps_the_admissions_still_being_stored(app, make_tenant, settings):
    """Jobs admitted on the estimate whose rows are not committed yet count in an exact count
    near the cap and stay in the estimate it sets (once, a reset of the estimate dropped them)."""
    from db.session import get_sessionmaker

    cap, storing = 10, 8
    config = dataclasses.replace(settings, rate_limit_tiers={"ten": RateLimitTier("ten", 1000, 60, cap)})
    tenant = make_tenant()
    principal = Principal(tenant.tenant_id, uuid.uuid4(), frozenset(), "ten", "api_key")
    session = get_sessionmaker(settings.database_url)()

    def admit(new_jobs: int = 1):
        return enforce_jobs_in_flight(lambda: session, principal, new_jobs=new_jobs, config=config)

    with app.test_request_context():
        assert admit().locked, "no estimate yet: counted exactly"
        session.add(Job(tenant_id=tenant.tenant_id, type="emotion", input={"text": "x"}))
        session.commit()
    admitted, stored = threading.Barrier(storing + 1), threading.Event()

    def still_storing():
        with app.test_request_context():
            assert not admit().locked
            admitted.wait()
            stored.wait(timeout=30)

    threads = [threading.Thread(target=still_storing) for _ in range(storing)]
    for thread in threads:
        thread.start()
    try:
        admitted.wait(timeout=30)
        with app.test_request_context(), pytest.raises(Problem) as refused:
            admit(new_jobs=2)  # past the estimate: counted exactly, with the 8 in progress
        session.rollback()
        assert refused.value.extensions == {"limit": cap, "in_flight": 1 + storing}
        with app.test_request_context():
            assert not admit().locked, "1 + 8 + 1 jobs fit on the estimate"
    finally:
        stored.set()
        for thread in threads:
            thread.join(timeout=30)
    with app.test_request_context():
        assert admit(new_jobs=2).in_flight == 1, "released: only the committed job is counted"
    session.rollback()
    session.close()
