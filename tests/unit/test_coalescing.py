"""Concurrent requests' items handled in groups (api.fastpath.coalescing), with real threads."""
from __future__ import annotations

import threading

import pytest

from api.fastpath.coalescing import Coalescer


def test_items_handed_in_while_a_group_is_handled_form_the_next_group():
    groups: list[list[int]] = []
    first_started, release_first = threading.Event(), threading.Event()

    def handle(items: list[int]) -> list[int]:
        groups.append(items)
        if len(groups) == 1:
            first_started.set()
            release_first.wait(5)
        return [item * 10 for item in items]

    coalescer = Coalescer(handle, "test-coalescer", max_group=100)
    answers: dict[int, int] = {}

    def submit(item: int) -> None:
        answers[item] = coalescer.submit(item)

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    assert first_started.wait(5)
    waiting = [threading.Thread(target=submit, args=(n,)) for n in range(1, 6)]
    for thread in waiting:
        thread.start()
    while coalescer._waiting.qsize() < 5:
        threading.Event().wait(0.01)
    release_first.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert groups[0] == [0]
    assert sorted(groups[1]) == [1, 2, 3, 4, 5], "the five that waited went together"
    assert answers == {n: n * 10 for n in range(6)}


def test_an_item_that_fails_fails_alone_and_a_failing_group_fails_every_item():
    def handle(items: list[str]) -> list:
        if "boom" in items:
            raise RuntimeError("the whole group failed")
        return [ValueError(item) if item.startswith("bad") else item.upper() for item in items]

    coalescer = Coalescer(handle, "test-coalescer", max_group=10)
    assert coalescer.submit("ok") == "OK"
    with pytest.raises(ValueError, match="bad-one"):
        coalescer.submit("bad-one")
    with pytest.raises(RuntimeError, match="whole group"):
        coalescer.submit("boom")
    assert coalescer.submit("still-working") == "STILL-WORKING"


def test_a_handler_that_answers_the_wrong_number_of_items_fails_the_group_instead_of_hanging():
    coalescer = Coalescer(lambda items: [], "test-coalescer", max_group=10)
    with pytest.raises(RuntimeError, match="0 outcomes for 1 items"):
        coalescer.submit("x")
