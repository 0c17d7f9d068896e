"""Fixtures several integration modules share: one stack for batching and bulk, one set of spoken clips,
a webhook receiver and a `webhooks` worker that may deliver to it."""
from __future__ import annotations

import pytest

from tests.conftest import settings_env
from tests.support import audio
from tests.support.processes import CeleryWorker
from tests.support.stack import isolated_stack
from tests.support.webhook_receiver import WORKER_ENV, running_receiver

#: Two sentences with a pause between them, so the transcript has several segments.
SENTENCES = [
    "She opened the window and listened to the birds singing in the garden.",
    "I am very happy with the progress we made on the project this week.",
]
SPOKEN = " ".join(SENTENCES)
FORMATS = ("wav", "mp3", "ogg")


@pytest.fixture(scope="session")
def batching_stack(settings):
    """API, a batching `cpu` worker and a `bulk` worker on their own Redis database; chunks of 20 items."""
    with isolated_stack(settings, {"cpu": ("cpu",), "bulk": ("bulk",)}, bulk_chunk_size=20) as stack:
        yield stack


@pytest.fixture(scope="session")
def spoken_clips(tmp_path_factory):
    """The two sentences with a pause between them, in each format the issue names."""
    folder = tmp_path_factory.mktemp("voice-jobs")
    parts = [audio.speak(s, folder / f"part-{i}.wav") for i, s in enumerate(SENTENCES)]
    wav = audio.concatenate(parts, folder / "spoken.wav", gap_s=1.5)
    return {"wav": wav, **{ext: audio.convert(wav, folder / f"spoken.{ext}", sample_rate=16_000)
                           for ext in FORMATS[1:]}}


@pytest.fixture(scope="module")
def receiver():
    """A local HTTP receiver of webhook deliveries, for one module."""
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def webhooks_worker(settings):
    worker = CeleryWorker({**settings_env(settings), **WORKER_ENV}, queues=("webhooks",))
    worker.start()
    yield worker
    worker.stop()
