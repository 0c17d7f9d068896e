"""ONNX Runtime sessions for the models with an ONNX engine, and the clear error when it is missing."""
from __future__ import annotations

from pathlib import Path


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run in this process (e.g. onnxruntime is not installed)."""


def require_onnxruntime(setting: str = "SAMO_EMOTION_ENGINE"):
    """The ``onnxruntime`` module, or EngineUnavailable saying how to get it or avoid it (``setting=torch``)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise EngineUnavailable(
            f"{setting}=onnx needs the onnxruntime package, which this Python cannot import "
            f"({error}); install requirements/worker.txt or set {setting}=torch") from error
    return onnxruntime


def inference_session(path: Path, device_type: str, threads: int, setting: str = "SAMO_EMOTION_ENGINE"):
    """A session over ``path`` with ``threads`` intra-op threads, on CUDA first when ``device_type`` is cuda.

    The intra-op threads sleep between operators instead of spin-waiting (ONNX Runtime's default):
    a worker shares its cores with its pool's other processes, the API and the database, and
    spinning threads take those cores from them for no work.
    """
    ort = require_onnxruntime(setting)
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device_type == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), options, providers=providers)


def cuda_provider_available(setting: str = "SAMO_EMOTION_ENGINE") -> bool:
    return "CUDAExecutionProvider" in require_onnxruntime(setting).get_available_providers()
