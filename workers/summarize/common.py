"""What both summarisers share: errors, device and model-path resolution, argument checks."""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path

DEFAULT_SENTENCES = 3


class SummarizerUnavailable(RuntimeError):
    """The configured model cannot be loaded (missing files, no hub access, bad config).

    ``code`` matches the speech layer's ``model_unavailable`` so task code can map both alike.
    """

    code = "model_unavailable"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_torch_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def local_model_source(model_ref: str) -> tuple[str, bool]:
    """``(source, is_local_dir)``; a path-looking reference to a missing folder is an error
    here rather than a confusing hub lookup."""
    path = Path(model_ref).expanduser()
    if path.is_dir():
        return str(path.resolve()), True
    if model_ref.startswith((".", "/", "~")) or path.exists():
        raise SummarizerUnavailable(f"no model directory at {model_ref}")
    return model_ref, False


def model_identity(model_ref: str) -> tuple[str, str, str]:
    """``(source, name, version)``: a folder is named after itself and versioned by a hash of
    its config; a hub id is versioned by the transformers release that resolves it."""
    source, is_dir = local_model_source(model_ref)
    if is_dir:
        config = Path(source) / "config.json"
        digest = hashlib.sha256(config.read_bytes() if config.is_file() else b"").hexdigest()
        return source, Path(source).name, f"sha256:{digest[:16]}"
    return source, model_ref, f"transformers-{package_version('transformers')}"


def unavailable(kind: str, source: str, exc: Exception) -> SummarizerUnavailable:
    hint = " (HF_HUB_OFFLINE is set: only local or cached models load)" if hub_offline() else ""
    return SummarizerUnavailable(
        f"cannot load {kind} model {source!r}: {type(exc).__name__}: {exc}{hint}"
    )


def check_text(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty")
    return text


def target_count(total: int, sentences: int | None, ratio: float | None) -> int:
    """How many sentences to keep out of ``total``.

    ``sentences``: at most that many. ``ratio``: that share of the sentences, rounded, at least
    one. Neither: ``DEFAULT_SENTENCES`` (3), or 30 % (rounded up) when that is fewer, so a
    short text is not returned whole. Giving both is an error.
    """
    if sentences is not None and ratio is not None:
        raise ValueError("give either sentences or ratio, not both")
    if sentences is not None:
        if isinstance(sentences, bool) or not isinstance(sentences, int):
            raise ValueError(f"sentences must be an integer >= 1, got {sentences!r}")
        if sentences < 1:
            raise ValueError(f"sentences must be >= 1, got {sentences}")
        return min(sentences, total)
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
            raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        return min(total, max(1, round(ratio * total)))
    thirty_percent_up = -(-total * 3 // 10)
    return min(total, DEFAULT_SENTENCES, max(1, thirty_percent_up))


def result(summary: str, method: str, indices: list[int], total: int, text: str) -> dict:
    return {
        "summary": summary,
        "method": method,
        "sentence_indices": indices,
        "sentences_total": total,
        "compression_ratio": round(len(summary) / len(text), 4) if text else 0.0,
    }
