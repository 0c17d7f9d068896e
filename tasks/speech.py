"""Transcription jobs: faster-whisper on the uploaded audio, then emotion per segment and overall.

The emotion model runs once per job, on one list holding the whole text and every segment, so
a recording of a hundred segments costs one batched inference, not a hundred.
"""
from __future__ import annotations

import logging
import time
import uuid

from sqlalchemy.exc import OperationalError

from db.jobs import ClaimedJob
from tasks.job_runner import Outcome, emotion_model, model_info, run_job
from workers.celery_app import app, settings
from workers.media_storage import media_path
from workers.models import transcriber

log = logging.getLogger(__name__)


@app.task(name="tasks.speech.transcribe_job", bind=True, max_retries=5)
def transcribe_job(self, job_id: str) -> None:
    try:
        run_job(uuid.UUID(job_id), transcribe)
    except OperationalError as error:
        log.warning("database unavailable for job %s; retrying", job_id)
        raise self.retry(exc=error, countdown=min(2 ** self.request.retries, 30))


def transcribe_audio(job: ClaimedJob) -> tuple[dict, object]:
    """The transcript of the job's upload, and the transcriber that made it.

    Raises ``TranscriptionError`` for bad audio (the job fails with its code).
    """
    model = transcriber(settings)
    path = media_path(settings, job.id, job.input["audio"].get("filename"))
    transcript = model.transcribe(path, language=job.options.get("language"),
                                  max_duration_s=settings.max_audio_seconds)
    return transcript, model


def add_emotions(transcript: dict, classifier) -> dict:
    """Attach an emotion result to every segment; returns the whole text's (one predict call)."""
    segments = transcript["segments"]
    results = classifier.predict([transcript["text"]] + [s["text"] for s in segments],
                                 batch_size=settings.emotion_batch_size)
    for segment, emotion in zip(segments, results[1:]):
        segment["emotion"] = emotion
    return results[0]


def transcribe(job: ClaimedJob) -> Outcome:
    started = time.perf_counter()
    transcript, model = transcribe_audio(job)
    transcribed = time.perf_counter()
    classifier = emotion_model()
    transcript["emotion"] = add_emotions(transcript, classifier)
    transcript["models"] = {"transcription": model_info(model), "emotion": model_info(classifier)}
    transcript["timings_ms"] = {"transcription": round((transcribed - started) * 1000),
                                "emotion": round((time.perf_counter() - transcribed) * 1000)}
    return Outcome(transcript, model.name, model.version, emotion=transcript["emotion"])
