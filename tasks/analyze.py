"""Combined analysis: one job, one result document, for a text or a recording.

``options.services`` picks emotion and/or summary; audio is transcribed first, and its
segments get their own emotion results in the same batched inference as the whole text.
"""
from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import OperationalError

from db.jobs import ClaimedJob
from tasks.job_runner import Outcome, emotion_model, model_info, run_job
from tasks.speech import add_emotions, transcribe_audio
from tasks.summarize import summarize_text
from workers.celery_app import app

log = logging.getLogger(__name__)

DEFAULT_SERVICES = ("emotion", "summary")


@app.task(name="tasks.analyze.analyze_job", bind=True, max_retries=5)
def analyze_job(self, job_id: str) -> None:
    try:
        run_job(uuid.UUID(job_id), analyze)
    except OperationalError as error:
        log.warning("database unavailable for job %s; retrying", job_id)
        raise self.retry(exc=error, countdown=min(2 ** self.request.retries, 30))


def analyze(job: ClaimedJob) -> Outcome:
    services = list(job.options.get("services") or DEFAULT_SERVICES)
    result: dict = {"services": services}
    models: dict = {}
    if "audio" in job.input:
        transcript, model = transcribe_audio(job)
        models["transcription"] = model_info(model)
        result["transcript"] = transcript
        text = transcript["text"]
    else:
        transcript, text = None, job.input["text"]
    emotion = None
    if "emotion" in services:
        classifier = emotion_model()
        models["emotion"] = model_info(classifier)
        if transcript is not None:
            emotion = add_emotions(transcript, classifier)
        else:
            emotion = classifier.predict([text])[0]
        result["emotion"] = emotion
    if "summary" in services:
        result["summary"], summariser = summarize_text(text, job.options)
        models["summary"] = {**model_info(summariser), "method": summariser.method}
    result["models"] = models
    primary = next(iter(models.values()))
    return Outcome(result, primary["name"], primary["version"], emotion=emotion)
