"""The forward-pass planner: cut points that trade padding against the fixed cost of a pass."""
from __future__ import annotations

import pytest

from workers.emotion.passes import plan_passes


def padded_cost(lengths, passes, overhead):
    return sum(overhead + (stop - start) * lengths[start] for start, stop in passes)


def test_equal_lengths_take_as_few_passes_as_the_size_allows():
    assert len(plan_passes([10] * 70, 32, 32)) == 3


def test_one_long_text_gets_a_pass_of_its_own_when_padding_would_cost_more():
    lengths = [60] + [15] * 15
    assert plan_passes(lengths, 32, 32) == [(0, 1), (1, 16)]
    assert plan_passes(lengths, 32, 10_000) == [(0, 16)]


def test_passes_cover_every_text_once_in_order_and_respect_the_size():
    lengths = sorted([3, 40, 7, 7, 22, 90, 5, 12, 12, 64, 30, 8] * 5, reverse=True)
    passes = plan_passes(lengths, 8, 32)
    assert passes[0][0] == 0 and passes[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(passes, passes[1:]))
    assert all(0 < stop - start <= 8 for start, stop in passes)


@pytest.mark.parametrize("overhead", [0, 8, 32, 256])
def test_the_plan_is_never_worse_than_equal_slices(overhead):
    lengths = sorted([3, 40, 7, 7, 22, 90, 5, 12, 12, 64, 30, 8] * 6, reverse=True)
    slices = [(start, min(start + 16, len(lengths))) for start in range(0, len(lengths), 16)]
    assert padded_cost(lengths, plan_passes(lengths, 16, overhead), overhead) <= padded_cost(lengths, slices, overhead)


def test_nothing_to_plan():
    assert plan_passes([], 32, 32) == []
