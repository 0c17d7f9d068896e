"""The SDK on the live event streams (``GET /v1/jobs/{id}/events``, ``GET /v1/batches/{id}/events``).

Needs the API of branch `events`: run after it is merged.
"""
from __future__ import annotations

import samo


def test_a_jobs_events_arrive_in_order_and_end_with_done(sdk):
    job = sdk.jobs.create(text="What a wonderful surprise!")
    events = list(sdk.jobs.events(job))
    assert events[-1].event == "done"
    done = samo.Job.model_validate(events[-1].data)
    assert done.id == job.id and done.status == "succeeded"
    ids = [int(event.id) for event in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    statuses = [event.data["status"] for event in events if event.event == "status"]
    assert statuses == sorted(statuses, key=["queued", "running", "succeeded"].index)


def test_wait_follows_the_event_stream_instead_of_polling(sdk_stack, sdk_tenant):
    paths = []
    hooks = {"request": [lambda request: paths.append((request.method, request.url.path))]}
    with samo.Client(sdk_stack.base_url, sdk_tenant.api_key, event_hooks=hooks) as sdk:
        job = sdk.jobs.create(text="I finally finished the marathon.")
        done = sdk.jobs.wait(job, timeout=120)
    assert done.status == "succeeded"
    assert ("GET", f"/v1/jobs/{job.id}/events") in paths
    assert ("GET", f"/v1/jobs/{job.id}") not in paths


def test_a_finished_jobs_stream_answers_done_at_once(sdk):
    job = sdk.jobs.run(text="Calm and content.", timeout=120)
    events = list(sdk.jobs.events(job))
    assert [event.event for event in events][-1] == "done"
    assert samo.Job.model_validate(events[-1].data) == job


def test_a_batchs_progress_events_then_done(sdk):
    batch = sdk.batches.upload([f"Entry {n}: a good day." for n in range(60)])
    events = list(sdk.batches.events(batch))
    assert events[-1].event == "done"
    final = samo.Batch.model_validate(events[-1].data)
    assert final.status == "completed" and final.counts.succeeded == 60
    progress = [event.data["progress"] for event in events if event.event == "progress"]
    assert progress == sorted(progress) and all(0 <= value <= 1 for value in progress)
    assert sdk.batches.wait(batch, timeout=60) == final


def test_the_async_client_streams_events_too(sdk_stack, sdk_tenant):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def scenario():
        async with samo.AsyncClient(sdk_stack.base_url, sdk_tenant.api_key) as sdk:
            job = await sdk.jobs.create(text="Such good news.")
            return [event async for event in sdk.jobs.events(job)]

    with ThreadPoolExecutor(1) as pool:  # a session-scoped Playwright may hold this thread's event loop
        events = pool.submit(asyncio.run, scenario()).result()
    assert events[-1].event == "done" and events[-1].data["status"] == "succeeded"
