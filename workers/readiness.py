"""The worker's readiness file: present while the worker can take jobs, for an orchestrator's probe.

A Kubernetes readiness (and startup) probe of a model worker must wait for the models, which
pool processes load after the worker has started; a `celery inspect ping` answers before that.
So the pool process that has loaded its models creates the file, a worker without models creates
it once it is ready, and the worker removes it when it starts and when it shuts down, so a worker
that is draining its last batch is no longer reported ready.
"""
from __future__ import annotations

import os
from pathlib import Path


def mark_ready(path: str) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(f"{os.getpid()}\n")


def mark_not_ready(path: str) -> None:
    if path:
        Path(path).unlink(missing_ok=True)
