"""A real Celery worker whose emotion model is slowed down, so a test can kill it mid-job.

Run as ``python -m tests.support.slow_worker worker -Q cpu ...`` with
``SAMO_TEST_PREDICT_DELAY_S`` set; everything else (broker, database, model) is the real thing.
"""
from __future__ import annotations

import os
import sys
import time

from tasks.worker import app
from workers.emotion.model import EmotionClassifier

_real_predict = EmotionClassifier.predict


def _slow_predict(self, texts, *args, **kwargs):
    time.sleep(float(os.environ.get("SAMO_TEST_PREDICT_DELAY_S", "5")))
    return _real_predict(self, texts, *args, **kwargs)


EmotionClassifier.predict = _slow_predict

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])
