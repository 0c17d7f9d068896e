"""The forward pass of the emotion classifier behind one call: padded ids and mask in, logits out.

``TorchEngine`` runs the ``nn.Module`` (fp32, bf16/fp16 on CUDA, or torch's dynamic int8);
``OnnxEngine`` runs an exported graph (``workers/emotion/export.py``) in ONNX Runtime. Both take
int64 numpy arrays ``(texts, width)`` and return float32 logits ``(texts, labels)``, so tokenising,
length-sorted batching and the cut into passes stay in ``EmotionClassifier`` whatever the engine.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from workers.onnx_runtime import (
    EngineUnavailable,
    cuda_provider_available,
    inference_session,
    require_onnxruntime,
)

__all__ = ["ENGINES", "EngineUnavailable", "OnnxEngine", "TorchEngine", "cuda_provider_available",
           "require_onnxruntime"]

log = logging.getLogger(__name__)

ENGINES = ("torch", "onnx")


class TorchEngine:
    name = "torch"

    def __init__(self, module, device, delta: bool):
        self.module = module
        self.device = device
        self._delta = delta

    def logits(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        ids = torch.from_numpy(input_ids).to(self.device)
        attention = torch.from_numpy(mask).to(self.device)
        with torch.inference_mode():
            if self._delta:
                out = self.module(ids, attention)
            else:
                out = self.module(input_ids=ids, attention_mask=attention).logits
            return out.float().cpu().numpy()


class OnnxEngine:
    """An ONNX Runtime session over one exported graph file."""

    name = "onnx"

    def __init__(self, path: Path, device_type: str, threads: int):
        self.session = inference_session(path, device_type, threads)
        self.providers = self.session.get_providers()
        self._inputs = [i.name for i in self.session.get_inputs()]

    def logits(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": mask}
        return self.session.run(None, {name: feed[name] for name in self._inputs})[0].astype(np.float32, copy=False)
