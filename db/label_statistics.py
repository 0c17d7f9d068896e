"""Descriptive statistics of the emotion model's outputs, computed from sums (no database, no numpy).

Two periods of a subject compared label by label (:func:`compare_periods`), the overall shift
between them (:func:`jensen_shannon`), and how much more often a label passes its threshold
when an entry carries a tag (:func:`lift`). Everything here reads counts and sums, the shape
``emotion_rollups`` keeps, so a year of entries costs what its sums cost. docs/analytics.md
gives the formulas; these are statistics of model outputs, not statements about a person.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

#: Familywise confidence of every interval: each of ``m`` intervals asked at once is drawn at
#: ``1 - FAMILY_ALPHA / m`` (Bonferroni), so noise rarely yields a claim anywhere in the family.
FAMILY_ALPHA = 0.05


def family_z(comparisons: int, alpha: float = FAMILY_ALPHA) -> float:
    """The two-sided normal quantile of one of ``comparisons`` intervals of familywise level ``alpha``."""
    return NormalDist().inv_cdf(1 - alpha / (2 * max(1, comparisons)))


@dataclass(frozen=True)
class LabelSums:
    """One label over one period: entries, sum of probabilities, sum of their squares, threshold passes."""

    entries: int
    total: float
    squares: float
    passes: int

    @property
    def mean(self) -> float | None:
        return self.total / self.entries if self.entries else None

    @property
    def variance(self) -> float | None:
        """The sample variance (``n - 1``); rounding in the sums may not make it negative."""
        if self.entries < 2:
            return None
        return max(0.0, (self.squares - self.total * self.total / self.entries) / (self.entries - 1))

    @property
    def share(self) -> float | None:
        return self.passes / self.entries if self.entries else None


@dataclass(frozen=True)
class LabelChange:
    """A label's window against its baseline: Hedges' g with its interval, and both periods' figures."""

    label: str
    window: LabelSums
    baseline: LabelSums
    effect_size: float | None
    interval: tuple[float, float] | None

    @property
    def direction(self) -> str | None:
        """``rose`` or ``fell`` when the whole interval is on one side of zero, else None (no claim)."""
        if self.interval is None:
            return None
        low, high = self.interval
        return "rose" if low > 0 else "fell" if high < 0 else None


def hedges_g(window: LabelSums, baseline: LabelSums) -> float | None:
    """Standardised mean difference (window minus baseline) over the pooled standard deviation,
    with Hedges' small-sample correction ``J = 1 - 3 / (4 (n1 + n2) - 9)``; None without spread."""
    n1, n2 = window.entries, baseline.entries
    if n1 < 2 or n2 < 2:
        return None
    pooled = ((n1 - 1) * window.variance + (n2 - 1) * baseline.variance) / (n1 + n2 - 2)
    if pooled <= 1e-12:
        return None
    correction = 1 - 3 / (4 * (n1 + n2) - 9)
    return correction * (window.mean - baseline.mean) / math.sqrt(pooled)


def g_standard_error(g: float, n1: int, n2: int) -> float:
    """The usual large-sample standard error of a standardised mean difference."""
    return math.sqrt((n1 + n2) / (n1 * n2) + g * g / (2 * (n1 + n2)))


def compare_label(label: str, window: LabelSums, baseline: LabelSums, z: float) -> LabelChange:
    g = hedges_g(window, baseline)
    interval = None
    if g is not None:
        half = z * g_standard_error(g, window.entries, baseline.entries)
        interval = (g - half, g + half)
    return LabelChange(label, window, baseline, g, interval)


def compare_periods(window: dict[str, LabelSums], baseline: dict[str, LabelSums]) -> list[LabelChange]:
    """Every label's change, with intervals familywise over the labels compared."""
    z = family_z(len(window))
    return [compare_label(label, sums, baseline[label], z) for label, sums in window.items()]


def label_distribution(means: dict[str, float]) -> dict[str, float] | None:
    """Mean probabilities scaled to sum to 1 (the model's labels are independent sigmoids, so
    their means need not); None when every mean is zero."""
    total = sum(max(0.0, value) for value in means.values())
    if total <= 0:
        return None
    return {label: max(0.0, value) / total for label, value in means.items()}


