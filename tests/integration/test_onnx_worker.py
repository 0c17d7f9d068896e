"""A worker set to the ONNX engine on a machine without onnxruntime refuses to start, and says why."""
from __future__ import annotations

from tests.conftest import settings_env
from tests.support.processes import REPO_ROOT, CeleryWorker


def test_onnx_worker_without_onnxruntime_refuses_to_start_with_a_clear_message(settings, tmp_path):
    hidden = tmp_path / "no-onnxruntime" / "onnxruntime"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("No module named \'onnxruntime\'")\n')
    worker = CeleryWorker({**settings_env(settings), "SAMO_EMOTION_ENGINE": "onnx"}, queues=("cpu",))
    worker.env["PYTHONPATH"] = f"{hidden.parent}:{REPO_ROOT}"
    try:
        worker.start(timeout_s=120)
    except RuntimeError as refused:
        message = str(refused)
    else:
        worker.stop()
        raise AssertionError("the worker started without onnxruntime")
    assert worker.process.wait(timeout=30) != 0
    assert "SAMO_EMOTION_ENGINE=onnx needs the onnxruntime package" in message
    assert "SAMO_EMOTION_ENGINE=torch" in message
