"""Throughput, accuracy and peak memory of the emotion model on each engine, in one run.

    python bench/emotion_model.py                 # shipped model, 2,048 dev texts, 4 variants
    python bench/emotion_model.py --n 256 --variants torch-int8,onnx-int8 --skip-f1   # quicker

Every variant (``torch-fp32``, ``torch-int8``: torch's dynamic int8; ``onnx-fp32``, ``onnx-int8``:
the cached ONNX Runtime graphs, int8 dynamic; ``onnx-int8-static256``: static int8 calibrated on
256 train rows) is loaded exactly as a worker loads it and classifies the same
texts (the first ``--n`` rows of dev.tsv) in length-sorted batches of 1, 8, 32 and 64. Rounds
alternate the variants within each batch size, and each figure is the best of ``--rounds``, so
a burst of load from other processes does not land on one variant only. torch and ONNX Runtime
get the same thread count. Then dev macro-F1 of each variant over all of dev, with its own
thresholds (what a worker decides) and with the torch-fp32 thresholds (the quantisation's cost
alone), and the peak RSS of a fresh child process per variant that loaded the model and
classified the texts.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workers.emotion.data import default_data_dir, read_labels, read_split  # noqa: E402

VARIANTS = ("torch-fp32", "torch-int8", "onnx-fp32", "onnx-int8", "onnx-int8-static256")


def texts_per_second(clf, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    clf.predict(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - started)


def peak_rss_mb() -> float:
    """VmHWM of this process. Not ru_maxrss: Linux carries the parent's high-water mark
    into a child across fork+exec, which would charge the benchmark's own memory to it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_probe(args: argparse.Namespace) -> None:
    """Child-process mode: load one variant, classify (sorted batches of 64, then batches of 8), print peak RSS."""
    import torch

    from workers.emotion.evaluate import load_variant

    torch.set_num_threads(args.threads)
    texts = read_split(args.data_dir / "dev.tsv").texts[: args.n]
    clf = load_variant(args.variant, args.model)
    clf.predict(texts, batch_size=64)
    clf.predict(texts, batch_size=8, sort_by_length=False)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def child_rss(args: argparse.Namespace, variant: str) -> float:
    cmd = [sys.executable, __file__, "--rss-probe", "--variant", variant, "--n", str(args.n),
           "--data-dir", str(args.data_dir), "--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


def dev_f1(models: dict, data_dir: Path) -> dict:
    """Dev macro-F1 per variant with its own thresholds and with torch-fp32's."""
    from workers.emotion import metrics
    from workers.emotion.evaluate import targets_for

    dev = read_split(data_dir / "dev.tsv")
    labels = read_labels(data_dir / "labels.txt")
    common = models["torch-fp32"].thresholds if "torch-fp32" in models else None
    scores = {}
    for name, clf in models.items():
        probs, _ = clf.predict_proba(dev.texts, batch_size=64)
        target, known = targets_for(dev, labels, clf.labels)
        own = metrics.macro_f1((probs >= clf.thresholds)[:, known], target[:, known])
        shared = None if common is None else metrics.macro_f1((probs >= common)[:, known], target[:, known])
        scores[name] = {"own": own, "fp32_thresholds": shared, "n": len(dev)}
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2048, help="dev texts to classify per configuration")
    p.add_argument("--model", default=None, help="model ref (default: the shipped artifact)")
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--batch-sizes", default="1,8,32,64")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="threads of torch and ONNX Runtime (default: torch's)")
    p.add_argument("--skip-f1", action="store_true", help="skip the full-dev F1 comparison")
    p.add_argument("--skip-rss", action="store_true", help="skip the peak-RSS child processes")
    p.add_argument("--rss-probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()

    import torch

    args.threads = args.threads or torch.get_num_threads()
    if args.rss_probe:
        rss_probe(args)
        return
    torch.set_num_threads(args.threads)

    from workers.emotion.evaluate import load_variant

    texts = read_split(args.data_dir / "dev.tsv").texts[: args.n]
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    names = args.variants.split(",")
    models = {}
    for name in names:
        started = time.perf_counter()
        models[name] = load_variant(name, args.model)
        print(f"{name}: loaded in {time.perf_counter() - started:.1f} s, version {models[name].version}", flush=True)
    import onnxruntime

    print(f"{len(texts)} dev texts; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"{args.threads} threads, cpu, {args.rounds} rounds (best kept)", flush=True)
    for clf in models.values():
        clf.predict(texts[:64], batch_size=32)

    rates = {(name, batch): 0.0 for name in names for batch in sizes}
    for _ in range(args.rounds):
        for batch in sizes:
            for name in names:
                rates[name, batch] = max(rates[name, batch], texts_per_second(models[name], texts, batch))
    for name in names:
        row = "  ".join(f"b{batch} {rates[name, batch]:7.1f}" for batch in sizes)
        print(f"{name:10s} texts/s  {row}", flush=True)
    best = {name: max(rates[name, batch] for batch in sizes) for name in names}
    summary = {"n": len(texts), "threads": args.threads,
               "texts_per_s": {f"{n}/b{b}": round(r, 1) for (n, b), r in rates.items()},
               "best": {n: round(r, 1) for n, r in best.items()}}
    if "onnx-int8" in best and "torch-int8" in best:
        ratio = best["onnx-int8"] / best["torch-int8"]
        summary["onnx_int8_over_torch_int8"] = round(ratio, 2)
        print(f"best onnx-int8 / best torch-int8: {ratio:.2f}x (goal 1.6x)")

    if not args.skip_f1:
        scores = dev_f1(models, args.data_dir)
        reference = scores.get("torch-fp32", {}).get("own")
        for name, s in scores.items():
            line = f"dev ({s['n']}) {name}: macro-F1 {s['own']:.4f} with its thresholds"
            if s["fp32_thresholds"] is not None:
                line += f", {s['fp32_thresholds']:.4f} with torch-fp32's"
                line += f" ({s['fp32_thresholds'] - reference:+.4f} vs torch-fp32; budget -0.005)"
            print(line, flush=True)
        summary["dev_macro_f1"] = {n: round(s["own"], 4) for n, s in scores.items()}
        summary["dev_macro_f1_fp32_thresholds"] = {n: round(s["fp32_thresholds"], 4) for n, s in scores.items()
                                                   if s["fp32_thresholds"] is not None}
    del models
    if not args.skip_rss:
        rss = {name: child_rss(args, name) for name in names}
        for name, mb in rss.items():
            print(f"peak RSS, process with {name} loaded after {len(texts)} texts: {mb:.0f} MB "
                  f"(goal <= 500 for onnx)", flush=True)
        summary["peak_rss_mb"] = {k: round(v) for k, v in rss.items()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
