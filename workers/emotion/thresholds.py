"""Decision thresholds chosen by k-fold cross-validation on dev, shrunk toward one global threshold.

    python -m workers.emotion.thresholds                       # report only
    python -m workers.emotion.thresholds --write               # store in config.json, rewrite the card

Per-label thresholds tuned on all of dev fit its noise: a label with a dozen dev examples gets
the threshold that happened to catch them. Here each label's threshold is a support-weighted mix
of its own tuned value and one global threshold tuned for macro-F1 over every label:

    t_label = w * t_own + (1 - w) * t_global,   w = support / (support + strength)

so frequent labels keep their own value and rare ones lean on the global one. ``strength`` (0:
per-label only, which is how the thresholds were chosen before; infinity: global only) is chosen
by repeated k-fold cross-validation on dev: thresholds tuned on k-1 folds decide the held-out
fold, and the out-of-fold decisions of every fold are scored together. The chosen strength is
then applied to all of dev. The GoEmotions test split is never read.

Thresholds are computed on the probabilities of each engine and precision a worker can run
(``torch-fp32``, ``torch-int8``, ``onnx-int8``, ...), since quantisation moves probabilities, and
stored per variant in ``config.json`` (``thresholds_by_variant``); the classifier picks its own.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from workers.emotion import metrics

STRENGTHS = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, math.inf)
DEFAULT_VARIANTS = ("torch-fp32", "torch-int8", "onnx-int8")


def global_threshold(probs: np.ndarray, target: np.ndarray, grid: np.ndarray = metrics.DEFAULT_GRID) -> float:
    """The one threshold for every label that maximises macro-F1 (ties: closest to 0.5)."""
    scores = np.array([metrics.macro_f1(probs >= t, target) for t in grid])
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return float(grid[best[np.abs(grid[best] - 0.5).argmin()]])


def shrunk_thresholds(probs: np.ndarray, target: np.ndarray, strength: float) -> np.ndarray:
    """Per-label thresholds pulled toward the global one by ``strength / (support + strength)``."""
    overall = global_threshold(probs, target)
    if math.isinf(strength):
        return np.full(probs.shape[1], overall)
    own = metrics.tune_thresholds(probs, target)
    support = target.sum(axis=0)
    weight = support / (support + strength) if strength > 0 else np.ones_like(support)
    return np.round(weight * own + (1 - weight) * overall, 3)


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def cross_validated_f1(probs: np.ndarray, target: np.ndarray, strength: float, k: int = 5,
                       repeats: int = 4) -> float:
    """Mean over ``repeats`` shuffles of the macro-F1 of the pooled out-of-fold decisions."""
    results = []
    for seed in range(repeats):
        decided = np.zeros_like(target, dtype=bool)
        for held_out in folds(len(probs), k, seed):
            train = np.setdiff1d(np.arange(len(probs)), held_out)
            chosen = shrunk_thresholds(probs[train], target[train], strength)
            decided[held_out] = probs[held_out] >= chosen
        results.append(metrics.macro_f1(decided, target))
    return float(np.mean(results))


def choose(probs: np.ndarray, target: np.ndarray, k: int = 5, repeats: int = 4,
           strengths=STRENGTHS) -> dict:
    """The cross-validated estimate of every strength, the chosen one and its thresholds on all of dev."""
    estimates = {strength: cross_validated_f1(probs, target, strength, k, repeats) for strength in strengths}
    best = max(estimates, key=lambda s: (round(estimates[s], 6), s))
    thresholds = shrunk_thresholds(probs, target, best)
    return {
        "strength": best,
        "thresholds": [float(t) for t in thresholds],
        "global_threshold": global_threshold(probs, target),
        "cv_macro_f1": estimates[best],
        "cv_macro_f1_per_label_only": estimates[0.0],
        "cv_macro_f1_global_only": estimates[math.inf],
        "cv_by_strength": {("inf" if math.isinf(s) else f"{s:g}"): round(v, 4) for s, v in estimates.items()},
        "dev_macro_f1": metrics.macro_f1(probs >= thresholds, target),
        "k": k,
        "repeats": repeats,
    }


def agreement(probs: np.ndarray, reference: np.ndarray) -> dict:
    """How far ``probs`` sit from ``reference`` (same texts): mean, 99th percentile and largest gap, same top label."""
    gap = np.abs(probs - reference)
    return {"mean": round(float(gap.mean()), 5), "p99": round(float(np.quantile(gap, 0.99)), 5),
            "max": round(float(gap.max()), 5),
            "same_top": round(float((probs.argmax(axis=1) == reference.argmax(axis=1)).mean()), 4)}


def dev_probabilities(variant: str, data_dir: Path, model_ref: str | None = None):
    """Dev probabilities and multi-hot targets from the classifier a worker runs as ``variant``."""
    from workers.emotion.data import read_labels, read_split
    from workers.emotion.evaluate import load_variant, targets_for

    clf = load_variant(variant, model_ref)
    dev = read_split(data_dir / "dev.tsv")
    probs, _ = clf.predict_proba(dev.texts, batch_size=64)
    target, known = targets_for(dev, read_labels(data_dir / "labels.txt"), clf.labels)
    if not known.all():
        raise ValueError("dev.tsv does not cover every label of the model")
    return clf, probs, target


def main(argv: list[str] | None = None) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workers.emotion.data import default_data_dir
    from workers.emotion.model import default_artifact_dir

    p = argparse.ArgumentParser(description="Cross-validated, shrunk decision thresholds for each engine variant.")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--artifact", type=Path, default=default_artifact_dir())
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--write", action="store_true", help="store in the artifact's config.json and rewrite its card")
    args = p.parse_args(argv)

    config_path = args.artifact / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    previous = np.asarray(config.get("previous_thresholds", config["thresholds"]), dtype=np.float64)
    chosen = {}
    reference = None
    for variant in args.variants.split(","):
        clf, probs, target = dev_probabilities(variant, args.data_dir, str(args.artifact))
        result = choose(probs, target, args.folds, args.repeats)
        result["dev_macro_f1_previous"] = metrics.macro_f1(probs >= previous, target)
        if variant == "torch-fp32":
            reference = probs
        elif reference is not None:
            result["agreement_with_torch_fp32"] = agreement(probs, reference)
        chosen[variant] = result
        print(json.dumps({"variant": variant, "version": clf.version,
                          **{k: v for k, v in result.items() if k != "thresholds"}}), flush=True)
    if args.write:
        config.setdefault("previous_thresholds", [float(t) for t in previous])
        config["thresholds_by_variant"] = {v: r["thresholds"] for v, r in chosen.items()}
        if "torch-fp32" in chosen:
            config["thresholds"] = chosen["torch-fp32"]["thresholds"]
        config["threshold_selection"] = {
            "command": f"python -m workers.emotion.thresholds --variants {args.variants} --folds {args.folds} "
                       f"--repeats {args.repeats} --write",
            "method": f"{args.folds}-fold cross-validation on dev, {args.repeats} shuffles, "
                      "per-label thresholds shrunk toward a global one by support",
            "variants": {v: {k: r[k] for k in r if k != "thresholds"} for v, r in chosen.items()},
        }
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        from workers.emotion import card

        card.write(args.artifact, config)
    return chosen


if __name__ == "__main__":
    sys.exit(main() and 0)
