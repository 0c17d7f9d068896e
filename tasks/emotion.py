"""Emotion jobs: answered from the result cache where possible, the rest by the classifier.

Interactive jobs arrive on the model queue (`cpu` or `gpu`) in messages of one or more job ids
(the jobs an API process committed together share one, ``tasks.enqueue``); the worker gathers
messages into batches (``workers.batching``) and the job lifecycle (``tasks.lifecycle``) hands
a batch's claimed jobs to :func:`analyze` at once. Bulk chunks (``tasks.bulk``) go through the
same handler. The texts that miss the cache run through the model in length-sorted forward
passes; a text that makes the model fail fails its own job only.
"""
from __future__ import annotations

import logging
import time

from db.jobs import ClaimedJob, JobOutcome
from tasks.lifecycle import BatchReport, JobFailure, failure_of
from tasks.models import emotion_model
from tasks.services import Services
from workers.batching import forward_passes
from workers.result_cache import result_cache

log = logging.getLogger(__name__)


def analyze(services: Services, jobs: list[ClaimedJob], report: BatchReport) -> list[JobOutcome | JobFailure]:
    settings = services.settings
    try:
        classifier = emotion_model(settings)
    except JobFailure as failure:
        return [failure] * len(jobs)
    texts = [job.input["text"] for job in jobs]
    cache = result_cache(settings, classifier)
    cached = cache.get_many(texts)
    misses = list(dict.fromkeys(text for text, hit in zip(texts, cached) if hit is None))
    report.cache_hits += sum(hit is not None for hit in cached)
    report.cache_misses += len(texts) - sum(hit is not None for hit in cached)

    started = time.perf_counter()
    fresh = infer(classifier, misses, report.max_size, settings.batch_max_tokens, report)
    elapsed = time.perf_counter() - started
    report.inference_s += elapsed

    answers = dict(zip(misses, fresh))
    outcomes: list[JobOutcome | JobFailure] = []
    for text, hit in zip(texts, cached):
        answer = {**hit, "cached": True} if hit is not None else answers[text]
        if isinstance(answer, JobFailure):
            outcomes.append(answer)
            continue
        result = answer if hit is not None else {**answer, "cached": False}
        outcomes.append(JobOutcome(result, classifier.name, classifier.version, emotion=result))
    computed = [(text, answer) for text, answer in zip(misses, fresh) if isinstance(answer, dict)]
    cache.put_many([text for text, _ in computed], [result for _, result in computed])
    log.info("emotion batch on %s: %d jobs, %d from cache, passes %s, %.0f ms model time", report.queue,
             len(jobs), len(jobs) - len(misses), report.passes[-8:], elapsed * 1000)
    return outcomes


def infer(classifier, texts: list[str], max_size: int, max_tokens: int, report: BatchReport
          ) -> list[dict | JobFailure]:
    """A result or a JobFailure per text. A call that raises is retried text by text, so one bad text fails alone.

    Without a token budget one ``predict`` call takes every text: it sorts them by their exact
    token count and cuts passes of at most ``max_size`` where padding would cost more than
    another pass (``workers.emotion.passes``).
    """
    outcomes: list[dict | JobFailure | None] = [None] * len(texts)
    if max_tokens > 0:
        groups = forward_passes(texts, max_size, max_tokens, classifier.max_length)
    else:
        groups = [list(range(len(texts)))] if texts else []
    for indices in groups:
        batch = [texts[i] for i in indices]
        try:
            results = classifier.predict(batch, batch_size=max_size)
            report.passes.extend(classifier.last_pass_sizes)
        except Exception as error:  # noqa: BLE001 - isolate the text that fails
            results = [failure_of(error)] if len(batch) == 1 else [predict_one(classifier, text) for text in batch]
            report.passes.extend([1] * len(batch))
        for index, result in zip(indices, results):
            outcomes[index] = result
    return outcomes


def predict_one(classifier, text: str) -> dict | JobFailure:
    try:
        return classifier.predict([text], batch_size=1)[0]
    except Exception as error:  # noqa: BLE001 - reported on the job
        return failure_of(error)
