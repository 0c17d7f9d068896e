"""Throughput, int8 accuracy cost and peak memory of the emotion model, in one run.

    python bench/emotion_model.py                 # shipped model, 2,048 dev texts
    python bench/emotion_model.py --n 256 --model /tmp/run   # quicker, another artifact

Every configuration classifies the same texts (the first ``--n`` rows of dev.tsv): batch
sizes 1, 8, 32, 64, fp32 and int8 dynamic quantisation, length-sorted batches or input order.
At batch 1 sorting changes nothing, so it is measured once. The speed-up is the best
configuration over fp32 batch 1. Dev macro-F1 is then scored in full for fp32 and int8, and
a fresh child process per precision reports the peak RSS of a worker that loaded the model
and classified the texts.
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


def texts_per_second(clf, texts: list[str], batch_size: int, sort: bool) -> float:
    started = time.perf_counter()
    clf.predict(texts, batch_size=batch_size, sort_by_length=sort)
    return len(texts) / (time.perf_counter() - started)


def rss_probe(args: argparse.Namespace) -> None:
    """Child-process mode: load, classify (sorted batches of 64, then unsorted batches of 8), print peak RSS."""
    from workers.emotion.model import EmotionClassifier

    texts = read_split(args.data_dir / "dev.tsv").texts[: args.n]
    clf = EmotionClassifier.load(args.model, device="cpu", int8=args.int8)
    clf.predict(texts, batch_size=64)
    clf.predict(texts, batch_size=8, sort_by_length=False)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """VmHWM of this process. Not ru_maxrss: Linux carries the parent's high-water mark
    into a child across fork+exec, which would charge the benchmark's own memory to it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_rss(args: argparse.Namespace, int8: bool) -> float:
    cmd = [sys.executable, __file__, "--rss-probe", "--n", str(args.n), "--data-dir", str(args.data_dir)]
    if args.model:
        cmd += ["--model", args.model]
    if int8:
        cmd.append("--int8")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2048, help="dev texts to classify per configuration")
    p.add_argument("--model", default=None, help="model ref (default: the shipped artifact)")
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--batch-sizes", default="1,8,32,64")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--skip-f1", action="store_true", help="skip the full-dev F1 comparison")
    p.add_argument("--rss-probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--int8", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_probe:
        rss_probe(args)
        return

    import torch

    from workers.emotion.evaluate import evaluate
    from workers.emotion.model import EmotionClassifier

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = read_split(args.data_dir / "dev.tsv")
    texts = dev.texts[: args.n]
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    models = {"fp32": EmotionClassifier.load(args.model, device="cpu"),
              "int8": EmotionClassifier.load(args.model, device="cpu", int8=True)}
    print(f"model {models['fp32'].name} {models['fp32'].version}; {len(texts)} dev texts; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    for clf in models.values():
        clf.predict(texts[:64], batch_size=32)

    rows = []
    for precision, clf in models.items():
        for batch in sizes:
            for sort in ([False] if batch == 1 else [False, True]):
                rate = texts_per_second(clf, texts, batch, sort)
                rows.append({"precision": precision, "batch": batch, "sorted": sort, "texts_per_s": rate})
                print(f"{precision:5s} batch {batch:3d} {'sorted  ' if sort else 'unsorted'} {rate:8.1f} texts/s",
                      flush=True)
    baseline = next(r for r in rows if r["precision"] == "fp32" and r["batch"] == 1)["texts_per_s"]
    best = max(rows, key=lambda r: r["texts_per_s"])
    speedup = best["texts_per_s"] / baseline
    print(f"best: {best['precision']} batch {best['batch']} {'sorted' if best['sorted'] else 'unsorted'} "
          f"{best['texts_per_s']:.1f} texts/s = {speedup:.2f}x fp32 batch 1 ({baseline:.1f} texts/s)")

    summary = {"n": len(texts), "baseline_fp32_b1": round(baseline, 1), "best": best, "speedup": round(speedup, 2)}
    if not args.skip_f1:
        labels = read_labels(args.data_dir / "labels.txt")
        f1 = {name: evaluate(clf, dev, labels, batch_size=64) for name, clf in models.items()}
        drop = f1["fp32"]["macro_f1"] - f1["int8"]["macro_f1"]
        for name in models:
            scores = f1[name]
            print(f"dev ({scores['n']}) {name}: macro-F1 {scores['macro_f1']:.4f} micro-F1 {scores['micro_f1']:.4f}")
        print(f"int8 macro-F1 change: {-drop:+.4f} (budget -0.01)")
        summary.update({f"dev_macro_f1_{k}": round(v["macro_f1"], 4) for k, v in f1.items()})
        summary.update({f"dev_micro_f1_{k}": round(v["micro_f1"], 4) for k, v in f1.items()})
    del models
    rss = {name: child_rss(args, name == "int8") for name in ("fp32", "int8")}
    for name, mb in rss.items():
        print(f"peak RSS, process with the {name} model loaded after {len(texts)} texts: {mb:.0f} MB (limit 700)")
    summary.update({f"peak_rss_mb_{k}": round(v) for k, v in rss.items()})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
