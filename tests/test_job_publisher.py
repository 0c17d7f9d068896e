"""The job writer's publisher (tasks.enqueue.JobPublisher), against the real Redis."""
from __future__ import annotations

import dataclasses
import uuid

from config.celery import make_celery
from tasks.enqueue import JobPublisher
from tests.support.services import claimed_redis_database


def received_job_ids(celery, queue_name: str, messages: int) -> list[list[str]]:
    with celery.connection_for_write() as connection:
        queue = connection.SimpleQueue(queue_name)
        received = [queue.get(timeout=5) for _ in range(messages)]
        for message in received:
            message.ack()
        queue.close()
    return [message.payload[0] for message in received]


def test_publishes_keep_one_producer_and_every_message_arrives(settings):
    with claimed_redis_database() as redis_url:
        celery = make_celery(dataclasses.replace(settings, redis_url=redis_url, broker_url=redis_url))
        publish = JobPublisher(celery)
        first, second = [uuid.uuid4() for _ in range(2)], [uuid.uuid4()]
        assert publish([(job_id, "emotion") for job_id in first])
        producer = publish._producer
        assert publish([(job_id, "emotion") for job_id in second])
        assert publish._producer is producer
        received = received_job_ids(celery, settings.model_queue, 2)
        publish.release()
    assert sorted(received) == sorted([[str(job_id) for job_id in first], [str(job_id) for job_id in second]])


def test_a_failed_publish_gives_the_producer_back(settings):
    """Nothing listens on port 1: the publish fails fast (the requeue sweep sends the jobs later)
    and the next publish starts from a fresh producer instead of a broken one."""
    down = "redis://127.0.0.1:1/0"
    celery = make_celery(dataclasses.replace(settings, redis_url=down, broker_url=down))
    publish = JobPublisher(celery)
    assert publish([(uuid.uuid4(), "emotion")]) is False
    assert publish._producer is None
    assert publish([(uuid.uuid4(), "emotion")]) is False
