"""Summarisation jobs: the configured summariser (extractive MiniLM by default) over a text."""
from __future__ import annotations

import logging

from config.settings import Settings
from db.jobs import ClaimedJob, JobOutcome
from tasks.lifecycle import per_job
from tasks.services import Services
from workers.models import extractive_summarizer, summarizer

log = logging.getLogger(__name__)


def summarize_text(settings: Settings, text: str, options: dict) -> tuple[dict, object]:
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
        model = extractive_summarizer(settings)
    return model.summarize(text, sentences=options.get("sentences"), ratio=options.get("ratio")), model


@per_job
def summarize(services: Services, job: ClaimedJob) -> JobOutcome:
    result, model = summarize_text(services.settings, job.input["text"], job.options)
    return JobOutcome(result, model.name, model.version)
