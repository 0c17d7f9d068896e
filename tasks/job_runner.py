"""The life of one model job in a worker, shared by the transcribe, summarize and analyze tasks.

Claim the job (a conditional update: a redelivered or canceled job is skipped), run the work,
store exactly one terminal state with its webhook deliveries (one transaction), tell waiting
callers and publish those deliveries (``tasks.events.job_finished``), and remove the job's
uploaded audio. Every failure of the work itself ends as a failed job with a
stable code; only the database being unreachable escapes, so Celery can retry the task with
the upload still in place.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Callable

from db.jobs import ClaimedJob, claim_job, complete_job, emotion_score_rows, fail_job, fail_unclaimed_job
from db.session import session_scope
from tasks.events import job_finished
from tasks.webhook_events import stage_job_events
from workers.celery_app import settings
from workers.media_storage import discard
from workers.speech.errors import TranscriptionError
from workers.summarize.common import SummarizerUnavailable

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class JobFailure(Exception):
    """A failure the work reports on purpose, with the code and message the job will show."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Outcome:
    result: dict
    model_name: str | None = None
    model_version: str | None = None
    #: An emotion result of the job's whole text, stored as per-label EmotionScore rows too.
    emotion: dict | None = None


def emotion_model():
    """The worker's emotion classifier; a model that will not load fails the job as unavailable."""
    from workers.models import emotion_classifier

    try:
        return emotion_classifier(settings)
    except Exception as error:  # noqa: BLE001 - missing files, bad config: all mean "unavailable"
        log.exception("emotion model unavailable")
        raise JobFailure("model_unavailable", f"The emotion model cannot be loaded: {type(error).__name__}: "
                                              f"{error}") from error


def model_info(model) -> dict:
    return {"name": model.name, "version": model.version}


def run_job(job_id: uuid.UUID, work: Callable[[ClaimedJob], Outcome]) -> str | None:
    """Run ``work`` for one job; returns the terminal status stored, or None if nothing was."""
    with session_scope(settings.database_url) as session:
        job = claim_job(session, job_id)
    if job is None:
        log.info("job %s is finished, canceled or unknown; skipping", job_id)
        discard(settings, job_id)
        return None
    if job.attempts > MAX_ATTEMPTS:
        with session_scope(settings.database_url) as session:
            stored = fail_unclaimed_job(session, job.id, "too_many_attempts",
                                        f"The job was started {MAX_ATTEMPTS} times without finishing.")
            deliveries = stage_job_events(settings, session, [job.id], "failed") if stored else []
        return finished(job, "failed" if stored else None, deliveries)

    try:
        outcome = work(job)
    except (JobFailure, TranscriptionError) as failure:
        return record_failure(job, failure.code, failure.message)
    except SummarizerUnavailable as error:
        return record_failure(job, error.code, str(error))
    except ValueError as error:
        return record_failure(job, "invalid_input", str(error))
    except Exception as error:  # noqa: BLE001 - a model failure belongs on the job, not in a crash loop
        log.exception("%s job %s failed", job.type, job_id)
        return record_failure(job, "inference_error", f"The model failed: {type(error).__name__}: {error}")

    with session_scope(settings.database_url) as session:
        stored = complete_job(session, job, outcome.result, outcome.model_name, outcome.model_version)
        if stored and outcome.emotion is not None:
            session.add_all(emotion_score_rows(job, outcome.emotion))
        deliveries = stage_job_events(settings, session, [job.id], "succeeded") if stored else []
    if not stored:
        log.info("job %s finished elsewhere or was canceled; result discarded", job_id)
    return finished(job, "succeeded" if stored else None, deliveries)


def record_failure(job: ClaimedJob, code: str, message: str) -> str | None:
    log.info("%s job %s failed: %s: %s", job.type, job.id, code, message)
    with session_scope(settings.database_url) as session:
        stored = fail_job(session, job, code, message)
        deliveries = stage_job_events(settings, session, [job.id], "failed") if stored else []
    return finished(job, "failed" if stored else None, deliveries)


def finished(job: ClaimedJob, status: str | None, deliveries: list[uuid.UUID]) -> str | None:
    """The job is terminal whoever stored it: its upload is no longer needed."""
    if "audio" in job.input:
        discard(settings, job.id)
    if status is not None:
        job_finished(settings, job.id, status, deliveries)
    return status
