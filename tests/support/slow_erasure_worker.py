"""A real Celery worker whose erasures pause after each chunk, so a test can kill one mid-way.

Run as ``python -m tests.support.slow_erasure_worker worker -Q maintenance ...`` with
``SAMO_TEST_ERASURE_CHUNK_DELAY_S`` set; the chunks themselves are the real ones.
"""
from __future__ import annotations

import os
import sys
import time

from tasks import erasures
from tasks.worker import app

_real_erase_chunk = erasures.erase_chunk


def _slow_erase_chunk(*args, **kwargs):
    chunk = _real_erase_chunk(*args, **kwargs)
    time.sleep(float(os.environ.get("SAMO_TEST_ERASURE_CHUNK_DELAY_S", "5")))
    return chunk


erasures.erase_chunk = _slow_erase_chunk

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])
