"""Dynamic batching with real workers, the database and Redis: concurrent jobs share forward passes,
repeated texts come from the result cache, and a worker killed mid-batch loses nothing."""
from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import func, select

from db.models import Batch, BatchStatus, EmotionScore, Job, JobStatus
from tests.support.http import post_job
from tests.support.jobs import stored_job
from tests.support.polling import wait_for_job, wait_until
from tests.support.processes import CeleryWorker
from tests.support.stack import isolated_stack
from workers.result_cache import ResultCache

PHRASES = ["Thank you so much for your help!", "I am so angry right now.", "This is the best day ever",
           "I'm worried about the exam tomorrow", "What a disgusting thing to say", "lol that is hilarious",
           "I miss her so much", "Wow, I did not expect that at all!"]


@pytest.fixture
def stack(batching_stack):
    return batching_stack


def batch_sizes(metrics_text: str, queue: str) -> tuple[float, float, float]:
    """(forward passes, texts, passes of one text) from the worker's batch-size histogram."""
    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} (\S+)$", metrics_text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    return (value(f'samo_worker_batch_size_count{{queue="{queue}"}}'),
            value(f'samo_worker_batch_size_sum{{queue="{queue}"}}'),
            value(f'samo_worker_batch_size_bucket{{le="1.0",queue="{queue}"}}'))


def score_count(db_session, job_id: str) -> int:
    return db_session.scalar(select(func.count()).select_from(EmotionScore)
                             .where(EmotionScore.job_id == uuid.UUID(job_id)))


def test_concurrent_submissions_are_served_in_batches_larger_than_one(stack, make_tenant, db_session):
    tenant = make_tenant()
    texts = [f"{PHRASES[i % len(PHRASES)]} #{uuid.uuid4().hex[:6]}" for i in range(24)]
    passes_before, texts_before, singles_before = batch_sizes(stack.metrics("cpu"), "cpu")

    with ThreadPoolExecutor(len(texts)) as pool:
        jobs = list(pool.map(lambda text: post_job(stack.base_url, tenant.headers, text), texts))
        done = list(pool.map(lambda job: wait_for_job(stack.base_url, job["id"], tenant.headers), jobs))

    assert [job["status"] for job in done] == ["succeeded"] * len(texts), done
    assert all(job["result"]["cached"] is False and job["attempts"] == 1 for job in done)
    assert all(score_count(db_session, job["id"]) == len(job["result"]["probabilities"]) for job in done)
    passes, inferred, singles = (after - before for after, before in zip(
        batch_sizes(stack.metrics("cpu"), "cpu"), (passes_before, texts_before, singles_before)))
    assert inferred == len(texts)
    assert passes < len(texts), f"{passes} forward passes for {len(texts)} jobs: nothing was batched"
    assert singles < passes, "every forward pass held a single text"


def test_a_repeated_text_is_answered_from_the_cache(stack, make_tenant):
    tenant = make_tenant()
    text = f"I can't believe how kind everyone has been #{uuid.uuid4().hex[:6]}"
    first = wait_for_job(stack.base_url, post_job(stack.base_url, tenant.headers, text)["id"], tenant.headers)
    second = wait_for_job(stack.base_url, post_job(stack.base_url, tenant.headers, text)["id"], tenant.headers)
    assert (first["result"]["cached"], second["result"]["cached"]) == (False, True)
    assert second["result"]["probabilities"] == first["result"]["probabilities"]
    assert second["model"] == first["model"]
    assert re.search(r'^samo_worker_result_cache_lookups_total\{outcome="hit"\} [1-9]', stack.metrics("cpu"),
                     re.MULTILINE)


