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

log = logging.getLogger(__name__)

ENGINES = ("torch", "onnx")


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run in this process (e.g. onnxruntime is not installed)."""


def require_onnxruntime():
    """The ``onnxruntime`` module, or EngineUnavailable saying how to get it or avoid it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise EngineUnavailable(
            "SAMO_EMOTION_ENGINE=onnx needs the onnxruntime package, which this Python cannot import "
            f"({error}); install requirements/worker.txt or set SAMO_EMOTION_ENGINE=torch") from error
    return onnxruntime


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
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device_type == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.providers = self.session.get_providers()
        self._inputs = [i.name for i in self.session.get_inputs()]

    def logits(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": mask}
        return self.session.run(None, {name: feed[name] for name in self._inputs})[0].astype(np.float32, copy=False)


def cuda_provider_available() -> bool:
    return "CUDAExecutionProvider" in require_onnxruntime().get_available_providers()
