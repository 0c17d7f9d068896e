"""A real Celery worker whose emotion model fails with an error that quotes its input, for error tracking tests.

Run as ``python -m tests.support.failing_worker worker -Q cpu ...``. With
``SAMO_TEST_FAIL_TEXTS_CONTAINING`` set, only texts containing it fail; the others are scored.
"""
from __future__ import annotations

import os
import sys

from tasks.worker import app
from workers.emotion.model import EmotionClassifier

_real_predict = EmotionClassifier.predict


def _failing_predict(self, texts, *args, **kwargs):
    marker = os.environ.get("SAMO_TEST_FAIL_TEXTS_CONTAINING")
    if marker and not any(marker in text for text in texts):
        return _real_predict(self, texts, *args, **kwargs)
    raise RuntimeError(f"cannot score {texts!r}")


EmotionClassifier.predict = _failing_predict

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])
