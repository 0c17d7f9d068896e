"""The extractive summariser's sentence encoder behind one call: token ids and mask in, embeddings out.

Both engines compute the same thing: the transformer's last hidden state, mean-pooled over the
real tokens and L2-normalised, as sentence-transformers does for all-MiniLM-L6-v2.
``TorchEncoder`` runs the ``nn.Module``; ``OnnxEncoder`` runs a graph of the same network with the
pooling inside it, exported once per model version into the ONNX cache the emotion engine uses
(``workers/onnx_cache.py``) with the shared recipe (``workers/onnx_export.py``: BERT fusions,
optionally dynamic int8). Both take int64 numpy arrays ``(texts, width)`` and return float32
``(texts, dim)``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workers.onnx_cache import cached_graph, entry_dir, staged_entry
from workers.onnx_export import OPSET, export_graph, optimise, quantise_dynamic
from workers.onnx_runtime import inference_session

ENGINES = ("torch", "onnx")
SETTING = "SAMO_SUMMARY_ENGINE"
#: Bumped whenever the export recipe changes, so older cache entries are not reused.
EXPORT_FORMAT = "samo-sentence-encoder-onnx/1"
#: Cosine similarity an ONNX embedding keeps to torch fp32's of the same sentence (dev rows in
#: tests/summarize/test_encoders.py): fp32 differs by float rounding only, on every sentence; int8
#: by the quantisation of every weight and activation, bounded at the least and on average. Even
#: that much int8 error flips near-ties in the choice of sentences (docs/benchmarks.md).
FP32_MIN_COSINE = 0.9999
INT8_MIN_COSINE = {"min": 0.9, "mean": 0.98}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")


def weights_key(source: str) -> str:
    """A digest of a model folder's weights and config, which keys its cached exports."""
    digest = hashlib.sha256()
    folder = Path(source)
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def state_key(model) -> str:
    """A digest of a loaded model's weights, for models that are not a folder (hub ids resolved from cache)."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def pooled_encoder(model):
    """``model`` (a Hugging Face encoder) called positionally, returning normalised mean-pooled embeddings."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = model

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return MeanPooled().eval()


class TorchEncoder:
    name = "torch"
    precision = "fp32"

    def __init__(self, model, device: str):
        self.net = pooled_encoder(model)
        self.device = device
        self.dim = int(model.config.hidden_size)

    def embed(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            attention = torch.from_numpy(mask).to(self.device)
            return self.net(ids, attention).float().cpu().numpy()


class OnnxEncoder:
    """An ONNX Runtime session over one exported sentence-encoder graph."""

    name = "onnx"

    def __init__(self, path: Path, precision: str, dim: int, device_type: str, threads: int):
        self.session = inference_session(path, device_type, threads, setting=SETTING)
        self.providers = self.session.get_providers()
        self.path = path
        self.precision = precision
        self.dim = dim

    def embed(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": mask}
        return self.session.run(None, feed)[0].astype(np.float32, copy=False)


def cached_encoder_graph(load_model: Callable[[], object], *, name: str, key: str, precision: str,
                         cache_dir: Path) -> Path:
    """The verified cached graph of this encoder, exported first (``load_model`` is only called then)."""
    entry = entry_dir(cache_dir, name, key, precision, export_format=EXPORT_FORMAT, opset=OPSET,
                      options=precision)
    return cached_graph(entry, lambda: build(load_model(), entry, precision), f"{name} sentence encoder ({precision})")


def build(model, entry: Path, precision: str) -> None:
    """Export the pooled encoder, fuse it, quantise it for int8, into ``entry``."""
    with staged_entry(entry, {"format": EXPORT_FORMAT, "precision": precision}) as work:
        raw, optimised, final = work / "raw.onnx", work / "optimised.onnx", work / "model.onnx"
        export_graph(pooled_encoder(model), raw, "embeddings")
        optimise(raw, optimised, model, str(getattr(model.config, "model_type", "")), fp16=False)
        if precision == "int8":
            quantise_dynamic(optimised, final)
        else:
            optimised.replace(final)
