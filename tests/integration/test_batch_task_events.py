"""Batched tasks send Celery task events (what Flower shows): a real worker, a real event receiver."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from config.celery import make_celery
from config.job_types import JOB_TYPES
from tests.support.http import post_job
from tests.support.polling import wait_for_job, wait_until

BULK_TASK = "tasks.bulk.process_chunk"
LIFECYCLE = ("task-received", "task-started", "task-succeeded")


@contextmanager
def captured_events(settings) -> Iterator[list[dict]]:
    """Every event on the stack's broker while the block runs; yields once a worker heartbeat arrived."""
    app = make_celery(settings)
    events: list[dict] = []
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": events.append})
        thread = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": None}, daemon=True)
        thread.start()
        try:
            wait_until(lambda: any(e["type"] == "worker-heartbeat" for e in events), timeout_s=30,
                       message="a worker heartbeat (the receiver is listening)")
            yield events
        finally:
            receiver.should_stop = True
            thread.join(timeout=10)


def lifecycle_of(events: list[dict], task_name: str) -> dict[str, list[str]]:
    """Event types per task id, for the tasks of ``task_name`` (only ``task-received`` carries the name)."""
    ids = {e["uuid"] for e in events if e["type"] == "task-received" and e.get("name") == task_name}
    return {task_id: [e["type"] for e in events if e.get("uuid") == task_id] for task_id in ids}


def first_occurrences(types: list[str]) -> list[str]:
    """A message the broker delivered again (its visibility timeout ran out) repeats its events."""
    return [t for t in dict.fromkeys(types) if t in LIFECYCLE]


def test_emotion_batches_and_bulk_chunks_send_task_events(batching_stack, make_tenant):
    tenant = make_tenant()
    emotion_task = JOB_TYPES["emotion"].task
    with captured_events(batching_stack.settings) as events:
        job = post_job(batching_stack.base_url, tenant.headers, "What a wonderful surprise!")
        batch = requests.post(f"{batching_stack.base_url}/v1/batches", timeout=30, headers=tenant.headers,
                              json={"type": "emotion", "items": [{"id": "a", "text": "So calm today."}]})
        assert batch.status_code == 202, batch.text
        assert wait_for_job(batching_stack.base_url, job["id"], tenant.headers)["status"] == "succeeded"

        def finished(task_name: str):
            return [types for types in lifecycle_of(events, task_name).values() if "task-succeeded" in types]

        emotion = wait_until(lambda: finished(emotion_task), timeout_s=60, message="emotion task events")
        chunks = wait_until(lambda: finished(BULK_TASK), timeout_s=120, message="bulk chunk events")
    for types in emotion + chunks:
        assert first_occurrences(types) == list(LIFECYCLE), types
    received = next(e for e in events if e["type"] == "task-received" and e.get("name") == emotion_task)
    assert job["id"] in received["args"]
    succeeded = next(e for e in events if e["type"] == "task-succeeded" and e["uuid"] == received["uuid"])
    assert succeeded["runtime"] >= 0 and "succeeded" in succeeded["result"]
    assert "What a wonderful surprise!" not in repr(events)
