"""Transcription jobs: faster-whisper on the uploaded audio, then emotion per segment and overall.

The emotion model runs once per job, on one list holding the whole text's windows and every
segment, so a recording of a hundred segments costs one batched inference, not a hundred. With
``granularity: sentence`` the segments are the sentences: the recording's emotion is then the
length-weighted aggregate of theirs (``workers.emotion.documents``).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from config.settings import Settings
from db.jobs import ClaimedJob, JobOutcome
from db.media import media_path
from tasks.emotion import Emotion, Scorer, assemble, assembled, parts_of
from tasks.lifecycle import BatchReport, per_job
from tasks.live_events import ProgressThrottle, append
from tasks.models import emotion_model, model_info
from tasks.services import Services
from workers.emotion.documents import Part
from workers.models import transcriber

#: Job options passed to faster-whisper as they are (``config.job_options.TranscribeOptions``).
DECODING_OPTIONS = ("initial_prompt", "hotwords", "word_timestamps", "vad")
#: At most one transcription ``progress`` event per job in this many seconds (the last one always goes).
PROGRESS_INTERVAL_S = 0.5


def progress_events(services: Services, job: ClaimedJob) -> Callable[[float, float], None]:
    """What the transcriber calls as segments come: the job's live ``progress`` events, throttled."""
    throttle = ProgressThrottle(PROGRESS_INTERVAL_S)
    published = -1.0

    def publish(seconds_done: float, seconds_total: float) -> None:
        nonlocal published
        last = seconds_done >= seconds_total
        if seconds_done <= published or not (last or throttle.ready()):
            return
        published = seconds_done
        append(services.redis, services.settings, "job", job.id, "progress",
               {"job_id": str(job.id), "seconds_done": round(seconds_done, 3),
                "seconds_total": round(seconds_total, 3)})

    return publish


def transcribe_audio(settings: Settings, job: ClaimedJob,
                     on_progress: Callable[[float, float], None] | None = None) -> tuple[dict, object]:
    """The transcript of the job's upload, and the transcriber that made it.

    Raises ``TranscriptionError`` for bad audio (the job fails with its code).
    """
    model = transcriber(settings)
    path = media_path(settings, job.id, job.input["audio"].get("filename"))
    decoding = {name: job.options[name] for name in DECODING_OPTIONS if job.options.get(name) is not None}
    transcript = model.transcribe(path, language=job.options.get("language"),
                                  max_duration_s=settings.max_audio_seconds, on_progress=on_progress, **decoding)
    return transcript, model


def segment_parts(transcript: dict) -> list[Part]:
    """Each segment as a part of the transcript's text (``text`` joins the segments with spaces)."""
    parts, start = [], 0
    for segment in transcript["segments"]:
        parts.append(Part(segment["text"], start, start + len(segment["text"])))
        start += len(segment["text"]) + 1
    return parts


def add_emotions(settings: Settings, transcript: dict, classifier, options: dict | None = None) -> Emotion:
    """Attach an emotion result to every segment; returns the whole recording's (one scoring call)."""
    options = options or {}
    segments = segment_parts(transcript)
    whole = segments if options.get("granularity") == "sentence" else parts_of(transcript["text"], options,
                                                                               classifier.max_length)
    scorer = Scorer(classifier, BatchReport("", max_size=settings.emotion_batch_size))
    scored = scorer.score([part.text for part in whole + segments])
    per_segment = {**options, "granularity": "document"}
    for segment, part in zip(transcript["segments"], segments):
        segment["emotion"] = assemble(classifier, [part], scored, per_segment)
    return assembled(classifier, whole, scored, options, sentence_key=None)


@per_job
def transcribe(services: Services, job: ClaimedJob) -> JobOutcome:
    settings = services.settings
    started = time.perf_counter()
    transcript, model = transcribe_audio(settings, job, progress_events(services, job))
    transcribed = time.perf_counter()
    classifier = emotion_model(settings)
    transcript["emotion"], recorded = add_emotions(settings, transcript, classifier, job.options)
    transcript["models"] = {"transcription": model_info(model), "emotion": model_info(classifier)}
    transcript["timings_ms"] = {"transcription": round((transcribed - started) * 1000),
                                "emotion": round((time.perf_counter() - transcribed) * 1000)}
    return JobOutcome(transcript, model.name, model.version, emotion=recorded)
