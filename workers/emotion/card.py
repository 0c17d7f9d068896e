"""Writes the model card (MODEL_CARD.md) beside the shipped artifact from its config.json.

Generated rather than hand-written so the figures in the card are always the ones the
training run measured and the thresholds the classifier actually loads.
"""
from __future__ import annotations

from pathlib import Path


def render(config: dict) -> str:
    train = config["training"]
    dev = config["dev"]
    tuning = config["tuning"]
    if tuning["method"] == "lora":
        holds = (f"LoRA factors (rank {tuning['rank']}, alpha {tuning['alpha']}, on "
                 f"{', '.join(tuning['targets'])}) and the encoder LayerNorms")
        merge = "the factors are merged into the base weights (`W + B·A`)"
    else:
        holds = (f"the fine-tuned upper layers as weight deltas (`W_tuned - W_base`, "
                 f"{tuning['weight_delta']}) with their biases and LayerNorms ({tuning['frozen']} "
                 "stay as the base has them)")
        merge = "the deltas are added to the base weights (`W + q·scale`)"
    lines = [
        f"# {config['name']}: GoEmotions emotion classifier (delta on all-MiniLM-L6-v2)",
        "",
        "Multi-label classifier over the 28 GoEmotions labels (27 emotions + neutral): a sigmoid",
        "probability per label, a per-label decision threshold tuned on dev, and a top emotion.",
        "",
        "## What this folder holds",
        "",
        f"Only what the pip base lacks. The encoder is `{config['base']['package']}` "
        f"{config['base']['version']} (sentence-transformers/all-MiniLM-L6-v2, 6 layers, 384 dims),",
        f"installed by pip. `delta.safetensors` holds {holds},",
        f"and the linear head over mean-pooled token states. At load time {merge},",
        "so inference runs a plain BERT.",
        "`config.json` holds labels, thresholds, lengths and these figures.",
        "",
        "Emoji are spelt out as their Unicode names before tokenising (the uncased vocabulary maps",
        "every emoji to [UNK]); punctuation is kept as written.",
        "",
        "## Data and licence",
        "",
        "GoEmotions (Demszky et al., 2020, *GoEmotions: A Dataset of Fine-Grained Emotions*, ACL),",
        "58k Reddit comments, CC BY 4.0 (Google). Trained on `train.tsv` "
        f"({train['train_examples']} rows), thresholds tuned on `dev.tsv` ({dev['n']} rows).",
        "The test split was not used. Base encoder: Apache-2.0.",
        "",
        "## Training",
        "",
        "```",
        train["command"],
        "```",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for key in ("method", "epochs", "batch_size", "lr", "head_lr", "warmup_ratio", "weight_decay",
                "max_length", "head_dropout", "seed", "steps", "device", "seconds"):
        if key in train:
            lines.append(f"| {key} | {train[key]} |")
    selection = config.get("threshold_selection")
    lines += [
        "",
        "Loss: binary cross-entropy with logits over the 28 labels; AdamW with linear warmup and",
        "decay; length-bucketed batches. Training-time thresholds: per label, the value in 0.05..0.95",
        "(step 0.01) that maximises a 5-point moving average of dev F1.",
        "",
        "## Dev results at training time (training-time thresholds, in-sample)",
        "",
        f"- macro-F1: **{dev['macro_f1']:.4f}**",
        f"- micro-F1: **{dev['micro_f1']:.4f}**",
    ]
    if "int8" in config:
        lines.append(f"- int8 dynamic quantisation: macro-F1 {config['int8']['macro_f1']:.4f}, "
                     f"micro-F1 {config['int8']['micro_f1']:.4f}")
    if selection:
        lines += _threshold_section(config, selection)
    else:
        lines += ["", "| label | threshold | dev F1 |", "|---|---|---|"]
        for label, thr, f1 in zip(config["labels"], config["thresholds"], dev["per_label_f1"]):
            lines.append(f"| {label} | {thr:.2f} | {f1:.3f} |")
    lines += [
        "",
        "## Limits",
        "",
        "English Reddit comments; short texts (trained at up to "
        f"{train['max_length']} tokens, inference truncates at {config['max_length']}). Rare labels",
        "(grief, pride, relief, nervousness) have few examples and low, noisy F1. Dev figures are",
        "optimistic because the thresholds were tuned on dev; the cross-validated estimates above are not.",
        "",
    ]
    return "\n".join(lines)


def _threshold_section(config: dict, selection: dict) -> list[str]:
    """The deployed thresholds per engine variant and their cross-validated dev estimates."""
    variants = selection["variants"]
    by_variant = config["thresholds_by_variant"]
    lines = [
        "",
        "## Deployed thresholds (cross-validated on dev)",
        "",
        f"Chosen by {selection['method']}, on the probabilities of each engine and precision a worker",
        "runs (a worker picks the set of its own variant; `config.json` `thresholds_by_variant`). Each",
        "label's threshold is `w * own + (1 - w) * global` with `w = support / (support + strength)`; the",
        "strength is the one with the best cross-validated macro-F1. Reproduce with:",
        "",
        "```",
        selection["command"],
        "```",
        "",
        "Cross-validated dev macro-F1 (thresholds tuned on the other folds, scored on the held-out fold):",
        "",
        "| variant | strength | global threshold | CV macro-F1, new | CV macro-F1, per-label only (old method) "
        "| CV macro-F1, global only | dev macro-F1 in-sample, new | dev macro-F1 in-sample, old thresholds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in variants.items():
        strength = "inf" if v["strength"] == float("inf") else f"{v['strength']:g}"
        lines.append(f"| {name} | {strength} | {v['global_threshold']:.2f} | **{v['cv_macro_f1']:.4f}** | "
                     f"{v['cv_macro_f1_per_label_only']:.4f} | {v['cv_macro_f1_global_only']:.4f} | "
                     f"{v['dev_macro_f1']:.4f} | {v['dev_macro_f1_previous']:.4f} |")
    agreements = {n: v["agreement_with_torch_fp32"] for n, v in variants.items() if "agreement_with_torch_fp32" in v}
    if agreements:
        from workers.emotion.export import FP32_TOLERANCE, INT8_TOLERANCE

        lines += ["", "Probabilities against torch fp32 on all of dev (absolute difference per label and text). "
                  f"Tolerance (tests/model/test_emotion_onnx.py): int8 mean <= {INT8_TOLERANCE['mean']}, "
                  f"99th percentile <= {INT8_TOLERANCE['p99']}, same top label >= {INT8_TOLERANCE['same_top']:.0%}; "
                  f"fp32 graphs within {FP32_TOLERANCE:g}.", "",
                  "| variant | mean | 99th percentile | largest | same top label |", "|---|---|---|---|---|"]
        for name, a in agreements.items():
            lines.append(f"| {name} | {a['mean']:.4f} | {a['p99']:.4f} | {a['max']:.4f} | {a['same_top']:.2%} |")
    names = list(variants)
    lines += ["", "| label | " + " | ".join(f"{n} threshold" for n in names) + " | old threshold |",
              "|---|" + "---|" * (len(names) + 1)]
    previous = config.get("previous_thresholds", config["thresholds"])
    for i, label in enumerate(config["labels"]):
        cells = " | ".join(f"{by_variant[n][i]:.3f}" for n in names)
        lines.append(f"| {label} | {cells} | {previous[i]:.2f} |")
    return lines


def write(artifact_dir: str | Path, config: dict) -> Path:
    path = Path(artifact_dir) / "MODEL_CARD.md"
    path.write_text(render(config), encoding="utf-8")
    return path
