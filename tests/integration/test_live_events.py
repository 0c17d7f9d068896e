"""Live events end to end: gunicorn with its gevent worker, a real worker on `cpu` and `bulk`, Redis, the database.

The worker starts only once a stream is open on a queued job, so that stream sees every step
live; bulk passes are small (``SAMO_BULK_BATCH_SIZE``) so a batch's counts move within a chunk.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.support.gunicorn import GunicornServer
from tests.support.http import post_upload
from tests.support.ports import free_port
from tests.support.sse import Event, read_http_events
from tests.support.stack import isolated_stack
from tests.support.tenants import new_tenant

EVENTS_ENV = {"SAMO_BULK_BATCH_SIZE": "8", "SAMO_EVENTS_BATCH_PROGRESS_INTERVAL_S": "0.2",
              "SAMO_EVENTS_HEARTBEAT_S": "2"}
STREAM_TIMEOUT = (5, 120)


class EventsStack:
    def __init__(self, stack, base_url: str):
        self.stack = stack
        self.base_url = base_url

    def start_worker(self) -> None:
        worker = self.stack.workers["worker"]
        if worker.process is None:
            worker.start()


@pytest.fixture(scope="module")
def events_stack(settings, tmp_path_factory) -> Iterator[EventsStack]:
    with isolated_stack(settings, {"worker": ("cpu", "bulk")}, extra_env=EVENTS_ENV, start_workers=False,
                        bulk_chunk_size=64) as stack:
        server = GunicornServer(stack.env, free_port(), workers=1,
                                log_path=tmp_path_factory.mktemp("events") / "gunicorn.log")
        server.start()
        try:
            yield EventsStack(stack, server.base_url)
        finally:
            server.stop()


@pytest.fixture
def tenant(events_stack):
    return new_tenant(events_stack.stack.settings.database_url, name=f"events-{uuid.uuid4().hex[:10]}")


def open_stream(base_url: str, path: str, headers: dict, last_event_id: int | None = None):
    extra = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    response = requests.get(f"{base_url}{path}", headers={**headers, **extra}, stream=True, timeout=STREAM_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response


def until_done(items) -> list[Event]:
    events = []
    for item in items:
        if isinstance(item, Event):
            events.append(item)
            if item.event == "done":
                break
    return events


def test_a_jobs_events_arrive_in_order_and_end_with_its_document(events_stack, tenant):
    response = requests.post(f"{events_stack.base_url}/v1/jobs", headers=tenant.headers, timeout=30,
                             json={"type": "emotion", "input": {"text": "What a wonderful surprise, thank you!"}})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    stream = open_stream(events_stack.base_url, f"/v1/jobs/{job_id}/events", tenant.headers)
    items = read_http_events(stream)
    first = next(item for item in items if isinstance(item, Event))
    assert (first.event, first.data) == ("status", {"job_id": job_id, "status": "queued"})
    events_stack.start_worker()
    events = [first, *until_done(items)]
    stream.close()
    assert [(event.event, event.data.get("status")) for event in events] == [
        ("status", "queued"), ("status", "running"), ("status", "succeeded"), ("done", "succeeded")]
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    stored = requests.get(f"{events_stack.base_url}/v1/jobs/{job_id}", headers=tenant.headers, timeout=30).json()
    assert events[-1].data == stored


def test_a_reconnect_with_last_event_id_misses_nothing(events_stack, tenant):
    events_stack.start_worker()
    rows = [f"Entry {n}: a calm walk by the sea." for n in range(200)]
    created = requests.post(f"{events_stack.base_url}/v1/batches", json=rows, headers=tenant.headers, timeout=60)
    assert created.status_code == 202, created.text
    path = f"/v1/batches/{created.json()['id']}/events"
    stream = open_stream(events_stack.base_url, path, tenant.headers)
    before = []
    for item in read_http_events(stream):
        if isinstance(item, Event):
            before.append(item)
            if len(before) == 2 or item.event == "done":
                break
    stream.close()
    stream = open_stream(events_stack.base_url, path, tenant.headers, last_event_id=before[-1].id)
    after = until_done(read_http_events(stream)) if before[-1].event != "done" else []
    stream.close()
    history = until_done(read_http_events(open_stream(events_stack.base_url, path, tenant.headers, 0)))
    seen = [event for event in before + after if event.event != "done"]
    stored = [event for event in history if event.event != "done"]
    assert [event.id for event in seen if event.id > before[0].id] == [
        event.id for event in stored if event.id > before[0].id]
    assert (after or before)[-1].event == "done"


def test_a_batch_reports_progress_within_chunks_until_done(events_stack, tenant):
    events_stack.start_worker()
    rows = [f"Day {n}: I felt {'hopeful' if n % 2 else 'tired'} after work." for n in range(120)]
    created = requests.post(f"{events_stack.base_url}/v1/batches", json=rows, headers=tenant.headers, timeout=60)
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]
    stream = open_stream(events_stack.base_url, f"/v1/batches/{batch_id}/events", tenant.headers)
    events = until_done(read_http_events(stream))
    stream.close()
    progress, done = events[:-1], events[-1]
    assert done.event == "done" and done.data["status"] == "completed" and done.data["counts"]["succeeded"] == 120
    assert {event.event for event in progress} == {"progress"}
    fractions = [event.data["progress"] for event in progress]
    assert fractions == sorted(fractions)
    finished = {event.data["counts"]["succeeded"] for event in progress}
    assert any(0 < count < 120 and count % 64 for count in finished), finished
    assert all(event.data["batch_id"] == batch_id for event in progress)


def test_transcription_progress_increases_and_ends_at_the_total(events_stack, tenant, spoken_clips):
    events_stack.start_worker()
    job = post_upload(events_stack.base_url, tenant.headers, spoken_clips["wav"])
    stream = open_stream(events_stack.base_url, f"/v1/jobs/{job['id']}/events", tenant.headers, 0)
    events = until_done(read_http_events(stream))
    stream.close()
    progress = [event.data for event in events if event.event == "progress"]
    assert progress, [event.event for event in events]
    done_seconds = [item["seconds_done"] for item in progress]
    assert done_seconds == sorted(set(done_seconds))
    total = progress[-1]["seconds_total"]
    assert done_seconds[-1] == total and all(item["seconds_total"] == total for item in progress)
    finished = events[-1].data
    assert finished["status"] == "succeeded", finished
    assert abs(finished["result"]["duration_s"] - total) < 0.01
