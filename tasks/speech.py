"""Transcription jobs: faster-whisper on the uploaded audio, then emotion per segment and overall.

The emotion model runs once per job, on one list holding the whole text and every segment, so
a recording of a hundred segments costs one batched inference, not a hundred.
"""
from __future__ import annotations

import time

from config.settings import Settings
from db.jobs import ClaimedJob, JobOutcome
from db.media import media_path
from tasks.lifecycle import per_job
from tasks.models import emotion_model, model_info
from tasks.services import Services
from workers.models import transcriber


def transcribe_audio(settings: Settings, job: ClaimedJob) -> tuple[dict, object]:
    """The transcript of the job's upload, and the transcriber that made it.

    Raises ``TranscriptionError`` for bad audio (the job fails with its code).
    """
    model = transcriber(settings)
    path = media_path(settings, job.id, job.input["audio"].get("filename"))
    transcript = model.transcribe(path, language=job.options.get("language"),
                                  max_duration_s=settings.max_audio_seconds)
    return transcript, model


def add_emotions(settings: Settings, transcript: dict, classifier) -> dict:
    """Attach an emotion result to every segment; returns the whole text's (one predict call)."""
    segments = transcript["segments"]
    results = classifier.predict([transcript["text"]] + [s["text"] for s in segments],
                                 batch_size=settings.emotion_batch_size)
    for segment, emotion in zip(segments, results[1:]):
        segment["emotion"] = emotion
    return results[0]


@per_job
def transcribe(services: Services, job: ClaimedJob) -> JobOutcome:
    settings = services.settings
    started = time.perf_counter()
    transcript, model = transcribe_audio(settings, job)
    transcribed = time.perf_counter()
    classifier = emotion_model(settings)
    transcript["emotion"] = add_emotions(settings, transcript, classifier)
    transcript["models"] = {"transcription": model_info(model), "emotion": model_info(classifier)}
    transcript["timings_ms"] = {"transcription": round((transcribed - started) * 1000),
                                "emotion": round((time.perf_counter() - transcribed) * 1000)}
    return JobOutcome(transcript, model.name, model.version, emotion=transcript["emotion"])
