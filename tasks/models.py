"""The worker's models as job handlers use them: a model that will not load fails the job."""
from __future__ import annotations

import logging

from config.settings import Settings
from tasks.lifecycle import JobFailure
from workers.models import emotion_classifier

log = logging.getLogger(__name__)


def emotion_model(settings: Settings):
    """The worker's emotion classifier; a model that will not load fails the job as unavailable."""
    try:
        return emotion_classifier(settings)
    except Exception as error:  # noqa: BLE001 - missing files, bad config: all mean "unavailable"
        log.exception("emotion model unavailable")
        raise JobFailure("model_unavailable", f"The emotion model cannot be loaded: {type(error).__name__}: "
                                              f"{error}") from error


def model_info(model) -> dict:
    return {"name": model.name, "version": model.version}
