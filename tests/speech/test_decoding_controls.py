"""faster-whisper's decoding controls on espeak-ng speech: hotwords and a prompt fix a product name tiny.en
misspells, word timestamps lie inside their segments, VAD can be turned off per call."""
from __future__ import annotations

import pytest

from tests.support import audio

PRODUCT = "ComfyUI"
SENTENCE = f"I installed {PRODUCT} on my laptop yesterday."


@pytest.fixture(scope="module")
def product_clip(audio_dir):
    return audio.speak(SENTENCE, audio_dir / "product.wav")


def test_the_product_name_is_misspelt_without_help(transcriber, product_clip):
    assert PRODUCT.lower() not in transcriber.transcribe(product_clip, language="en")["text"].lower()


@pytest.mark.parametrize("control", [{"hotwords": PRODUCT}, {"initial_prompt": f"Notes about {PRODUCT}."}])
def test_hotwords_and_a_prompt_bring_the_right_spelling(transcriber, product_clip, control):
    assert PRODUCT in transcriber.transcribe(product_clip, language="en", **control)["text"]


def test_word_timestamps_increase_inside_their_segment(transcriber, meeting_clip):
    result = transcriber.transcribe(meeting_clip, language="en", word_timestamps=True)
    assert len(result["segments"]) >= 2
    for segment in result["segments"]:
        words = segment["words"]
        assert words and " ".join(w["word"] for w in words).split() == segment["text"].split()
        starts = [w["start"] for w in words]
        assert starts == sorted(starts)
        for word in words:
            assert segment["start"] <= word["start"] <= word["end"] <= segment["end"]
            assert 0 < word["probability"] <= 1
    assert "words" not in transcriber.transcribe(meeting_clip, language="en")["segments"][0]


def test_vad_can_be_turned_off_per_call(transcriber, meeting_clip):
    with_vad = transcriber.transcribe(meeting_clip, language="en")
    without = transcriber.transcribe(meeting_clip, language="en", vad=False)
    assert transcriber.vad_filter
    assert without["text"].split()[:4] == with_vad["text"].split()[:4]
