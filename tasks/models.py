"""The worker's models as job handlers use them: a model that will not load fails the job."""
from __future__ import annotations

import logging
from collections.abc import Mapping

from config.settings import DEFAULT_EMOTION_MODEL, Settings
from tasks.lifecycle import JobFailure
from workers.models import emotion_classifier

log = logging.getLogger(__name__)


def emotion_model_key(options: Mapping) -> str:
    """The key of the emotion model a job's ``options.model`` chose (``default`` when none)."""
    return options.get("model") or DEFAULT_EMOTION_MODEL


def emotion_model(settings: Settings, key: str = DEFAULT_EMOTION_MODEL):
    """The worker's emotion classifier ``key``; a model that will not load fails the job as unavailable."""
    try:
        return emotion_classifier(settings, key)
    except Exception as error:  # noqa: BLE001 - missing files, bad config: all mean "unavailable"
        log.exception("emotion model %s unavailable", key)
        raise JobFailure("model_unavailable", f"The emotion model {key!r} cannot be loaded: "
                                              f"{type(error).__name__}: {error}") from error


def model_info(model, key: str | None = None) -> dict:
    """A result's ``models`` entry; ``key``: the configured emotion model it is (``SAMO_EMOTION_MODELS``)."""
    info = {"name": model.name, "version": model.version}
    return info if key is None else {**info, "key": key}
