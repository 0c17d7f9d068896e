"""Session-wide audio clips (synthesised once with espeak-ng) and one loaded Whisper model."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.support import audio  # noqa: E402

#: Two sentences tiny.en transcribes reliably from espeak-ng's en-us voice.
SPOKEN_TEXT = (
    "She opened the window and listened to the birds singing in the garden. "
    "I am very happy with the progress we made on the project this week."
)
#: Three sentences with pauses between them, so VAD and Whisper return several segments.
MEETING_SENTENCES = [
    "Please send the meeting notes to the whole team before Friday afternoon.",
    "The weather was cold and rainy, so we stayed inside and read books all day.",
    "I am very happy with the progress we made on the project this week.",
]
FORMATS = ("wav", "mp3", "ogg", "flac", "m4a")


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory):
    audio.require_audio_tools()
    return tmp_path_factory.mktemp("speech-audio")


@pytest.fixture(scope="session")
def spoken_clips(audio_dir):
    """``{extension: path}`` of ``SPOKEN_TEXT`` in every format the service accepts."""
    wav = audio.speak(SPOKEN_TEXT, audio_dir / "spoken.wav")
    clips = {"wav": wav}
    for ext in FORMATS[1:]:
        clips[ext] = audio.convert(wav, audio_dir / f"spoken.{ext}", sample_rate=16_000)
    return clips


@pytest.fixture(scope="session")
def meeting_clip(audio_dir):
    parts = [audio.speak(s, audio_dir / f"meeting-{i}.wav") for i, s in enumerate(MEETING_SENTENCES)]
    return audio.concatenate(parts, audio_dir / "meeting.flac", gap_s=2.5)


@pytest.fixture(scope="session")
def transcriber():
    from workers.speech.transcriber import Transcriber

    return Transcriber.load(cpu_threads=2)
