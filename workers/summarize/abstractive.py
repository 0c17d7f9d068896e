"""Abstractive summaries with any Hugging Face seq2seq model (t5-small, bart-large-cnn, ...).

No such model ships in a pip package, so this path only works where the configured model is
a local folder, or is in the local Hugging Face cache, or the hub is reachable. When it is not,
:meth:`AbstractiveSummarizer.load` raises :class:`SummarizerUnavailable` saying why, instead of
hanging on a download; task code can fall back to the extractive summariser.

Input handling, which is where seq2seq summarisation usually goes wrong:

* the model's task prefix is prepended (``"summarize: "`` for T5, from the config's
  ``task_specific_params`` or the T5 convention);
* the input budget is the smaller of the tokenizer's ``model_max_length`` and the model's
  position limit; longer text is cut into chunks at sentence boundaries, each chunk is
  summarised, and the joined partial summaries are summarised again while they exceed the
  budget (map-reduce). More than ``max_chunks`` chunks is refused with ``ValueError``;
* ``max_length``/``min_length`` (summary tokens) default to the model's summarisation settings;
  a default ``min_length`` is lowered for short input, so the model is never forced to write
  more than it read;
* beam search without sampling, so output is deterministic.
"""
from __future__ import annotations

import threading
from pathlib import Path

from workers.summarize.common import (
    SummarizerUnavailable,
    check_text,
    hub_offline,
    model_identity,
    resolve_torch_device,
    result,
)
from workers.summarize.sentences import split_sentences

__all__ = ["AbstractiveSummarizer", "SummarizerUnavailable", "DEFAULT_MODEL"]

DEFAULT_MODEL = "t5-small"
FALLBACK_INPUT_TOKENS = 512
FALLBACK_MAX_LENGTH = 128
_TRANSFORMERS_DEFAULT_MAX_LENGTH = 20
MAX_REDUCE_PASSES = 3

_MODELS: dict[tuple[str, str], tuple] = {}
_MODELS_LOCK = threading.Lock()


