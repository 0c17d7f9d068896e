"""Models loaded once per worker process, configured from settings."""
from __future__ import annotations

import logging
import threading

from config.settings import Settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_emotion_classifier = None


def emotion_classifier(settings: Settings):
    """The process's emotion classifier; loaded on first use (or at worker start), then shared."""
    global _emotion_classifier
    with _lock:
        if _emotion_classifier is None:
            from workers.emotion.model import EmotionClassifier

            _emotion_classifier = EmotionClassifier.load(
                model_ref=settings.emotion_model or None,
                device=settings.emotion_device,
                int8=settings.emotion_int8,
            )
            log.info("emotion model loaded: %s %s", _emotion_classifier.name, _emotion_classifier.version)
        return _emotion_classifier
