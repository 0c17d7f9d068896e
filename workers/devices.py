"""Device selection for model workers."""
from __future__ import annotations

import os


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    return requested


def cpu_threads_per_process(requested: int, processes: int) -> int:
    """``requested`` if set, else the machine's cores shared evenly among the worker's processes."""
    if requested > 0:
        return requested
    return max(1, (os.cpu_count() or 1) // max(1, processes))


def configure_torch_threads(requested: int, processes: int) -> int:
    import torch

    threads = cpu_threads_per_process(requested, processes)
    torch.set_num_threads(threads)
    return threads
