"""Speed, agreement, memory and load time of the extractive summariser on each sentence-encoder engine.

    python bench/summarize.py                                  # 3 sizes, 4 entries each, 3 engines
    python bench/summarize.py --sizes 10,40 --entries 2 --rounds 1 --skip-probes   # quicker

The inputs are journal-like entries made of consecutive GoEmotions dev texts (``--sizes`` texts
each, ``--entries`` entries per size, no text used twice). Every engine (``torch``: torch fp32;
``onnx-fp32``, ``onnx-int8``: the cached ONNX Runtime graphs, int8 dynamic) is loaded as a worker
loads it and summarises the same entries to ``--sentences`` sentences. Rounds alternate the
engines within each size (their order rotates every round) and each figure is the best of
``--rounds``, so a burst of load from other processes does not land on one engine only; torch and
ONNX Runtime get the same thread count. Then, against torch: the cosine similarity of every
candidate sentence's embedding (min and mean) and how many entries get exactly the same chosen
sentences. Last, per engine, two fresh child processes load it and summarise every entry once:
the first into an empty ONNX cache (cold: the export included), the second finding the cache
(warm); each reports its load time and peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ENGINES = ("torch", "onnx-fp32", "onnx-int8")


def peak_rss_mb() -> float:
    """VmHWM of this process (not ru_maxrss, which a child inherits from its parent across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_entries(data: Path, sizes: list[int], entries: int) -> dict[int, list[str]]:
    """``{size: [entry, ...]}``: each entry ``size`` consecutive dev texts, each ending a sentence."""
    from workers.emotion.data import read_split

    texts = read_split(data).texts
    needed = sum(sizes) * entries
    if needed > len(texts):
        raise SystemExit(f"{needed} dev texts needed, {data} has {len(texts)}")
    out, at = {}, 0
    for size in sizes:
        out[size] = []
        for _ in range(entries):
            chunk = [t.strip() if t.strip()[-1:] in ".!?" else t.strip() + "." for t in texts[at:at + size]]
            out[size].append(" ".join(chunk))
            at += size
    return out


def load(engine: str, cache_dir: Path, threads: int):
    from workers.summarize.extractive import ExtractiveSummarizer

    name, _, precision = engine.partition("-")
    return ExtractiveSummarizer.load(device="cpu", engine=name, int8=precision == "int8", cache_dir=cache_dir,
                                     threads=threads, fallback=False)


def candidate_sentences(summariser, entry: str) -> list[str]:
    from workers.summarize.sentences import split_sentences

    parts = split_sentences(entry, max_chars=summariser.max_sentence_chars)
    return [parts[i].text for i in summariser._candidates(len(parts))]


def probe(args: argparse.Namespace) -> None:
    """Child-process mode: load one engine, summarise every entry once, print load time and peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    entries = build_entries(args.data, args.sizes, args.entries)
    started = time.perf_counter()
    summariser = load(args.probe, args.cache_dir, args.threads)
    loaded = time.perf_counter() - started
    for texts in entries.values():
        for text in texts:
            summariser.summarize(text, sentences=args.sentences)
    print(json.dumps({"load_s": round(loaded, 2), "peak_rss_mb": round(peak_rss_mb()), "variant": summariser.variant}))


def run_probe(args: argparse.Namespace, engine: str, cache_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--probe", engine, "--cache-dir", str(cache_dir), "--data", str(args.data),
           "--sizes", ",".join(map(str, args.sizes)), "--entries", str(args.entries), "--threads", str(args.threads),
           "--sentences", str(args.sentences)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def throughput(models: dict, entries: dict[int, list[str]], args: argparse.Namespace) -> dict:
    """Best summaries/s and sentences/s per engine and size over alternating rounds."""
    sentences = {size: sum(len(candidate_sentences(models["torch"], t)) for t in texts)
                 for size, texts in entries.items()}
    best: dict[str, dict[int, float]] = {engine: {} for engine in models}
    engines = list(models)
    for round_no in range(args.rounds):
        order = engines[round_no % len(engines):] + engines[:round_no % len(engines)]
        for size, texts in entries.items():
            for engine in order:
                started = time.perf_counter()
                for text in texts:
                    models[engine].summarize(text, sentences=args.sentences)
                rate = len(texts) / (time.perf_counter() - started)
                best[engine][size] = max(best[engine].get(size, 0.0), rate)
    return {engine: {size: {"summaries_per_s": round(rate, 2),
                            "sentences_per_s": round(rate * sentences[size] / len(entries[size]), 1)}
                     for size, rate in by_size.items()}
            for engine, by_size in best.items()}


def agreement(models: dict, entries: dict[int, list[str]], args: argparse.Namespace) -> dict:
    """Per engine against torch: embedding cosine (min, mean) and entries with the same chosen sentences."""
    import numpy as np

    reference = models["torch"]
    all_texts = [t for texts in entries.values() for t in texts]
    sentences = [s for text in all_texts for s in candidate_sentences(reference, text)]
    ref_vectors = reference.embed(sentences)
    ref_chosen = [reference.summarize(t, sentences=args.sentences)["sentence_indices"] for t in all_texts]
    out = {}
    for engine, model in models.items():
        if engine == "torch":
            continue
        cosine = (model.embed(sentences) * ref_vectors).sum(axis=1)
        same = sum(model.summarize(t, sentences=args.sentences)["sentence_indices"] == chosen
                   for t, chosen in zip(all_texts, ref_chosen))
        out[engine] = {"cosine_min": round(float(cosine.min()), 6), "cosine_mean": round(float(np.mean(cosine)), 6),
                       "same_choice": same, "entries": len(all_texts), "sentences": len(sentences)}
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from workers.emotion.data import default_data_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 40, 160],
                   help="dev texts per entry, comma-separated")
    p.add_argument("--entries", type=int, default=4, help="entries per size")
    p.add_argument("--sentences", type=int, default=3, help="sentences per summary")
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, from {', '.join(ENGINES)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--data", type=Path, default=default_data_dir() / "dev.tsv")
    p.add_argument("--cache-dir", type=Path, default=None, help="ONNX cache of the timed engines (default: a new one)")
    p.add_argument("--skip-probes", action="store_true", help="no cold/warm load time and peak RSS")
    p.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = set(args.engines) - set(ENGINES)
    if unknown or "torch" not in args.engines:
        p.error(f"--engines: torch and any of {', '.join(ENGINES[1:])} ({', '.join(sorted(unknown)) or 'no torch'})")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.probe:
        probe(args)
        return {}
    import onnxruntime
    import torch

    torch.set_num_threads(args.threads)
    entries = build_entries(args.data, args.sizes, args.entries)
    with tempfile.TemporaryDirectory(prefix="bench-summarize-") as scratch:
        cache_dir = args.cache_dir or Path(scratch) / "timed"
        models = {engine: load(engine, cache_dir, args.threads) for engine in args.engines}
        print(f"{sum(map(len, entries.values()))} entries of {', '.join(map(str, args.sizes))} dev texts; "
              f"{args.sentences} sentences each; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
              f"{args.threads} threads, {args.rounds} rounds (best kept); load average {os.getloadavg()[0]:.2f}")
        speed = throughput(models, entries, args)
        for engine, by_size in speed.items():
            cells = "  ".join(f"{size:>4} texts {r['summaries_per_s']:7.2f} summaries/s {r['sentences_per_s']:7.1f} "
                              f"sentences/s" for size, r in by_size.items())
            print(f"{engine:<10} {cells}")
        ratios = {engine: {size: round(speed[engine][size]["summaries_per_s"] / speed["torch"][size]["summaries_per_s"],
                                       2) for size in args.sizes}
                  for engine in speed if engine != "torch"}
        for engine, by_size in ratios.items():
            cells = ", ".join(f"{size} texts {r:.2f}x" for size, r in by_size.items())
            print(f"{engine} / torch summaries/s: {cells}")
        agreed = agreement(models, entries, args)
        for engine, a in agreed.items():
            print(f"{engine} against torch: embedding cosine min {a['cosine_min']:.6f} mean {a['cosine_mean']:.6f} "
                  f"over {a['sentences']} sentences; same chosen sentences in {a['same_choice']}/{a['entries']} "
                  "entries")
        loads = {}
        if not args.skip_probes:
            for engine in args.engines:
                probe_cache = Path(scratch) / f"probe-{engine}"
                cold, warm = run_probe(args, engine, probe_cache), run_probe(args, engine, probe_cache)
                loads[engine] = {"cold_load_s": cold["load_s"], "warm_load_s": warm["load_s"],
                                 "peak_rss_mb": warm["peak_rss_mb"], "cold_peak_rss_mb": cold["peak_rss_mb"]}
                print(f"{engine:<10} load cold {cold['load_s']:.2f} s (peak RSS {cold['peak_rss_mb']} MB), "
                      f"warm {warm['load_s']:.2f} s (peak RSS {warm['peak_rss_mb']} MB)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    summary = {"sizes": args.sizes, "entries": args.entries, "threads": args.threads, "throughput": speed,
               "ratio_over_torch": ratios, "agreement": agreed, "load": loads}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