def test_the_cache_never_answers_for_another_model_version_or_tenant(redis_url, settings):
    model = SimpleNamespace(name="minilm-goemotions", version="aaaa-int8", max_length=128)
    retrained = SimpleNamespace(name="minilm-goemotions", version="bbbb-int8", max_length=128)
    tenant = uuid.uuid4()
    text = (tenant, f"same text #{uuid.uuid4().hex}")
    ResultCache.for_model(settings, model).put_many([text], [{"top_emotion": "joy"}])
    assert ResultCache.for_model(settings, model).get_many([text, (tenant, "unseen")]) == [{"top_emotion": "joy"}, None]
    assert ResultCache.for_model(settings, retrained).get_many([text]) == [None]
    shorter = SimpleNamespace(**{**vars(model), "max_length": 64})
    assert ResultCache.for_model(settings, shorter).get_many([text]) == [None]
    assert ResultCache.for_model(settings, model).get_many([(uuid.uuid4(), text[1])]) == [None]


def test_workers_killed_mid_batch_lose_no_job_and_store_each_result_once(settings, make_tenant, db_session):
    """The slow workers' model sleeps 30 s per forward pass; they are SIGKILLed while one runs.

    They load the model only inside that pass (no preload): the jobs are claimed first, so
    they are killed mid-batch all the same, and start in seconds.
    """
    slow_env = {"SAMO_TEST_PREDICT_DELAY_S": "30", "SAMO_CPU_BATCH_MAX_WAIT_MS": "500", "SAMO_PRELOAD_MODELS": ""}
    with isolated_stack(settings, {"cpu": ("cpu",), "bulk": ("bulk",)}, module="tests.support.slow_worker",
                        extra_env=slow_env, start_workers=False, bulk_chunk_size=10) as slow:
        tenant = make_tenant()
        jobs = [post_job(slow.base_url, tenant.headers, f"{phrase} #{uuid.uuid4().hex[:6]}") for phrase in PHRASES[:6]]
        batch = requests.post(f"{slow.base_url}/v1/batches", headers=tenant.headers, timeout=30,
                              json=[f"bulk item {i} {PHRASES[i % 8]}" for i in range(30)]).json()
        for worker in slow.workers.values():
            worker.start()
        try:
            wait_until(lambda: any(stored_job(db_session, job["id"]).status == JobStatus.RUNNING for job in jobs),
                       timeout_s=120, message="a batch running")
            wait_until(lambda: db_session.scalar(
                select(func.count()).select_from(Job).where(Job.batch_id == uuid.UUID(batch["id"]),
                                                            Job.status == JobStatus.RUNNING)) == 10,
                timeout_s=120, message="a bulk chunk running")
            time.sleep(0.5)
        finally:
            for worker in slow.workers.values():
                worker.kill()
        killed = {job["id"] for job in jobs if stored_job(db_session, job["id"]).status == JobStatus.RUNNING}
        assert len(killed) >= 2, "the killed batch held a single job"

        survivor = CeleryWorker({**slow.env, "SAMO_PRELOAD_MODELS": "emotion"}, queues=("cpu", "bulk"))
        survivor.start()
        try:
            timeout = settings.broker_visibility_timeout_s + 120
            done = [wait_for_job(slow.base_url, job["id"], tenant.headers, timeout_s=timeout) for job in jobs]
            wait_until(lambda: db_session.get(Batch, uuid.UUID(batch["id"])) is not None and _batch_status(
                db_session, batch["id"]) == BatchStatus.COMPLETED, timeout_s=timeout, message="batch completed")
        finally:
            survivor.stop()

    assert [job["status"] for job in done] == ["succeeded"] * len(jobs)
    for job in done:
        assert job["attempts"] == (2 if job["id"] in killed else 1), job
        assert score_count(db_session, job["id"]) == len(job["result"]["probabilities"])
    items = db_session.execute(
        select(Job.id, Job.status, Job.attempts).where(Job.batch_id == uuid.UUID(batch["id"]))).all()
    assert {status for _, status, _ in items} == {JobStatus.SUCCEEDED}
    assert sorted(attempts for _, _, attempts in items) == [1] * 20 + [2] * 10
    labels = len(done[0]["result"]["probabilities"])
    scores = db_session.scalar(select(func.count()).select_from(EmotionScore)
                               .where(EmotionScore.job_id.in_([item_id for item_id, _, _ in items])))
    assert scores == labels * len(items)


def _batch_status(db_session, batch_id) -> BatchStatus:
    db_session.expire_all()
    return db_session.get(Batch, uuid.UUID(batch_id)).status
