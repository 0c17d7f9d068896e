"""Score a model on any GoEmotions-format TSV and print one JSON line.

    python -m workers.emotion.evaluate --data ../shared/data/goemotions/dev.tsv
    python -m workers.emotion.evaluate --data test.tsv --int8
    python -m workers.emotion.evaluate --data dev.tsv --model SamLowe/roberta-base-go_emotions

TSV rows are ``text<TAB>label ids, comma-separated<TAB>id``. Label ids are turned into names
with ``labels.txt`` (beside the TSV, else ``--labels``, else the GoEmotions default) and
matched to the model's labels by name, so a model with its own label order still scores
correctly. Decisions use the model's shipped thresholds (argmax for single-label models).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workers.emotion import metrics  # noqa: E402
from workers.emotion.data import Split, default_data_dir, read_labels, read_split  # noqa: E402


def resolve_label_names(data: Path, labels: Path | None) -> list[str]:
    for candidate in (labels, data.parent / "labels.txt", default_data_dir() / "labels.txt"):
        if candidate is not None and candidate.is_file():
            return read_labels(candidate)
    raise FileNotFoundError("no labels.txt beside the TSV; pass --labels")


def targets_for(split: Split, data_labels: list[str], model_labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot targets in the model's label order, and the model columns that the data can score."""
    column = {name: j for j, name in enumerate(model_labels)}
    known = np.zeros(len(model_labels), dtype=bool)
    for name in data_labels:
        if name in column:
            known[column[name]] = True
    if not known.any():
        raise ValueError("none of the data's labels are among the model's labels")
    y = np.zeros((len(split), len(model_labels)), dtype=np.float32)
    for row, ids in enumerate(split.label_ids):
        for label_id in ids:
            j = column.get(data_labels[label_id])
            if j is not None:
                y[row, j] = 1.0
    return y, known


def evaluate(clf, split: Split, data_labels: list[str], batch_size: int = 64) -> dict:
    """Macro/micro F1 (over the labels the data and the model share), per-label F1 and n."""
    probs, truncated = clf.predict_proba(split.texts, batch_size=batch_size)
    y, known = targets_for(split, data_labels, clf.labels)
    if clf.multi_label:
        pred = metrics.apply_thresholds(probs, clf.thresholds)
    else:
        pred = np.zeros_like(probs, dtype=bool)
        pred[np.arange(len(probs)), probs.argmax(axis=1)] = True
    result = metrics.report(pred[:, known], y[:, known])
    result["per_label_f1"] = dict(zip([label for label, k in zip(clf.labels, known) if k], result["per_label_f1"]))
    result["truncated"] = int(sum(truncated))
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Evaluate an emotion model on a GoEmotions-format TSV.")
    p.add_argument("--data", type=Path, required=True, help="TSV: text, comma-separated label ids, id")
    p.add_argument("--labels", type=Path, default=None, help="labels.txt for the TSV's ids")
    p.add_argument("--model", default=os.environ.get("SAMO_EMOTION_MODEL") or None,
                   help="hub id, local path or delta folder (default: the shipped artifact)")
    p.add_argument("--device", default=os.environ.get("SAMO_EMOTION_DEVICE") or "auto")
    p.add_argument("--int8", action="store_true", help="dynamic int8 quantisation (CPU)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="score only the first N rows")
    p.add_argument("--per-label", action="store_true", help="include per-label F1 in the JSON")
    args = p.parse_args(argv)

    from workers.emotion.model import EmotionClassifier

    split = read_split(args.data)
    if args.limit:
        split = split.head(args.limit)
    clf = EmotionClassifier.load(args.model, device=args.device, int8=args.int8)
    result = evaluate(clf, split, resolve_label_names(args.data, args.labels), args.batch_size)
    line = {"macro_f1": round(result["macro_f1"], 4), "micro_f1": round(result["micro_f1"], 4),
            "n": result["n"], "model": clf.name, "version": clf.version, "data": str(args.data)}
    if args.per_label:
        line["per_label_f1"] = {k: round(v, 4) for k, v in result["per_label_f1"].items()}
    print(json.dumps(line), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
