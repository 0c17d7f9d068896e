"""Emotion results as callers see them: the classifier's probabilities shaped by the job's options,
with valence.

The model's probabilities never change with the options (so one cached answer serves every
caller); ``options.threshold``, ``options.top_k`` and ``options.labels`` only decide what a
result shows. Valence reads every label, whatever ``labels`` shows.

Valence (``config.valence`` groups the 28 labels as the GoEmotions paper does): each group's
share is the sum of its labels' probabilities over the sum of all probabilities,
``share(g) = sum(p[l] for l in g) / sum(p)``, so the four shares add up to 1 (all neutral when
every probability is 0). The score is ``share(positive) - share(negative)``, in [-1, 1]:
1 when only positive labels carry probability, -1 when only negative ones do, 0 when they
balance or only ambiguous and neutral labels do.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from config.valence import VALENCE_GROUPS, valence_group
from workers.emotion.model import significant


@dataclass(frozen=True)
class Controls:
    """``options.top_k``, ``options.threshold`` (None: the tuned per-label thresholds) and ``options.labels``."""

    top_k: int | None = None
    threshold: float | None = None
    labels: tuple[str, ...] | None = None

    @classmethod
    def from_options(cls, options: Mapping) -> Controls:
        threshold = options.get("threshold")
        labels = options.get("labels")
        return cls(top_k=options.get("top_k"), threshold=None if threshold in (None, "tuned") else float(threshold),
                   labels=tuple(labels) if labels else None)


def valence(probabilities: Mapping[str, float]) -> dict:
    """``{"score": share(positive) - share(negative), "groups": {group: share}}`` (module docstring)."""
    sums = dict.fromkeys(VALENCE_GROUPS, 0.0)
    for label, probability in probabilities.items():
        sums[valence_group(label)] += probability
    total = sum(sums.values())
    shares = {group: (value / total if total > 0 else float(group == "neutral")) for group, value in sums.items()}
    score = max(-1.0, min(1.0, shares["positive"] - shares["negative"]))
    return {"score": significant(score), "groups": {group: significant(share) for group, share in shares.items()}}


def shaped(probabilities: Mapping[str, float], thresholds: Mapping[str, float], controls: Controls,
           multi_label: bool = True, truncated: bool = False) -> dict:
    """One emotion result from every label's probability (in the model's label order)."""
    missing = [label for label in controls.labels or () if label not in probabilities]
    if missing:
        raise ValueError(f"the model has no label(s) {', '.join(missing)}")
    shown = list(controls.labels) if controls.labels else list(probabilities)
    ranked = sorted(shown, key=lambda label: -probabilities[label])
    if multi_label:
        emotions = [label for label in ranked if probabilities[label] >= threshold_of(label, thresholds, controls)]
    else:
        emotions = ranked[:1]
    if controls.top_k is not None:
        emotions = emotions[: controls.top_k]
    return {
        "top_emotion": ranked[0],
        "confidence": probabilities[ranked[0]],
        "emotions": emotions,
        "probabilities": {label: probabilities[label] for label in shown},
        "valence": valence(probabilities),
        "truncated": bool(truncated),
    }


def threshold_of(label: str, thresholds: Mapping[str, float], controls: Controls) -> float:
    return controls.threshold if controls.threshold is not None else thresholds[label]


def thresholds_of(classifier) -> dict[str, float]:
    return {label: float(value) for label, value in zip(classifier.labels, classifier.thresholds)}


def weighted_probabilities(parts: Sequence[tuple[int, Mapping[str, float]]]) -> dict[str, float]:
    """The length-weighted mean of several parts' probabilities: ``sum(w_i * p_i[l]) / sum(w_i)``,
    ``w_i`` the part's length in characters (``workers.emotion.documents``)."""
    total = sum(weight for weight, _ in parts)
    labels = list(parts[0][1])
    return {label: significant(sum(weight * probs[label] for weight, probs in parts) / total) for label in labels}
