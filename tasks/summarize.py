"""Summarisation jobs: the configured summariser (extractive MiniLM by default) over a text."""
from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import OperationalError

from db.jobs import ClaimedJob
from tasks.job_runner import Outcome, run_job
from workers.celery_app import app, settings
from workers.models import summarizer

log = logging.getLogger(__name__)


@app.task(name="tasks.summarize.summarize_job", bind=True, max_retries=5)
def summarize_job(self, job_id: str) -> None:
    try:
        run_job(uuid.UUID(job_id), summarize)
    except OperationalError as error:
        log.warning("database unavailable for job %s; retrying", job_id)
        raise self.retry(exc=error, countdown=min(2 ** self.request.retries, 30))


def summarize_text(text: str, options: dict) -> tuple[dict, object]:
    """The summary of ``text`` and the summariser that wrote it.

    ``sentences``/``ratio`` set the length of extractive summaries. An abstractive model
    writes its own length; a text needing more chunks than it map-reduces is summarised
    extractively instead (the result's ``method`` says so).
    """
    model = summarizer(settings)
    if model.method == "abstractive":
        if len(model.chunk(text)) <= model.max_chunks:
            return model.summarize(text), model
        log.info("text too long for %s; summarising extractively", model.name)
        from workers.summarize.extractive import ExtractiveSummarizer

        model = ExtractiveSummarizer.load(device=settings.summary_device)
    return model.summarize(text, sentences=options.get("sentences"), ratio=options.get("ratio")), model


def summarize(job: ClaimedJob) -> Outcome:
    result, model = summarize_text(job.input["text"], job.options)
    return Outcome(result, model.name, model.version)
