"""A real Celery worker whose emotion model fails with an error that quotes its input, for error tracking tests.

Run as ``python -m tests.support.failing_worker worker -Q cpu ...``.
"""
from __future__ import annotations

import sys

from tasks.worker import app
from workers.emotion.model import EmotionClassifier


def _failing_predict(self, texts, *args, **kwargs):
    raise RuntimeError(f"cannot score {texts!r}")


EmotionClassifier.predict = _failing_predict

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])
