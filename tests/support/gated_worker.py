"""A real Celery worker whose model loading waits for a gate file, so a test sees a worker that is up but loading.

Run as ``python -m tests.support.gated_worker worker -Q cpu ...`` with ``SAMO_TEST_PRELOAD_GATE``
naming a file: each pool process loads its models (the real ones) once that file exists.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import workers.models
from tasks.worker import app

_real_preload = workers.models.preload


def _gated_preload(settings):
    gate = Path(os.environ["SAMO_TEST_PRELOAD_GATE"])
    while not gate.exists():
        time.sleep(0.1)
    return _real_preload(settings)


workers.models.preload = _gated_preload

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])
