"""Handling together what concurrent requests of one API process need at the same moment.

A request hands in its item and waits. One background thread takes every item waiting at
that moment and handles them as one group (one Redis pipeline, one INSERT), then wakes each
request with its own outcome. A lone item waits for nothing: the thread starts on it as soon
as it arrives (there is no timer to fill a group); under load, items that arrive while a group
is being handled form the next one, so groups grow by themselves and the round trips per
request shrink.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from api.fastpath.background import BackgroundThread

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass
class _Waiting(Generic[Item]):
    item: Item
    done: threading.Event = field(default_factory=threading.Event)
    outcome: object = None


class Coalescer(Generic[Item, Outcome]):
    """``handle(items)`` returns one outcome per item, in order: a value, or an exception that
    :meth:`submit` raises for that item alone. If ``handle`` itself raises, every item of the
    group gets that exception."""

    def __init__(self, handle: Callable[[list[Item]], list[Outcome | BaseException]], name: str,
                 max_group: int) -> None:
        self.handle = handle
        self.max_group = max_group
        self._waiting: queue.SimpleQueue[_Waiting[Item]] = queue.SimpleQueue()
        self._thread = BackgroundThread(self._run, name)

    def submit(self, item: Item) -> Outcome:
        waiting = _Waiting(item)
        self._thread.ensure_running()
        self._waiting.put(waiting)
        waiting.done.wait()
        if isinstance(waiting.outcome, BaseException):
            raise waiting.outcome
        return waiting.outcome

    def _run(self) -> None:
        while True:
            group = [self._waiting.get()]
            while len(group) < self.max_group:
                try:
                    group.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                outcomes = self.handle([waiting.item for waiting in group])
                if len(outcomes) != len(group):
                    raise RuntimeError(f"{self._thread.name}: {len(outcomes)} outcomes for {len(group)} items")
            except BaseException as error:  # noqa: BLE001 - every waiter must wake, whatever happened
                outcomes = [error] * len(group)
            for waiting, outcome in zip(group, outcomes):
                waiting.outcome = outcome
                waiting.done.set()
