"""Measure transcription speed (real-time factor) and word error rate on synthetic speech.

    .venv/bin/python -m bench.transcribe_model [--model REF] [--seconds 60] [--threads 2]

Speech is espeak-ng reading known sentences (see tests/support/audio.py), so WER here says
how the model copes with clean synthetic speech, not with real meetings. RTF = processing
time / audio duration (lower is faster); the first run after loading is reported apart
because it includes one-off warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

SENTENCES = [
    "Please send the meeting notes to the whole team before Friday afternoon.",
    "The weather was cold and rainy, so we stayed inside and read books all day.",
    "She opened the window and listened to the birds singing in the garden.",
    "I am very happy with the progress we made on the project this week.",
    "Our customers want faster delivery and better support from the help desk.",
    "The new office has large windows and a quiet room for phone calls.",
]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def make_clip(folder: Path, seconds: float, fmt: str) -> tuple[Path, str]:
    from tests.support import audio

    parts, spoken, total = [], [], 0.0
    i = 0
    while total < seconds:
        sentence = SENTENCES[i % len(SENTENCES)]
        part = audio.speak(sentence, folder / f"part-{i}.wav")
        parts.append(part)
        spoken.append(sentence)
        total += audio.duration_s(part) + 0.8
        i += 1
    return audio.concatenate(parts, folder / f"clip.{fmt}", gap_s=0.8), " ".join(spoken)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model reference (default: bundled tiny.en)")
    parser.add_argument("--seconds", type=float, default=60.0, help="approximate clip length")
    parser.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0: auto)")
    parser.add_argument("--format", default="mp3", help="clip format: wav, mp3, ogg, flac, m4a")
    parser.add_argument("--batched-threshold", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import jiwer

    from workers.speech.transcriber import Transcriber

    with tempfile.TemporaryDirectory() as tmp:
        clip, reference = make_clip(Path(tmp), args.seconds, args.format)
        started = time.perf_counter()
        transcriber = Transcriber.load(
            args.model, cpu_threads=args.threads, batched_threshold_s=args.batched_threshold
        )
        load_s = time.perf_counter() - started
        runs = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = transcriber.transcribe(clip, max_duration_s=args.seconds * 2 + 60)
            runs.append(time.perf_counter() - started)
    duration = result["duration_s"]
    report = {
        **transcriber.describe(),
        "cpu_threads": args.threads,
        "format": args.format,
        "audio_s": duration,
        "load_s": round(load_s, 2),
        "first_run_s": round(runs[0], 2),
        "best_run_s": round(min(runs), 2),
        "rtf_first": round(runs[0] / duration, 4),
        "rtf_best": round(min(runs) / duration, 4),
        "segments": len(result["segments"]),
        "wer": round(jiwer.wer(normalise(reference), normalise(result["text"])), 4),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
