"""The per-process completion listener behind `Prefer: wait`, against the real Redis."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis as redis_lib

from api.fastpath.completions import SUBSCRIBE_WAIT_S, CompletionListener
from db.models import utcnow
from tasks.events import finished_channel


def never_read():
    raise AssertionError("the database was read although the subscription had the answer")


@pytest.fixture
def listener(redis_url):
    listener = CompletionListener(redis_lib.Redis.from_url(redis_url, decode_responses=True))
    listener._ensure_thread()
    assert listener._subscribed.wait(5)
    return listener


def publish_soon(redis, job_id, delay_s: float) -> threading.Thread:
    def publish():
        time.sleep(delay_s)
        redis.publish(finished_channel(job_id), "succeeded")

    thread = threading.Thread(target=publish)
    thread.start()
    return thread


def test_a_completion_during_the_wait_ends_it_without_reading_the_database(listener, redis):
    job_id = uuid.uuid4()
    publisher = publish_soon(redis, job_id, 0.3)
    started = time.monotonic()
    assert listener.wait(job_id, utcnow(), 10, never_read) is True
    assert time.monotonic() - started < 2
    publisher.join()


def test_a_completion_before_the_waiter_came_is_remembered(listener, redis):
    job_id = uuid.uuid4()
    created = utcnow()
    redis.publish(finished_channel(job_id), "succeeded")
    deadline = time.monotonic() + 5
    while not listener._finished_recently(str(job_id)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listener.wait(job_id, created, 10, never_read) is True


def test_a_job_older_than_the_subscription_is_read_once(listener):
    reads = []
    older = utcnow() - timedelta(minutes=1)
    started = time.monotonic()
    assert listener.wait(uuid.uuid4(), older, 0.5, lambda: reads.append(1) or False) is False
    assert reads == [1] and 0.5 <= time.monotonic() - started < 2
    assert listener.wait(uuid.uuid4(), older, 5, lambda: True) is True


def test_waiters_share_one_subscription(listener, redis):
    def subscribers() -> int:
        return sum(1 for client in redis.client_list()
                   if int(client.get("sub", 0)) > 0 or int(client.get("psub", 0)) > 0)

    before = subscribers()
    job_ids = [uuid.uuid4() for _ in range(5)]
    results = []
    waiters = [threading.Thread(target=lambda j=j: results.append(listener.wait(j, utcnow(), 10, never_read)))
               for j in job_ids]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.3)
    assert subscribers() == before
    for job_id in job_ids:
        redis.publish(finished_channel(job_id), "succeeded")
    for waiter in waiters:
        waiter.join(timeout=10)
    assert results == [True] * 5


def test_without_redis_the_wait_ends_after_one_read():
    unreachable = CompletionListener(redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    started = time.monotonic()
    try:
        assert unreachable.wait(uuid.uuid4(), utcnow(), 30, lambda: False) is False
        assert time.monotonic() - started < SUBSCRIBE_WAIT_S + 1
    finally:
        unreachable.close()
