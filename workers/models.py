"""Models loaded once per worker process, configured from settings."""
from __future__ import annotations

import logging
import threading

from config.settings import DEFAULT_EMOTION_MODEL, Settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_emotion_classifiers: dict[str, object] = {}


def load_emotion_classifier(settings: Settings, key: str = DEFAULT_EMOTION_MODEL):
    """A new emotion classifier configured from ``settings``, the one ``SAMO_EMOTION_MODELS`` names
    ``key`` (benchmarks load it exactly like this). Engine, device and ONNX cache are shared by
    every model; the cache keys each export by its model's weights (``workers.emotion.export``)."""
    from workers.emotion.export import ExportOptions
    from workers.emotion.model import EmotionClassifier

    export_options = None
    if settings.emotion_engine == "onnx" and settings.emotion_int8 and settings.emotion_onnx_quantisation != "dynamic":
        export_options = ExportOptions("int8", settings.emotion_onnx_quantisation)
    classifier = EmotionClassifier.load(
        model_ref=settings.emotion_model_refs[key] or None,
        device=settings.emotion_device,
        int8=settings.emotion_int8,
        engine=settings.emotion_engine,
        cache_dir=settings.emotion_onnx_cache or None,
        export_options=export_options,
    )
    if settings.pass_overhead_tokens > 0:
        classifier.pass_overhead_tokens = settings.pass_overhead_tokens
    return classifier


def emotion_classifier(settings: Settings, key: str = DEFAULT_EMOTION_MODEL):
    """The process's emotion classifier ``key``; loaded on first use (or at worker start), then shared.

    Raises ``KeyError`` for a key ``SAMO_EMOTION_MODELS`` does not configure.
    """
    with _lock:
        if key not in _emotion_classifiers:
            if key not in settings.emotion_model_refs:
                raise KeyError(f"emotion model {key!r} is not configured (SAMO_EMOTION_MODELS: "
                               f"{', '.join(settings.emotion_model_refs)})")
            classifier = load_emotion_classifier(settings, key)
            _emotion_classifiers[key] = classifier
            log.info("emotion model loaded: %s %s (key %s)", classifier.name, classifier.version, key)
        return _emotion_classifiers[key]


def emotion_classifiers(settings: Settings) -> list:
    """The emotion classifiers of every model this worker loads (``SAMO_WORKER_EMOTION_MODELS``)."""
    return [emotion_classifier(settings, key) for key in settings.worker_emotion_models]


_transcriber = None
_summarizer = None


def transcriber(settings: Settings):
    """The process's Whisper transcriber (faster-whisper); loaded on first use unless preloaded.

    Raises ``TranscriptionError`` (``model_unavailable``) when the model cannot be loaded; a
    later call tries again.
    """
    global _transcriber
    with _lock:
        if _transcriber is None:
            from workers.speech.transcriber import Transcriber

            _transcriber = Transcriber.load(
                model_ref=settings.whisper_model or None,
                device=settings.whisper_device,
                compute_type=settings.whisper_compute_type or None,
                vad_filter=settings.whisper_vad,
                batched_threshold_s=settings.whisper_batched_threshold_s,
                cpu_threads=settings.whisper_cpu_threads,
            )
            log.info("transcription model loaded: %s", _transcriber.describe())
        return _transcriber


def summarizer(settings: Settings):
    """The process's summariser: extractive MiniLM, or abstractive when ``summary_model`` is set.

    An abstractive model that cannot be loaded (no hub access, missing folder) falls back to the
    extractive summariser with a logged error, so summaries keep working; the job result's
    ``method`` says which ran. The attempt is not repeated in this process.
    """
    global _summarizer
    with _lock:
        if _summarizer is None:
            _summarizer = _load_summarizer(settings)
            log.info("summariser loaded: %s %s (%s)", _summarizer.name, _summarizer.version,
                     _summarizer.method)
        return _summarizer


def extractive_summarizer(settings: Settings):
    """The extractive summariser on the configured device and sentence-encoder engine."""
    from workers.summarize.extractive import ExtractiveSummarizer

    return ExtractiveSummarizer.load(device=settings.summary_device, engine=settings.summary_engine,
                                     int8=settings.summary_int8, cache_dir=settings.emotion_onnx_cache or None)


def _load_summarizer(settings: Settings):
    from workers.summarize.common import SummarizerUnavailable

    if settings.summary_model:
        from workers.summarize.abstractive import AbstractiveSummarizer

        try:
            return AbstractiveSummarizer.load(settings.summary_model, device=settings.summary_device)
        except SummarizerUnavailable:
            log.exception("abstractive summariser %r unavailable; using the extractive one",
                          settings.summary_model)
    return extractive_summarizer(settings)


LOADERS = {"emotion": emotion_classifiers, "transcriber": transcriber, "summarizer": summarizer}


def preload(settings: Settings) -> list[str]:
    """Load the models named in ``settings.preload_models`` (worker start-up); returns those loaded."""
    loaded = []
    for name in settings.preload_models:
        loader = LOADERS.get(name)
        if loader is None:
            log.warning("SAMO_PRELOAD_MODELS: unknown model %r (known: %s)", name, ", ".join(LOADERS))
            continue
        loader(settings)
        loaded.append(name)
    return loaded
