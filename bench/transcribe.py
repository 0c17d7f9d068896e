"""Transcription through the platform against faster-whisper called directly, in one run.

    .venv/bin/python bench/transcribe.py [--seconds 40] [--runs 5] [--threads 2] [--format mp3]

The same espeak-ng clip is transcribed, turn about, by

* ``direct``: faster-whisper's ``WhisperModel.transcribe`` in this process, with the settings the
  worker uses (model, device, compute type, CPU threads, beam size 5, VAD; the batched pipeline
  when the clip is longer than the batched threshold);
* ``platform``: ``POST /v1/jobs`` (multipart) to the API over HTTP, a real Celery worker
  (PostgreSQL, Redis, the media directory, probing, decoding, Whisper, the emotion model over
  every segment, storing the result), until the job's completion is published on Redis.

Real-time factor = seconds of work / seconds of audio (lower is faster); the score is
``direct RTF / platform RTF``, so 1.0 means the platform adds nothing; goal >= 0.9. Runs are
interleaved in pairs (direct, then platform), and the score is the median of the per-pair
ratios: on a shared machine the load drifts between pairs more than within one, so pairing
cancels most of it. The ratios of the best runs and of the medians are printed too. Both
models are loaded and warmed up before timing. The worker's peak RSS (the pool process that
runs the models, and the whole worker) is sampled throughout.

Needs PostgreSQL, Redis, espeak-ng and sox, like the integration tests (tests/support).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

GOAL_RATIO = 0.9


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="approximate clip length")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each, interleaved")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("SAMO_WHISPER_CPU_THREADS", 0)),
                        help="CTranslate2 CPU threads for both (0: CTranslate2's default)")
    parser.add_argument("--format", default="mp3", help="clip format: wav, mp3, ogg, flac, m4a")
    parser.add_argument("--model", default=os.environ.get("SAMO_WHISPER_MODEL", ""),
                        help="Whisper model (default: bundled tiny.en)")
    return parser.parse_args()


class RssSampler(threading.Thread):
    """Peak RSS of a process tree: of each process, and of the whole tree at once."""

    def __init__(self, root_pid: int, interval_s: float = 0.05):
        super().__init__(daemon=True)
        self.root = psutil.Process(root_pid)
        self.interval_s = interval_s
        self.peak_per_process: dict[int, int] = {}
        self.peak_total = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                total = 0
                for process in processes:
                    rss = process.memory_info().rss
                    total += rss
                    self.peak_per_process[process.pid] = max(rss, self.peak_per_process.get(process.pid, 0))
                self.peak_total = max(self.peak_total, total)
            except psutil.Error:
                pass
            self.stopped.wait(self.interval_s)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=2)


def load_direct(settings):
    """The WhisperModel and call arguments the worker's Transcriber would use, built by hand."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from workers.speech.transcriber import default_compute_type, resolve_device, resolve_model

    source, _, _ = resolve_model(settings.whisper_model or None)
    device = resolve_device(settings.whisper_device)
    compute_type = settings.whisper_compute_type or default_compute_type(device)
    model = WhisperModel(source, device=device, compute_type=compute_type, cpu_threads=settings.whisper_cpu_threads)

    def transcribe(path: Path, duration_s: float) -> str:
        kwargs = {"beam_size": 5, "vad_filter": settings.whisper_vad}
        runner = model
        if settings.whisper_vad and duration_s > settings.whisper_batched_threshold_s:
            runner = BatchedInferencePipeline(model)
            kwargs.update(batch_size=16 if device == "cuda" else 4, without_timestamps=False)
        segments, _ = runner.transcribe(str(path), **kwargs)
        return " ".join(s.text.strip() for s in segments)

    return transcribe, {"device": device, "compute_type": compute_type}


class Platform:
    """Submits the clip over HTTP and waits for the completion message the worker publishes."""

    def __init__(self, base_url: str, api_key: str, redis_url: str):
        self.base_url = base_url
        self.headers = {"X-API-Key": api_key}
        self.pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("samo:jobs:finished:*")

    def transcribe(self, path: Path) -> tuple[float, dict]:
        started = time.perf_counter()
        with open(path, "rb") as f:
            response = requests.post(f"{self.base_url}/v1/jobs", data={"type": "transcribe"},
                                     files={"file": (path.name, f)}, headers=self.headers, timeout=60)
        response.raise_for_status()
        job_id = response.json()["id"]
        channel = f"samo:jobs:finished:{job_id}".encode()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=1.0)
            if message and message["channel"] == channel:
                elapsed = time.perf_counter() - started
                job = requests.get(f"{self.base_url}/v1/jobs/{job_id}", headers=self.headers, timeout=10).json()
                if job["status"] != "succeeded":
                    raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
                return elapsed, job
        raise TimeoutError(f"job {job_id} did not finish")


