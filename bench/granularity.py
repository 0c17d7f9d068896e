"""Sentence against document granularity through the emotion worker's batched path, and long entries.

    python bench/granularity.py                  # 2,000 dev texts, batches of 32, 4 long entries
    python bench/granularity.py --n 500 --long 2 # quicker

Both granularities score the same first ``--n`` dev texts through ``tasks.emotion.analyze``,
the handler a `cpu` worker runs on each batch, with the model loaded as a worker loads it and
the result cache off: ``--batch`` jobs per call, as a worker gathers them. A sentence job's
sentences share the batch's forward passes with every other job's, so the ratio of
sentence to document texts/s stays near 1 however many sentences a text has (goal >= 0.6).
Then ``--long`` entries of ``--words`` words (dev texts joined) are scored whole, window by
window, one job per batch. On a shared machine, alternating ``--rounds`` and keeping each
granularity's best keeps another process's burst from deciding the ratio.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from config.settings import Settings  # noqa: E402
from db.jobs import ClaimedJob  # noqa: E402
from tasks.emotion import analyze  # noqa: E402
from tasks.lifecycle import BatchReport  # noqa: E402
from tasks.services import Services  # noqa: E402
from workers.emotion.data import default_data_dir, read_split  # noqa: E402
from workers.models import emotion_classifier  # noqa: E402


def jobs_of(texts: list[str], options: dict) -> list[ClaimedJob]:
    now = datetime.datetime.now(datetime.UTC)
    return [ClaimedJob(uuid.uuid4(), uuid.uuid4(), "emotion", {"text": text}, options, 1, now) for text in texts]


def run(services: Services, texts: list[str], options: dict, batch: int) -> tuple[float, int]:
    """Texts per second through the handler in batches of ``batch`` jobs, and the parts scored."""
    parts = 0
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        report = BatchReport("cpu", max_size=services.settings.cpu_batch_max_size)
        outcomes = analyze(services, jobs_of(texts[start:start + batch], options), report)
        failed = [outcome for outcome in outcomes if not hasattr(outcome, "result")]
        if failed:
            raise SystemExit(f"{len(failed)} jobs failed: {failed[0]}")
        parts += sum(len(o.result.get("sentences", ())) or o.result.get("windows", 1) for o in outcomes)
    return len(texts) / (time.perf_counter() - started), parts


def long_entries(texts: list[str], count: int, words: int) -> list[str]:
    entries, current, taken = [], [], 0
    for text in texts:
        current.append(text if text.endswith((".", "!", "?")) else text + ".")
        taken += len(text.split())
        if taken >= words:
            entries.append(" ".join(current))
            current, taken = [], 0
            if len(entries) == count:
                break
    return entries


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="dev texts per granularity")
    p.add_argument("--batch", type=int, default=32, help="jobs per handler call (a worker's batch)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each granularity counts")
    p.add_argument("--long", type=int, default=4, help="long entries to score")
    p.add_argument("--words", type=int, default=3000, help="words per long entry")
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    args = p.parse_args()

    settings = dataclasses.replace(Settings.from_env(), result_cache_ttl_s=0)
    services = Services(settings)
    classifier = emotion_classifier(settings)
    dev = read_split(args.data_dir / "dev.tsv").texts
    texts = dev[: args.n]
    print(f"model {classifier.name} {classifier.version} on {classifier.device}, {len(texts)} dev texts, "
          f"batches of {args.batch} jobs")
    run(services, texts[: args.batch], {}, args.batch)
    document = sentence = 0.0
    for _ in range(args.rounds):
        rate, windows = run(services, texts, {}, args.batch)
        document = max(document, rate)
        rate, sentences = run(services, texts, {"granularity": "sentence"}, args.batch)
        sentence = max(sentence, rate)
    print(f"document: {document:.1f} texts/s ({windows} windows)")
    print(f"sentence: {sentence:.1f} texts/s ({sentences} sentences)")
    print(f"sentence / document: {sentence / document:.3f} (goal >= 0.6)")
    entries = long_entries(dev[args.n:] + dev[: args.n], args.long, args.words)
    rate, parts = run(services, entries, {}, 1)
    chars = sum(map(len, entries)) / len(entries)
    print(f"long entries: {len(entries)} of {args.words}+ words ({chars:.0f} characters on average), "
          f"{parts} windows: {rate:.2f} texts/s")


if __name__ == "__main__":
    main()
