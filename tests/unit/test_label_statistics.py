"""The statistics of insights and correlations, checked against direct computations on samples."""
from __future__ import annotations

import math
import random
import statistics

import pytest

from db.label_statistics import (
    LabelSums,
    compare_periods,
    family_z,
    hedges_g,
    jensen_shannon,
    label_distribution,
    lift,
    over_represented,
    shift_score,
)


def sums_of(values: list[float], threshold: float = 0.5) -> LabelSums:
    return LabelSums(len(values), sum(values), sum(v * v for v in values), sum(1 for v in values if v >= threshold))


def test_mean_variance_and_share_follow_from_the_sums():
    values = [0.1, 0.4, 0.35, 0.9, 0.62]
    sums = sums_of(values)
    assert sums.mean == pytest.approx(statistics.mean(values))
    assert sums.variance == pytest.approx(statistics.variance(values))
    assert sums.share == pytest.approx(2 / 5)
    assert LabelSums(0, 0.0, 0.0, 0).mean is None
    assert LabelSums(1, 0.3, 0.09, 0).variance is None


def test_rounding_in_the_sums_never_makes_a_variance_negative():
    assert LabelSums(3, 0.3, 0.03 - 1e-15, 0).variance == 0.0


def test_hedges_g_is_the_corrected_standardised_mean_difference():
    window, baseline = [0.8, 0.7, 0.9, 0.65, 0.75], [0.2, 0.3, 0.25, 0.4, 0.1, 0.35]
    n1, n2 = len(window), len(baseline)
    pooled = ((n1 - 1) * statistics.variance(window) + (n2 - 1) * statistics.variance(baseline)) / (n1 + n2 - 2)
    expected = (1 - 3 / (4 * (n1 + n2) - 9)) * (statistics.mean(window) - statistics.mean(baseline)) / math.sqrt(pooled)
    assert hedges_g(sums_of(window), sums_of(baseline)) == pytest.approx(expected)
    assert hedges_g(sums_of(baseline), sums_of(window)) == pytest.approx(-expected)


def test_no_effect_size_without_spread_or_with_one_entry():
    assert hedges_g(sums_of([0.5, 0.5]), sums_of([0.5, 0.5, 0.5])) is None
    assert hedges_g(sums_of([0.5]), sums_of([0.1, 0.2])) is None


def test_jensen_shannon_of_known_distributions():
    assert jensen_shannon({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == pytest.approx(0.0)
    assert jensen_shannon({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)
    first, second = {"a": 1.0, "b": 0.0}, {"a": 0.5, "b": 0.5}
    expected = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25))
    assert jensen_shannon(first, second) == pytest.approx(expected)
    assert jensen_shannon(second, first) == pytest.approx(expected)


def test_label_distribution_scales_means_to_one():
    assert label_distribution({"a": 0.6, "b": 0.2}) == pytest.approx({"a": 0.75, "b": 0.25})
    assert label_distribution({"a": 0.0, "b": 0.0}) is None


def periods(rng: random.Random, window_joy: float, baseline_joy: float, n: int = 30):
    def period(joy: float) -> dict[str, LabelSums]:
        return {"joy": sums_of([min(1, max(0, rng.gauss(joy, 0.1))) for _ in range(n)]),
                "sadness": sums_of([min(1, max(0, rng.gauss(1 - joy, 0.1))) for _ in range(n)]),
                "neutral": sums_of([min(1, max(0, rng.gauss(0.3, 0.1))) for _ in range(n)])}
    return period(window_joy), period(baseline_joy)


def test_a_turn_from_joy_to_sadness_is_a_large_shift_with_claims_both_ways():
    window, baseline = periods(random.Random(7), window_joy=0.15, baseline_joy=0.85)
    changes = {change.label: change for change in compare_periods(window, baseline)}
    assert changes["joy"].direction == "fell"
    assert changes["sadness"].direction == "rose"
    assert changes["neutral"].direction is None
    assert shift_score(window, baseline) > 0.2


def test_two_periods_of_the_same_process_claim_nothing():
    window, baseline = periods(random.Random(11), window_joy=0.6, baseline_joy=0.6)
    assert [change.direction for change in compare_periods(window, baseline)] == [None, None, None]
    assert shift_score(window, baseline) < 0.01


def test_family_z_is_bonferroni():
    assert family_z(1) == pytest.approx(1.959964, abs=1e-5)
    assert family_z(28) == pytest.approx(statistics.NormalDist().inv_cdf(1 - 0.05 / 56))


def test_lift_and_its_log_ratio_interval():
    found = lift(30, 50, 20, 100, z=1.96)
    assert (found.passes_with, found.with_tag, found.passes_without, found.without_tag) == (30, 50, 20, 100)
    assert found.lift == pytest.approx(3.0)
    se = math.sqrt(1 / 30 - 1 / 50 + 1 / 20 - 1 / 100)
    assert found.interval == pytest.approx((3 * math.exp(-1.96 * se), 3 * math.exp(1.96 * se)))


def test_a_zero_count_gets_a_finite_interval():
    found = lift(5, 10, 0, 40, z=1.96)
    assert (found.passes_with, found.with_tag, found.passes_without, found.without_tag) == (5, 10, 0, 40)
    assert math.isfinite(found.lift) and math.isfinite(found.interval[1])
    assert found.interval[0] > 1


def planted_entries(rng: random.Random, n: int = 400):
    """Tags at random; ``joy`` passes in most entries tagged ``gym`` and few others."""
    entries = []
    for _ in range(n):
        tags = frozenset(tag for tag in ("gym", "work", "poor-sleep", "place=home") if rng.random() < 0.3)
        passed = set()
        if rng.random() < (0.7 if "gym" in tags else 0.15):
            passed.add("joy")
        if rng.random() < 0.2:
            passed.add("sadness")
        entries.append((tags, frozenset(passed)))
    return entries


def test_a_planted_tag_label_association_is_found_alone():
    findings, tested = over_represented(planted_entries(random.Random(3)), ["joy", "sadness"], min_support=10)
    assert [(finding.tag, finding.label) for finding in findings] == [("gym", "joy")]
    assert tested == 8


def test_shuffled_tags_find_nothing():
    rng = random.Random(5)
    entries = planted_entries(rng)
    tags = [tags for tags, _ in entries]
    rng.shuffle(tags)
    shuffled = [(tag_set, passed) for tag_set, (_, passed) in zip(tags, entries, strict=True)]
    assert over_represented(shuffled, ["joy", "sadness"], min_support=10)[0] == []


def test_tags_without_support_are_not_tested():
    entries = [(frozenset({"rare"}), frozenset({"joy"}))] * 4 + [(frozenset(), frozenset())] * 50
    assert over_represented(entries, ["joy"], min_support=10) == ([], 0)
