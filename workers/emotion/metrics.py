"""Multi-label F1 and per-label threshold tuning, in plain numpy (no torch).

Thresholds are tuned per label on dev. Rare labels (grief, pride, relief have a dozen dev
examples each) make the raw F1-vs-threshold curve jagged, so the chosen threshold maximises
a moving average of that curve: a plateau rather than a lucky spike, which transfers better
to unseen data such as the held-out test split.
"""
from __future__ import annotations

import numpy as np

DEFAULT_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def _counts(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = pred.astype(bool)
    target = target.astype(bool)
    tp = (pred & target).sum(axis=0).astype(np.float64)
    fp = (pred & ~target).sum(axis=0).astype(np.float64)
    fn = (~pred & target).sum(axis=0).astype(np.float64)
    return tp, fp, fn


def _f1(tp, fp, fn):
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(np.asarray(denom, dtype=np.float64)), where=denom > 0)


def per_label_f1(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """F1 per column of boolean/0-1 matrices ``(n, labels)``; 0 where a label has no support and no prediction."""
    return _f1(*_counts(pred, target))


def macro_f1(pred: np.ndarray, target: np.ndarray) -> float:
    return float(per_label_f1(pred, target).mean())


def micro_f1(pred: np.ndarray, target: np.ndarray) -> float:
    tp, fp, fn = (c.sum() for c in _counts(pred, target))
    return float(_f1(np.float64(tp), np.float64(fp), np.float64(fn)))


def apply_thresholds(probs: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """Boolean predictions: probability at or above each label's threshold."""
    return probs >= np.asarray(thresholds, dtype=probs.dtype)


def scores(probs: np.ndarray, target: np.ndarray, thresholds: np.ndarray | float) -> dict:
    """Macro/micro F1, per-label F1 and the example count at ``thresholds``, as JSON-ready values."""
    return report(apply_thresholds(probs, thresholds), target)


def report(pred: np.ndarray, target: np.ndarray) -> dict:
    """Macro/micro F1, per-label F1 and the example count of boolean predictions."""
    return {
        "macro_f1": macro_f1(pred, target),
        "micro_f1": micro_f1(pred, target),
        "per_label_f1": [float(x) for x in per_label_f1(pred, target)],
        "n": int(target.shape[0]),
    }


def tune_thresholds(
    probs: np.ndarray,
    target: np.ndarray,
    grid: np.ndarray = DEFAULT_GRID,
    smooth: int = 2,
) -> np.ndarray:
    """Per-label thresholds from ``grid`` maximising the smoothed per-label F1.

    ``smooth`` is the half-width (in grid steps) of the moving average; 0 takes the raw
    argmax. Ties go to the threshold closest to 0.5.
    """
    grid = np.asarray(grid, dtype=np.float64)
    f1 = np.stack([per_label_f1(probs >= t, target) for t in grid])
    if smooth > 0:
        kernel = np.ones(2 * smooth + 1) / (2 * smooth + 1)
        padded = np.pad(f1, ((smooth, smooth), (0, 0)), mode="edge")
        f1 = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(f1.shape[1])], axis=1)
    best = f1.max(axis=0, keepdims=True)
    candidates = np.isclose(f1, best)
    distance = np.where(candidates, np.abs(grid - 0.5)[:, None], np.inf)
    return grid[distance.argmin(axis=0)]
