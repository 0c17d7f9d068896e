"""Models loaded once per worker process, configured from settings."""
from __future__ import annotations

import logging
import threading

from config.settings import Settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_emotion_classifier = None


def load_emotion_classifier(settings: Settings):
    """A new emotion classifier configured from ``settings`` (benchmarks load it exactly like this)."""
    from workers.emotion.export import ExportOptions
    from workers.emotion.model import EmotionClassifier

    export_options = None
    if settings.emotion_engine == "onnx" and settings.emotion_int8 and settings.emotion_onnx_quantisation != "dynamic":
        export_options = ExportOptions("int8", settings.emotion_onnx_quantisation)
    classifier = EmotionClassifier.load(
        model_ref=settings.emotion_model or None,
        device=settings.emotion_device,
        int8=settings.emotion_int8,
        engine=settings.emotion_engine,
        cache_dir=settings.emotion_onnx_cache or None,
        export_options=export_options,
    )
    if settings.pass_overhead_tokens > 0:
        classifier.pass_overhead_tokens = settings.pass_overhead_tokens
    return classifier


def emotion_classifier(settings: Settings):
    """The process's emotion classifier; loaded on first use (or at worker start), then shared."""
    global _emotion_classifier
    with _lock:
        if _emotion_classifier is None:
            _emotion_classifier = load_emotion_classifier(settings)
            log.info("emotion model loaded: %s %s", _emotion_classifier.name, _emotion_classifier.version)
        return _emotion_classifier


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


def _load_summarizer(settings: Settings):
    from workers.summarize.common import SummarizerUnavailable
    from workers.summarize.extractive import ExtractiveSummarizer

    if settings.summary_model:
        from workers.summarize.abstractive import AbstractiveSummarizer

        try:
            return AbstractiveSummarizer.load(settings.summary_model, device=settings.summary_device)
        except SummarizerUnavailable:
            log.exception("abstractive summariser %r unavailable; using the extractive one",
                          settings.summary_model)
    return ExtractiveSummarizer.load(device=settings.summary_device)


LOADERS = {"emotion": emotion_classifier, "transcriber": transcriber, "summarizer": summarizer}


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
