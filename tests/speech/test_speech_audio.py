"""Upload validation with PyAV alone: formats, durations and the error code of each bad file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from db.audio_errors import TranscriptionError
from tests.support import audio
from workers.speech.audio import (
    AudioInfo,
    decode_audio,
    load_audio,
    peak_level_dbfs,
    probe_audio,
)

EXPECTED_CODECS = {"wav": "pcm_s16le", "mp3": "mp3", "flac": "flac", "m4a": "aac"}


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(TranscriptionError) as info:
        call(*args, **kwargs)
    assert info.value.message
    return info.value.code


@pytest.mark.parametrize("ext", ["wav", "mp3", "ogg", "flac", "m4a"])
def test_probe_reads_format_and_duration(spoken_clips, ext):
    info = probe_audio(spoken_clips[ext])
    assert isinstance(info, AudioInfo)
    assert info.duration_s == pytest.approx(audio.duration_s(spoken_clips["wav"]), abs=0.15)
    assert info.channels == 1
    assert info.sample_rate in (16_000, 48_000)
    if ext in EXPECTED_CODECS:
        assert info.codec == EXPECTED_CODECS[ext]
    else:
        assert info.codec in ("vorbis", "opus")
    assert ext in info.format_name or (ext == "m4a" and "mp4" in info.format_name)
    assert info.to_dict()["duration_s"] == round(info.duration_s, 3)


@pytest.mark.parametrize("ext", ["wav", "mp3", "ogg"])
def test_decode_gives_16k_mono_float32(spoken_clips, ext):
    samples = decode_audio(spoken_clips[ext])
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert samples.size / 16_000 == pytest.approx(probe_audio(spoken_clips[ext]).duration_s, abs=0.15)
    assert np.abs(samples).max() <= 1.0
    assert peak_level_dbfs(samples) > -30


def test_text_file_renamed_wav_is_unreadable(tmp_path):
    assert error_code(probe_audio, audio.text_file(tmp_path / "notes.wav")) == "audio_unreadable"


@pytest.mark.parametrize("ext", ["wav", "mp3", "ogg", "m4a"])
def test_random_bytes_are_unreadable(tmp_path, ext):
    garbage = audio.garbage_file(tmp_path / f"garbage.{ext}")
    assert error_code(load_audio, garbage) == "audio_unreadable"


def test_truncated_header_is_unreadable(spoken_clips, tmp_path):
    for ext, keep in (("wav", 30), ("ogg", 200), ("m4a", 100)):
        cut = audio.truncated_copy(spoken_clips[ext], tmp_path / f"cut.{ext}", keep)
        assert error_code(load_audio, cut) == "audio_unreadable", ext


def test_mp3_with_destroyed_middle_is_unreadable(spoken_clips, tmp_path):
    broken = audio.overwrite_middle(spoken_clips["mp3"], tmp_path / "broken.mp3", share=0.6)
    assert error_code(load_audio, broken) == "audio_unreadable"


def test_cut_off_wav_still_decodes_what_arrived(spoken_clips, tmp_path):
    size = spoken_clips["wav"].stat().st_size
    cut = audio.truncated_copy(spoken_clips["wav"], tmp_path / "half.wav", size // 2)
    info, samples = load_audio(cut)
    assert samples.size / 16_000 == pytest.approx(info.duration_s, abs=0.05)


def test_empty_inputs(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    assert error_code(probe_audio, tmp_path / "zero.wav") == "audio_empty"
    header_only = audio.truncated_copy(audio.silence(tmp_path / "s.wav", 1), tmp_path / "h.wav", 44)
    assert error_code(probe_audio, header_only) == "audio_empty"
    assert error_code(probe_audio, tmp_path / "missing.wav") == "audio_unreadable"


def test_video_without_audio_is_empty(tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert error_code(probe_audio, path) == "audio_empty"


def test_subtitles_and_images_are_not_audio(tmp_path):
    srt = tmp_path / "talk.wav"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello there\n\n")
    assert error_code(probe_audio, srt) == "audio_unreadable"


def test_silence_is_detected_before_the_model(tmp_path):
    for ext in ("wav", "mp3"):
        assert error_code(load_audio, audio.silence(tmp_path / f"quiet.{ext}", 2.0)) == "audio_silent"


def test_too_long_from_header_and_while_decoding(spoken_clips):
    assert error_code(probe_audio, spoken_clips["wav"], max_duration_s=1.0) == "audio_too_long"
    assert error_code(decode_audio, spoken_clips["mp3"], max_duration_s=1.0) == "audio_too_long"
    assert probe_audio(spoken_clips["wav"], max_duration_s=600).duration_s > 1.0


def test_error_carries_code_and_client_flag():
    err = TranscriptionError("audio_silent", "nothing said")
    assert err.to_dict() == {"code": "audio_silent", "message": "nothing said"}
    assert err.is_client_error
    assert not TranscriptionError("model_unavailable", "x").is_client_error
    with pytest.raises(ValueError):
        TranscriptionError("made_up", "x")


def test_audio_module_imports_no_model_stack():
    code = (
        "import sys, workers.speech.audio, db.audio_errors;"
        "heavy = {'torch', 'ctranslate2', 'faster_whisper', 'transformers'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"


def test_stereo_44k_is_mixed_down_and_resampled(spoken_clips, tmp_path):
    stereo = audio.convert(spoken_clips["wav"], tmp_path / "stereo.wav", sample_rate=44_100, channels=2)
    info = probe_audio(stereo)
    assert (info.sample_rate, info.channels) == (44_100, 2)
    samples = decode_audio(stereo)
    assert samples.ndim == 1
    assert samples.size / 16_000 == pytest.approx(info.duration_s, abs=0.05)
