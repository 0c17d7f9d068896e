"""Emotion analysis jobs: claim, run the model, store the result once."""
from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import OperationalError

from db.jobs import claim_job, complete_emotion_job, fail_job, fail_unclaimed_job
from db.session import session_scope
from tasks.events import job_finished
from workers.celery_app import app, settings
from workers.models import emotion_classifier

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


@app.task(name="tasks.emotion.analyze_job", bind=True, max_retries=5)
def analyze_job(self, job_id: str) -> None:
    try:
        run_emotion_job(uuid.UUID(job_id))
    except OperationalError as error:
        log.warning("database unavailable for job %s; retrying", job_id)
        raise self.retry(exc=error, countdown=min(2 ** self.request.retries, 30))


def run_emotion_job(job_id: uuid.UUID) -> None:
    with session_scope(settings.database_url) as session:
        job = claim_job(session, job_id)
    if job is None:
        log.info("job %s is finished, canceled or unknown; skipping", job_id)
        return
    if job.attempts > MAX_ATTEMPTS:
        with session_scope(settings.database_url) as session:
            stored = fail_unclaimed_job(session, job.id, "too_many_attempts",
                                        f"The job was started {MAX_ATTEMPTS} times without finishing.")
        if stored:
            job_finished(settings, job.id, "failed")
        return

    classifier = emotion_classifier(settings)
    try:
        result = classifier.predict([job.input["text"]])[0]
    except ValueError as error:
        record_failure(job, "invalid_input", str(error))
        return
    except Exception as error:  # noqa: BLE001 - a model failure belongs on the job, not in a crash loop
        log.exception("emotion inference failed for job %s", job_id)
        record_failure(job, "inference_error", f"The emotion model failed: {type(error).__name__}.")
        return

    with session_scope(settings.database_url) as session:
        stored = complete_emotion_job(session, job, result, classifier.name, classifier.version)
    if stored:
        job_finished(settings, job.id, "succeeded")
    else:
        log.info("job %s finished elsewhere or was canceled; result discarded", job_id)


def record_failure(job, code: str, message: str) -> None:
    with session_scope(settings.database_url) as session:
        stored = fail_job(session, job, code, message)
    if stored:
        job_finished(settings, job.id, "failed")
