"""Sending jobs to the broker by task name: the API enqueues without importing any worker code."""
from __future__ import annotations

import logging
import uuid
import weakref
from contextlib import nullcontext
from typing import NamedTuple

from celery import Celery
from kombu import Producer

from config import tracing
from config.job_types import job_type as registered_type
from config.job_types import model_queue_of
from config.settings import DEFAULT_EMOTION_MODEL

log = logging.getLogger(__name__)

# Fail fast when the broker is down: the job is already stored and the requeue sweep sends it later.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


BULK_CHUNK_TASK = "tasks.bulk.process_chunk"


def enqueue_chunk(celery: Celery, batch_id: uuid.UUID, rows: list[int]) -> bool:
    """Publish one chunk of a batch (its items' row numbers) to the `bulk` queue; False if the broker failed."""
    try:
        celery.send_task(BULK_CHUNK_TASK, args=[str(batch_id), rows], retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception:  # noqa: BLE001 - the items stay stored; the stale-chunk sweep sends them later
        log.warning("could not enqueue a chunk of batch %s; the sweep will send it", batch_id, exc_info=True)
        return False
    return True


class OutgoingJob(NamedTuple):
    """A stored job to publish."""

    id: uuid.UUID | str
    type: str
    #: Characters of its text, which its message carries so that a worker batches by size.
    chars: int = 0
    #: The trace context it was submitted in (with tracing on), when published outside that request.
    trace: dict[str, str] | None = None
    #: The emotion model its ``options.model`` names, which picks its queue (``config.job_types``).
    model: str = DEFAULT_EMOTION_MODEL


def outgoing(job: tuple) -> OutgoingJob:
    return job if isinstance(job, OutgoingJob) else OutgoingJob(*job)


def enqueue_job(celery: Celery, job_id: uuid.UUID, job_type: str, chars: int = 0,
                model: str | None = DEFAULT_EMOTION_MODEL) -> bool:
    """Publish one job; False (logged) if the broker could not be reached."""
    return enqueue_jobs(celery, [OutgoingJob(job_id, job_type, chars, model=model_of({"model": model}))])


def model_of(options: dict | None) -> str:
    """The emotion model a job's options name (``default`` when none)."""
    return (options or {}).get("model") or DEFAULT_EMOTION_MODEL


def text_chars(job_input: dict | None) -> int:
    """The size of a job's text input, which its message carries so that a worker batches by size."""
    text = (job_input or {}).get("text")
    return len(text) if isinstance(text, str) else 0


#: (task name, model queue) pairs whose queue each Celery app has declared on the broker already.
_declared_tasks: weakref.WeakKeyDictionary[Celery, set[tuple[str, str | None]]] = weakref.WeakKeyDictionary()


def forget_declared_queues(celery: Celery) -> None:
    """Declare each queue again with its next message: after the broker lost its data, its
    bindings too, and a message to an undeclared queue is dropped."""
    _declared_tasks.pop(celery, None)


#: Job ids per message of a batched type; a larger group is sent in several messages.
MAX_JOBS_PER_MESSAGE = 64


class Message(NamedTuple):
    task: str
    args: list[str]
    #: Characters of the message's texts, for batched types (``workers.batching.JobBatches.jobs_in``).
    chars: int | None = None
    #: The queue of the jobs' emotion model; None: the task's route (``config.celery.task_routes``).
    queue: str | None = None


def model_queue(celery: Celery, task: str, model: str) -> str | None:
    """The queue of ``task``'s jobs for emotion model ``model``: None (the task's own route) for the default."""
    if model == DEFAULT_EMOTION_MODEL:
        return None
    route = celery.conf.task_routes.get(task) or {}
    return model_queue_of(route.get("queue") or celery.conf.task_default_queue, model)


def broker_messages(jobs: list[tuple], celery: Celery | None = None) -> list[Message]:
    """The messages that carry ``jobs`` (:class:`OutgoingJob`, or a plain ``(id, type)``).

    Jobs of a batched type share messages (their task takes ``(*job_ids)``: the worker
    batches messages anyway, and one message per committed group costs the API one message's
    work instead of one per job), which say how many characters their texts hold; other jobs
    get one message each. A job for an emotion model other than the default goes to that
    model's queue (``celery``'s routes name the task's own).
    """
    batched: dict[tuple[str, str | None], list[tuple[str, int]]] = {}
    messages = []
    for job_id, type_name, chars, _trace, model in map(outgoing, jobs):
        entry = registered_type(type_name)
        queue = model_queue(celery, entry.task, model) if celery is not None and entry.takes_model_choice else None
        if entry.batched:
            batched.setdefault((entry.task, queue), []).append((str(job_id), chars))
        else:
            messages.append(Message(entry.task, [str(job_id)], queue=queue))
    for (task, queue), sized in batched.items():
        for start in range(0, len(sized), MAX_JOBS_PER_MESSAGE):
            group = sized[start:start + MAX_JOBS_PER_MESSAGE]
            messages.append(Message(task, [job_id for job_id, _ in group], sum(chars for _, chars in group), queue))
    return messages


def job_traces(jobs: list[tuple]) -> dict[str, dict[str, str]]:
    """Each job's trace context (with tracing on): the one it came with, else the caller's current one."""
    if not tracing.enabled():
        return {}
    jobs = [outgoing(job) for job in jobs]
    current = tracing.carrier() if any(job.trace is None for job in jobs) else None
    traces = {str(job.id): job.trace or current for job in jobs}
    return {job_id: trace for job_id, trace in traces.items() if trace}


def trace_options(job_ids: list[str], traces: dict[str, dict[str, str]]) -> tuple[dict | None, dict | None]:
    """(the message's headers, the context to publish it in) for jobs ``job_ids``, with tracing on.

    The sampled jobs' contexts go under ``samo_traces``, and the message is published in the
    first one's (the Celery instrumentation's span then belongs to that trace). A message of
    jobs none of which is sampled carries only the first one's ``traceparent`` ("not sampled"),
    so the worker starts no trace, and skips the publish span (``config.tracing``).
    """
    sampled = {job_id: traces[job_id] for job_id in job_ids if job_id in traces and tracing.is_sampled(traces[job_id])}
    if sampled:
        return {tracing.TRACES_HEADER: sampled}, next(iter(sampled.values()))
    first = next((traces[job_id] for job_id in job_ids if job_id in traces), None)
    return ({"traceparent": first["traceparent"]} if first and first.get("traceparent") else None), None


def enqueue_jobs(celery: Celery, jobs: list[tuple], producer: Producer | None = None) -> bool:
    """Publish jobs (:class:`OutgoingJob`, or a plain ``(id, type)``) in one broker round trip (kombu's
    producer batch, for more than one message);
    False (logged) if the broker failed. ``producer``: one the caller holds (:class:`JobPublisher`),
    else one is taken from the app's pool for this call.

    All or nothing as far as the caller knows: on False, treat every job as unpublished (the
    sweep sends them; a job published twice is claimed once). A queue is declared with the first
    message sent to it; after that, declaring again per message is skipped, as it costs more
    than the publish itself.
    """
    declared = _declared_tasks.setdefault(celery, set())
    messages = broker_messages(jobs, celery)
    traces = job_traces(jobs)
    try:
        with (celery.producer_or_acquire(producer) as producer,
              producer.batch() if len(messages) > 1 else nullcontext()):
            for task, args, chars, queue in messages:
                options = {"declare": []} if (task, queue) in declared else {}
                if queue is not None:
                    options["queue"] = queue
                if chars:
                    options["kwargs"] = {"chars": chars}
                trace = None
                if traces:
                    headers, trace = trace_options(args, traces)
                    if headers:
                        options["headers"] = headers
                with tracing.within(trace) if trace else nullcontext():
                    celery.send_task(task, args=args, argsrepr=repr(args), producer=producer,
                                     retry=True, retry_policy=PUBLISH_RETRY_POLICY, **options)
    except Exception:  # noqa: BLE001 - any broker failure leaves the stored jobs for the sweep
        log.warning("could not enqueue %d job(s) (first %s); the requeue sweep will send them", len(jobs),
                    jobs[0][0] if jobs else None, exc_info=True)
        return False
    declared.update((message.task, message.queue) for message in messages)
    return True


class JobPublisher:
    """:func:`enqueue_jobs` for one thread (the API's job writer), on a producer it keeps.

    Taking a producer from the app's pool for each publish re-binds its channel every time, a
    sizeable share of a one-message publish (docs/benchmarks.md). After a
    failed publish the producer goes back to the pool and the next publish takes another one,
    so a broken connection is not kept.
    """

    def __init__(self, celery: Celery) -> None:
        self.celery = celery
        self._producer: Producer | None = None

    def __call__(self, jobs: list[tuple]) -> bool:
        if self._producer is None:
            self._producer = self.celery.producer_pool.acquire(block=True)
        published = enqueue_jobs(self.celery, jobs, self._producer)
        if not published:
            self.release()
        return published

    def release(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.release()


ERASE_SUBJECT_TASK = "tasks.erasures.erase_subject"


def enqueue_erasure(celery: Celery, erasure_id: uuid.UUID) -> bool:
    """Publish an erasure to the `maintenance` queue; False if the broker failed (the sweep sends it later)."""
    try:
        celery.send_task(ERASE_SUBJECT_TASK, args=[str(erasure_id)], retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception:  # noqa: BLE001 - the erasure is stored: tasks.erasures.resume_erasures sends it
        log.warning("could not enqueue erasure %s; the sweep will send it", erasure_id, exc_info=True)
        return False
    return True
