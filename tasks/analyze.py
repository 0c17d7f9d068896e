"""Combined analysis: one job, one result document, for a text or a recording.

``options.services`` picks emotion and/or summary; audio is transcribed first, and its
segments get their own emotion results in the same batched inference as the whole text.
"""
from __future__ import annotations

from db.jobs import ClaimedJob, JobOutcome
from tasks.emotion import emotion_of
from tasks.lifecycle import per_job
from tasks.models import emotion_model, model_info
from tasks.services import Services
from tasks.speech import add_emotions, progress_events, transcribe_audio
from tasks.summarize import summarize_text

DEFAULT_SERVICES = ("emotion", "summary")


@per_job
def analyze(services: Services, job: ClaimedJob) -> JobOutcome:
    settings = services.settings
    requested = list(job.options.get("services") or DEFAULT_SERVICES)
    result: dict = {"services": requested}
    models: dict = {}
    if "audio" in job.input:
        transcript, model = transcribe_audio(settings, job, progress_events(services, job))
        models["transcription"] = model_info(model)
        result["transcript"] = transcript
        text = transcript["text"]
    else:
        transcript, text = None, job.input["text"]
    recorded = None
    if "emotion" in requested:
        classifier = emotion_model(settings)
        models["emotion"] = model_info(classifier)
        if transcript is not None:
            result["emotion"], recorded = add_emotions(settings, transcript, classifier, job.options)
        else:
            result["emotion"], recorded = emotion_of(classifier, text, job.options, settings.emotion_batch_size)
    if "summary" in requested:
        result["summary"], summariser = summarize_text(settings, text, job.options)
        models["summary"] = {**model_info(summariser), "method": summariser.method}
    result["models"] = models
    primary = next(iter(models.values()))
    return JobOutcome(result, primary["name"], primary["version"], emotion=recorded)