def _load_seq2seq(source: str, device: str):
    key = (source, device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            local_only = hub_offline() or Path(source).is_dir()
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
                model = AutoModelForSeq2SeqLM.from_pretrained(source, local_files_only=local_only)
                model.to(device).eval()
            except Exception as exc:  # noqa: BLE001 - any load failure means "unavailable"
                hint = " (HF_HUB_OFFLINE is set: only local or cached models load)"
                raise SummarizerUnavailable(
                    f"cannot load seq2seq summarisation model {source!r}: "
                    f"{type(exc).__name__}: {exc}{hint if hub_offline() else ''}"
                ) from exc
            _MODELS[key] = (tokenizer, model)
        return _MODELS[key]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class AbstractiveSummarizer:
    """A seq2seq model plus the chunking and generation policy; build it with :meth:`load`."""

    method = "abstractive"

    def __init__(
        self,
        tokenizer,
        model,
        *,
        name: str,
        version: str,
        device: str,
        batch_size: int = 4,
        max_chunks: int = 16,
    ):
        self.tokenizer = tokenizer
        self.model = model
        self.name = name
        self.version = version
        self.device = device
        self.batch_size = batch_size
        self.max_chunks = max_chunks
        task_params = getattr(model.config, "task_specific_params", None) or {}
        self.task_params = dict(task_params.get("summarization", {}))
        self.prefix = self.task_params.get("prefix") or (
            "summarize: " if model.config.model_type == "t5" else ""
        )
        self.max_input_tokens = self._input_budget()

    @classmethod
    def load(
        cls, model_ref: str | None = None, device: str = "auto", **options
    ) -> AbstractiveSummarizer:
        """Load ``model_ref`` (a local folder or hub id; ``None``: ``t5-small``) once per process.

        Raises :class:`SummarizerUnavailable` when it cannot be loaded, e.g. offline.
        """
        source, name, version = model_identity(model_ref or DEFAULT_MODEL)
        resolved = resolve_torch_device(device)
        tokenizer, model = _load_seq2seq(source, resolved)
        return cls(tokenizer, model, name=name, version=version, device=resolved, **options)

    def _input_budget(self) -> int:
        limits = [
            getattr(self.model.config, attr, None)
            for attr in ("max_position_embeddings", "n_positions", "max_source_positions")
        ]
        limits.append(getattr(self.tokenizer, "model_max_length", None))
        usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
        return min(usable) if usable else FALLBACK_INPUT_TOKENS

    def generation_lengths(
        self, input_tokens: int, max_length: int | None, min_length: int | None
    ) -> tuple[int, int]:
        """``(max_length, min_length)`` in summary tokens: explicit values win, then the
        model's summarisation settings; a defaulted ``min_length`` never exceeds the input."""
        if max_length is not None:
            _positive_int("max_length", max_length)
        if min_length is not None:
            _positive_int("min_length", min_length)
        if max_length is not None and min_length is not None and min_length > max_length:
            raise ValueError(f"min_length ({min_length}) is greater than max_length ({max_length})")
        generation = getattr(self.model, "generation_config", None)
        default_max = self.task_params.get("max_length") or getattr(generation, "max_length", None)
        if not default_max or default_max == _TRANSFORMERS_DEFAULT_MAX_LENGTH:
            default_max = FALLBACK_MAX_LENGTH
        chosen_max = max_length or int(default_max)
        if min_length is None:
            default_min = self.task_params.get("min_length") or getattr(generation, "min_length", 0)
            min_length = min(int(default_min or 0), max(1, input_tokens // 2), chosen_max)
        return chosen_max, min_length

    def _token_counts(self, texts: list[str]) -> list[int]:
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def chunk(self, text: str) -> list[str]:
        """Cut ``text`` at sentence boundaries into pieces that fit the input budget."""
        prefix_tokens = self._token_counts([self.prefix])[0] if self.prefix else 0
        special = self.tokenizer.num_special_tokens_to_add()
        budget = max(8, self.max_input_tokens - prefix_tokens - special)
        sentences = [s.text for s in split_sentences(text, max_chars=budget * 4)]
        chunks: list[str] = []
        current: list[str] = []
        used = 0
        for sentence, count in zip(sentences, self._token_counts(sentences)):
            if current and used + count > budget:
                chunks.append(" ".join(current))
                current, used = [], 0
            current.append(sentence)
            used += count
        if current:
            chunks.append(" ".join(current))
        return chunks

    def _generate(self, chunks: list[str], max_length: int, min_length: int | None) -> list[str]:
        import torch

        outputs: list[str] = []
        generation = getattr(self.model, "generation_config", None)
        num_beams = self.task_params.get("num_beams") or getattr(generation, "num_beams", 1)
        num_beams = int(num_beams or 1)
        for start in range(0, len(chunks), self.batch_size):
            batch = [self.prefix + c for c in chunks[start : start + self.batch_size]]
            encoded = self.tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=self.max_input_tokens,
                return_tensors="pt",
            ).to(self.device)
            input_tokens = int(encoded["attention_mask"].sum(dim=1).min())
            max_len, min_len = self.generation_lengths(input_tokens, max_length, min_length)
            with torch.inference_mode():
                generated = self.model.generate(
                    input_ids=encoded["input_ids"],
                    attention_mask=encoded["attention_mask"],
                    max_length=max_len,
                    min_length=min_len,
                    num_beams=num_beams,
                    do_sample=False,
                )
            outputs.extend(
                t.strip()
                for t in self.tokenizer.batch_decode(
                    generated, skip_special_tokens=True, clean_up_tokenization_spaces=True
                )
            )
        return outputs

    def summarize(
        self, text: str, max_length: int | None = None, min_length: int | None = None
    ) -> dict:
        """Summarise ``text``; ``max_length``/``min_length`` are summary lengths in tokens.

        Raises ``ValueError`` for bad lengths, empty text, or text over ``max_chunks`` chunks.
        """
        check_text(text)
        self.generation_lengths(FALLBACK_INPUT_TOKENS, max_length, min_length)
        chunks = self.chunk(text)
        if len(chunks) > self.max_chunks:
            raise ValueError(
                f"text too long for abstractive summarisation with {self.name}: "
                f"{len(chunks)} chunks of {self.max_input_tokens} tokens, at most "
                f"{self.max_chunks}; use the extractive summariser"
            )
        partials = self._generate(chunks, max_length, min_length)
        for _ in range(MAX_REDUCE_PASSES):
            if len(partials) == 1:
                break
            partials = self._generate(self.chunk(" ".join(partials)), max_length, min_length)
        summary = " ".join(partials)
        total = len(split_sentences(text))
        return result(summary, self.method, [], total, text)
