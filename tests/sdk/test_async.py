"""``samo.AsyncClient``: the same resources, awaited, against the real API."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

import samo


def run(coroutine):
    """On a thread of its own: a browser test's session-scoped Playwright may hold this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_create_wait_list_and_a_problem(sdk_stack, sdk_tenant):
    async def scenario():
        async with samo.AsyncClient(sdk_stack.base_url, sdk_tenant.api_key) as sdk:
            jobs = await asyncio.gather(*(sdk.jobs.create(text=text) for text in ("So happy!", "So tired.")))
            done = await asyncio.gather(*(sdk.jobs.wait(job, timeout=120) for job in jobs))
            with pytest.raises(samo.NotFoundError):
                await sdk.jobs.get("00000000-0000-0000-0000-000000000000")
            ran = await sdk.jobs.run(text="Finally some rest.", timeout=120)
            listed = [job.id async for job in sdk.jobs.list(page_size=1)]
            return jobs, done, listed, ran

    jobs, done, listed, ran = run(scenario())
    assert all(job.status == "succeeded" and job.emotion is not None for job in done)
    assert listed[0] == ran.id and set(listed[1:]) == {job.id for job in jobs} and ran.status == "succeeded"


def test_upload_from_a_generator_and_iterate_results(sdk_stack, sdk_tenant):
    async def scenario():
        async with samo.AsyncClient(sdk_stack.base_url, sdk_tenant.api_key, auth="token") as sdk:
            batch = await sdk.batches.upload({"text": f"Day {n} was good.", "id": str(n)} for n in range(7))
            await sdk.batches.wait(batch, timeout=180)
            return [line async for line in sdk.batches.iter_results(batch)]

    lines = run(scenario())
    assert [line.id for line in lines] == [str(n) for n in range(7)]
    assert all(line.result is not None for line in lines)
