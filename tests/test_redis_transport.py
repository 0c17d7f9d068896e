"""The Redis transport the platform's Celery apps use (config/redis_transport.py), against the real Redis."""
from __future__ import annotations

import dataclasses
import uuid

from config.celery import broker_transport, make_celery
from config.redis_transport import TRANSPORT, Channel
from tasks.enqueue import enqueue_jobs
from tests.support.services import claimed_redis_database


def test_plain_redis_brokers_get_it_and_other_schemes_keep_their_own():
    assert broker_transport("redis://127.0.0.1:6379/0") == TRANSPORT
    assert broker_transport("rediss://cache.example:6380/0") is None
    assert broker_transport("amqp://guest@localhost//") is None


def test_a_channel_keeps_one_client_and_messages_still_arrive(settings):
    """On a Redis database of its own: no worker of another test may take the messages."""
    with claimed_redis_database() as redis_url:
        celery = make_celery(dataclasses.replace(settings, redis_url=redis_url, broker_url=redis_url))
        with celery.connection_for_write() as connection:
            channel = connection.default_channel
            assert isinstance(channel, Channel)
            client = channel._create_client()
            assert client is channel._create_client()
            client.ping()
            held = client.connection
            client.ping()
            assert held is not None and client.connection is held, "one connection, not a checkout per command"
            held.disconnect()  # as if Redis had dropped it: the next command connects again
            assert client.ping()
        job_ids = [uuid.uuid4() for _ in range(4)]
        assert enqueue_jobs(celery, [(job_id, "emotion") for job_id in job_ids[:3]])
        assert enqueue_jobs(celery, [(job_ids[3], "emotion")])
        with celery.connection_for_write() as connection:
            queue = connection.SimpleQueue(settings.model_queue)
            received = [queue.get(timeout=5) for _ in range(2)]
            for message in received:
                message.ack()
            queue.close()
    assert {message.headers["task"] for message in received} == {"tasks.emotion.analyze_job"}
    # Emotion jobs published together share a message: analyze_job(*job_ids).
    assert sorted(message.payload[0] for message in received) == sorted(
        [[str(job_id) for job_id in job_ids[:3]], [str(job_ids[3])]])
