"""Celery task events for the messages of a batching task, so Flower and event monitors see them.

Celery's own strategy sends ``task-received`` as a message arrives and the request sends
``task-started``, ``task-succeeded`` or ``task-failed`` as the pool runs it. celery-batches
buffers messages in its own strategy and runs a batch as one call in the pool, so none of these
are sent and batched jobs (emotion jobs, bulk chunks) were invisible. The batching task
(``workers.batching.DynamicBatches``) sends them itself, per message, from the worker's main
process: received when buffered, started when its batch goes to a pool process, succeeded or
failed when the batch returns. A batch handed back to its queue is ``task-rejected`` (sent by
the request's own ``reject``). Each request sends only when the worker sends task events
(``worker_send_task_events``, ``-E``).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from celery import signals
from celery.utils.saferepr import saferepr


def received(request) -> None:
    """The fields Celery's default strategy sends with ``task-received``."""
    request.send_event(
        "task-received", name=request.name, args=request.argsrepr, kwargs=request.kwargsrepr,
        root_id=request.root_id, parent_id=request.parent_id, retries=request.request_dict.get("retries", 0),
        eta=None, expires=request.expires and request.expires.isoformat(),
    )


def started(requests: Sequence) -> float:
    """The batch went to a pool process; returns the time its runtime counts from."""
    for request in requests:
        request.send_event("task-started")
    return time.monotonic()


def succeeded(requests: Sequence, report: Any, since: float) -> None:
    """Each message of the batch shares the batch's report (counts and timings, never input text)."""
    runtime = time.monotonic() - since
    result = saferepr(report, maxlen=500)
    for request in requests:
        request.send_event("task-succeeded", result=result, runtime=runtime)


def failed(requests: Sequence, error: Any) -> None:
    for request in requests:
        request.send_event("task-failed", exception=saferepr(error, maxlen=500), traceback="")


@signals.task_received.connect
def _announce_buffered(sender=None, request=None, **_kwargs) -> None:
    """celery-batches sends this signal for each message it buffers, but not the event."""
    from workers.batching import DynamicBatches

    if request is not None and isinstance(request.task, DynamicBatches):
        received(request)
