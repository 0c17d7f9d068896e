"""A worker pinned to the `gpu` queue on a machine without CUDA refuses to start, and says why."""
from __future__ import annotations

import pytest

from tests.conftest import settings_env
from tests.support.processes import CeleryWorker


def test_gpu_worker_without_cuda_refuses_to_start_with_a_clear_message(settings):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: a gpu worker is allowed to start here")
    worker = CeleryWorker(settings_env(settings), queues=("gpu",))
    with pytest.raises(RuntimeError) as refused:
        worker.start(timeout_s=120)
    assert worker.process.wait(timeout=30) != 0
    assert "no CUDA device is available" in str(refused.value)
    assert "-Q cpu" in str(refused.value)