def create_key(database_url: str) -> str:
    from db.api_keys import create_api_key, create_tenant
    from db.session import session_scope

    with session_scope(database_url) as session:
        tenant = create_tenant(session, f"bench-{os.getpid()}", "bench")
        return create_api_key(session, tenant).key


def main() -> int:
    args = parse_args()
    import jiwer

    from api import create_app
    from bench.transcribe_model import make_clip, normalise
    from config.settings import Settings, parse_tiers
    from db.migrate import upgrade_to_head
    from tests.conftest import settings_env
    from tests.support.processes import CeleryWorker, serve_app_in_thread
    from tests.support.services import claimed_redis_database, temporary_database

    with tempfile.TemporaryDirectory() as tmp, temporary_database() as database_url, \
            claimed_redis_database() as redis_url:
        tmp = Path(tmp)
        upgrade_to_head(database_url)
        settings = dataclasses.replace(
            Settings.from_env(), database_url=database_url, redis_url=redis_url, media_dir=str(tmp / "media"),
            jwt_secret="bench", rate_limit_tiers=parse_tiers("bench=100000/60/100000"), default_tier="bench",
            whisper_model=args.model, whisper_cpu_threads=args.threads,
            preload_models=("emotion", "transcriber"),
        )
        clip, reference = make_clip(tmp, args.seconds, args.format)
        env = {**settings_env(settings), "SAMO_WHISPER_CPU_THREADS": str(args.threads),
               "SAMO_WHISPER_MODEL": args.model, "SAMO_PRELOAD_MODELS": "emotion,transcriber",
               "SAMO_BROKER_VISIBILITY_TIMEOUT_S": "3600"}
        worker = CeleryWorker(env, queues=(settings.model_queue,))
        worker.start()
        sampler = RssSampler(worker.process.pid)
        sampler.start()
        try:
            app = create_app(settings)
            for noisy in ("werkzeug", "faster_whisper"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            with serve_app_in_thread(app) as base_url:
                platform = Platform(base_url, create_key(database_url), redis_url)
                direct, device = load_direct(settings)
                _, job = platform.transcribe(clip)          # warm-up
                audio_s = job["result"]["duration_s"]
                direct(clip, audio_s)                       # warm-up
                direct_s, platform_s, processing_s, stages = [], [], [], []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    direct_text = direct(clip, audio_s)
                    direct_s.append(time.perf_counter() - started)
                    elapsed, job = platform.transcribe(clip)
                    platform_s.append(elapsed)
                    processing_s.append(job["processing_ms"] / 1000)
                    stages.append(job["result"]["timings_ms"])
        finally:
            sampler.stop()
            worker.stop()

    busiest = max(sampler.peak_per_process.values())
    direct_rtf = statistics.median(direct_s) / audio_s
    platform_rtf = statistics.median(platform_s) / audio_s
    paired = statistics.median(d / p for d, p in zip(direct_s, platform_s))
    report = {
        "model": job["model"], **device, "cpu_threads": args.threads, "format": args.format,
        "audio_s": audio_s, "runs": args.runs, "segments": len(job["result"]["segments"]),
        "direct_s": [round(s, 3) for s in direct_s],
        "platform_s": [round(s, 3) for s in platform_s],
        "platform_worker_processing_s": [round(s, 3) for s in processing_s],
        "platform_worker_stages_ms": stages,
        "direct_rtf": round(direct_rtf, 4),
        "platform_rtf": round(platform_rtf, 4),
        "ratio_direct_over_platform": round(paired, 3),
        "ratio_of_best_runs": round(min(direct_s) / min(platform_s), 3),
        "ratio_of_medians": round(direct_rtf / platform_rtf, 3),
        "wer_direct": round(jiwer.wer(normalise(reference), normalise(direct_text)), 4),
        "wer_platform": round(jiwer.wer(normalise(reference), normalise(job["result"]["text"])), 4),
        "peak_rss_mb_model_process": round(busiest / 2**20, 1),
        "peak_rss_mb_worker_total": round(sampler.peak_total / 2**20, 1),
    }
    print(json.dumps(report, indent=2))
    ratio = report["ratio_direct_over_platform"]
    print(f"median RTF direct {direct_rtf:.4f}, through the platform {platform_rtf:.4f}; "
          f"median paired ratio {ratio:.3f} "
          f"(goal >= {GOAL_RATIO}) {'OK' if ratio >= GOAL_RATIO else 'BELOW GOAL'}")
    print(f"peak worker RSS: {report['peak_rss_mb_model_process']} MB (model process), "
          f"{report['peak_rss_mb_worker_total']} MB (whole worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