def jensen_shannon(first: dict[str, float], second: dict[str, float]) -> float:
    """The Jensen–Shannon divergence of two distributions over the same labels, in bits:
    ``½ KL(P‖M) + ½ KL(Q‖M)`` with ``M = ½ (P + Q)``; 0 for equal ones, 1 for disjoint ones."""
    divergence = 0.0
    for label in first.keys() | second.keys():
        p, q = first.get(label, 0.0), second.get(label, 0.0)
        m = (p + q) / 2
        if p > 0:
            divergence += 0.5 * p * math.log2(p / m)
        if q > 0:
            divergence += 0.5 * q * math.log2(q / m)
    return min(1.0, max(0.0, divergence))


def shift_score(window: dict[str, LabelSums], baseline: dict[str, LabelSums]) -> float | None:
    """The Jensen–Shannon divergence of the two periods' mean label distributions; None when either is empty."""
    first = label_distribution({label: sums.mean or 0.0 for label, sums in window.items()})
    second = label_distribution({label: sums.mean or 0.0 for label, sums in baseline.items()})
    if first is None or second is None:
        return None
    return jensen_shannon(first, second)


@dataclass(frozen=True)
class Lift:
    """How often a label passed its threshold in entries with a tag against entries without it.

    ``with_tag`` / ``without_tag``: entries; ``passes_with`` / ``passes_without``: those where the
    label passed. ``lift`` is the ratio of the two shares, ``interval`` its log-ratio interval.
    """

    with_tag: int
    passes_with: int
    without_tag: int
    passes_without: int
    lift: float
    interval: tuple[float, float]


def lift(passes_with: int, with_tag: int, passes_without: int, without_tag: int, z: float) -> Lift:
    """The risk ratio ``(a / n1) / (c / n0)`` and its interval ``exp(ln RR ± z · se)`` with
    ``se = √(1/a − 1/n1 + 1/c − 1/n0)`` (Katz); a zero count takes ½ in every cell (Haldane)."""
    a, n1, c, n0 = passes_with, with_tag, passes_without, without_tag
    if min(a, c) == 0 or a == n1 or c == n0:
        a, n1, c, n0 = a + 0.5, n1 + 1, c + 0.5, n0 + 1
    ratio = (a / n1) / (c / n0)
    se = math.sqrt(max(0.0, 1 / a - 1 / n1 + 1 / c - 1 / n0))
    log_ratio = math.log(ratio)
    return Lift(with_tag=with_tag, passes_with=passes_with, without_tag=without_tag, passes_without=passes_without,
                lift=ratio, interval=(math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)))


@dataclass(frozen=True)
class TagFinding:
    """A label over-represented in the entries carrying ``tag``."""

    tag: str
    label: str
    lift: Lift


#: Fewest entries with a tag in which a label passed before a lift is reported at all.
MIN_PASSES_WITH_TAG = 3


def over_represented(entries: list[tuple[frozenset[str], frozenset[str]]], labels: list[str],
                     min_support: int) -> tuple[list[TagFinding], int]:
    """Tag–label pairs whose lift interval lies wholly above 1, strongest first, and how many
    pairs were tested.

    ``entries``: each entry's tags and the labels that passed their thresholds in it. A tag is
    tested when at least ``min_support`` entries carry it and as many do not; the intervals are
    familywise over every pair tested, so a larger set of tags asks for stronger evidence.
    """
    total = len(entries)
    carrying: dict[str, list[int]] = {}
    for index, (tags, _) in enumerate(entries):
        for tag in tags:
            carrying.setdefault(tag, []).append(index)
    supported = {tag: rows for tag, rows in carrying.items()
                 if len(rows) >= min_support and total - len(rows) >= min_support}
    passes = {label: sum(1 for _, passed in entries if label in passed) for label in labels}
    tested = len(supported) * len(labels)
    z = family_z(tested)
    findings = []
    for tag, rows in supported.items():
        for label in labels:
            passes_with = sum(1 for row in rows if label in entries[row][1])
            if passes_with < MIN_PASSES_WITH_TAG:
                continue
            found = lift(passes_with, len(rows), passes[label] - passes_with, total - len(rows), z)
            if found.interval[0] > 1:
                findings.append(TagFinding(tag, label, found))
    findings.sort(key=lambda finding: (-finding.lift.interval[0], finding.tag, finding.label))
    return findings, tested
