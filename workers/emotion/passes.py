"""Cutting length-sorted texts into forward passes at the least estimated cost.

A pass costs a fixed overhead (the launch of every layer, whatever the batch) plus a part
proportional to the tokens it computes, padding included: ``texts x longest``. For the shipped
model on a small CPU the fixed part is worth a few dozen padded tokens
(``DEFAULT_OVERHEAD_TOKENS`` below; docs/benchmarks.md has the measurement). Cutting a sorted
list into equal slices of ``max_size`` ignores both: a slice mixing a 60-token text with
fifteen 15-token ones pads 675 tokens it did not need, more than an extra pass costs.
:func:`plan_passes` picks the cut points that minimise
``passes x overhead + padded tokens`` (a dynamic programme over the sorted lengths, O(n x
max_size)). On a GPU the fixed part dominates, so its overhead is set much higher and the plan
falls back to few, full passes.
"""
from __future__ import annotations

from collections.abc import Sequence

#: Fixed cost of one forward pass, in padded tokens, by device type (SAMO_PASS_OVERHEAD_TOKENS overrides).
DEFAULT_OVERHEAD_TOKENS = {"cpu": 32, "cuda": 2048}


def default_overhead_tokens(device_type: str) -> int:
    return DEFAULT_OVERHEAD_TOKENS.get(device_type, DEFAULT_OVERHEAD_TOKENS["cuda"])


def plan_passes(lengths: Sequence[int], max_size: int, overhead_tokens: int) -> list[tuple[int, int]]:
    """``(start, stop)`` slices of ``lengths`` (sorted longest first), each at most ``max_size`` long."""
    n = len(lengths)
    if n == 0:
        return []
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for stop in range(1, n + 1):
        for start in range(max(0, stop - max_size), stop):
            cost = best[start] + overhead_tokens + (stop - start) * lengths[start]
            if cost < best[stop]:
                best[stop], cut[stop] = cost, start
    slices = []
    stop = n
    while stop > 0:
        slices.append((cut[stop], stop))
        stop = cut[stop]
    return slices[::-1]
