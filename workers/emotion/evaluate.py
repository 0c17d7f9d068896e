"""Score a model on any GoEmotions-format TSV and print one JSON line.

    python -m workers.emotion.evaluate --data ../shared/data/goemotions/dev.tsv
    python -m workers.emotion.evaluate --data dev.tsv --engine torch --no-int8
    SAMO_EMOTION_ENGINE=onnx python -m workers.emotion.evaluate --data dev.tsv
    python -m workers.emotion.evaluate --data dev.tsv --model SamLowe/roberta-base-go_emotions

The classifier is loaded from the worker's settings (``SAMO_EMOTION_ENGINE``, ``SAMO_EMOTION_INT8``,
``SAMO_EMOTION_MODEL``, ``SAMO_EMOTION_DEVICE``, ``SAMO_EMOTION_ONNX_CACHE``) exactly as a worker loads
it, quantisation, cached ONNX graph and per-engine thresholds included; the flags override them.

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


def worker_settings(engine: str | None = None, int8: bool | None = None, model: str | None = None,
                    device: str | None = None):
    """The worker's settings from the environment, with what the caller names replaced."""
    import dataclasses

    from config.settings import Settings

    settings = Settings.from_env()
    changes = {"emotion_engine": engine, "emotion_int8": int8, "emotion_model": model, "emotion_device": device}
    return dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})


def load_variant(variant: str, model: str | None = None, device: str = "cpu"):
    """The classifier a worker runs as ``variant``: ``torch-fp32``, ``torch-int8``, ``onnx-fp32``,
    ``onnx-int8`` (dynamic) or ``onnx-int8-static256`` (SAMO_EMOTION_ONNX_QUANTISATION=static)."""
    import dataclasses

    from workers.models import load_emotion_classifier

    engine, precision, *rest = variant.split("-")
    settings = worker_settings(engine, precision == "int8", model or "", device)
    if rest and rest[0].startswith("static"):
        settings = dataclasses.replace(settings, emotion_onnx_quantisation="static")
    clf = load_emotion_classifier(settings)
    if clf.variant != variant:
        raise RuntimeError(f"asked for {variant}, loaded {clf.variant}")
    return clf


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Evaluate an emotion model on a GoEmotions-format TSV.")
    p.add_argument("--data", type=Path, required=True, help="TSV: text, comma-separated label ids, id")
    p.add_argument("--labels", type=Path, default=None, help="labels.txt for the TSV's ids")
    p.add_argument("--model", default=None,
                   help="hub id, local path or delta folder (default: SAMO_EMOTION_MODEL, else the shipped artifact)")
    p.add_argument("--device", default=None, help="default: SAMO_EMOTION_DEVICE")
    p.add_argument("--engine", choices=("torch", "onnx"), default=None, help="default: SAMO_EMOTION_ENGINE")
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=None,
                   help="int8 on CPU (default: SAMO_EMOTION_INT8)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="score only the first N rows")
    p.add_argument("--per-label", action="store_true", help="include per-label F1 in the JSON")
    args = p.parse_args(argv)

    from workers.models import load_emotion_classifier

    split = read_split(args.data)
    if args.limit:
        split = split.head(args.limit)
    clf = load_emotion_classifier(worker_settings(args.engine, args.int8, args.model, args.device))
    result = evaluate(clf, split, resolve_label_names(args.data, args.labels), args.batch_size)
    line = {"macro_f1": round(result["macro_f1"], 4), "micro_f1": round(result["micro_f1"], 4),
            "n": result["n"], "model": clf.name, "version": clf.version, "variant": clf.variant,
            "data": str(args.data)}
    if args.per_label:
        line["per_label_f1"] = {k: round(v, 4) for k, v in result["per_label_f1"].items()}
    print(json.dumps(line), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
