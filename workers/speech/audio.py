"""Probing, validating and decoding uploaded audio with PyAV (FFmpeg), before any model runs.

Two levels of checking:

* ``db.audio_probe.probe_audio`` reads the container headers (and, when they carry no
  duration, demuxes packets without decoding them); the API runs it on every upload.
* :func:`load_audio` decodes the whole stream to 16 kHz mono float32, the input Whisper wants.
  Mid-stream corruption only shows up here. Damaged packets are skipped, as FFmpeg's own
  tools do, unless so many fail that what is left cannot be trusted.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from db.audio_errors import (
    AUDIO_EMPTY,
    AUDIO_SILENT,
    AUDIO_UNREADABLE,
    TranscriptionError,
)
from db.audio_probe import (
    AudioInfo,
    _audio_stream,
    _open,
    check_duration,
    probe_audio,
)

WHISPER_SAMPLE_RATE = 16_000
#: Below this level (peak of 50 ms RMS windows, in dBFS) a recording carries no usable sound.
SILENCE_THRESHOLD_DBFS = -50.0
#: More than this share of undecodable packets means the file is corrupt, not merely damaged.
MAX_BAD_PACKET_RATIO = 0.25
#: Decoding less than this share of the duration the headers announce means a cut-off upload.
MIN_DECODED_RATIO = 0.5

def decode_audio(
    path: str | Path,
    sample_rate: int = WHISPER_SAMPLE_RATE,
    max_duration_s: float | None = None,
) -> np.ndarray:
    """Decode the first audio stream to mono float32 at ``sample_rate``.

    Decoding stops as soon as ``max_duration_s`` is passed (``audio_too_long``), so a file
    whose header lies about its length cannot make the worker buffer hours of samples.
    """
    path = Path(path)
    max_samples = None if max_duration_s is None else int(max_duration_s * sample_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    total = packets = bad = 0
    with _open(path) as container:
        stream = _audio_stream(container)
        for packet in _packets(container, stream):
            packets += 1
            try:
                frames = packet.decode()
            except av.FFmpegError:
                bad += 1
                continue
            for frame in frames:
                frame.pts = None
                for out in resampler.resample(frame):
                    total += _append(chunks, out)
            if max_samples is not None and total > max_samples:
                check_duration(total / sample_rate, max_duration_s)
        for out in resampler.resample(None):
            total += _append(chunks, out)
    if packets and bad / packets > MAX_BAD_PACKET_RATIO:
        raise TranscriptionError(
            AUDIO_UNREADABLE, f"the audio is corrupt ({bad} of {packets} packets undecodable)"
        )
    if total == 0:
        code = AUDIO_UNREADABLE if bad else AUDIO_EMPTY
        raise TranscriptionError(code, "no audio samples could be decoded")
    check_duration(total / sample_rate, max_duration_s)
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def _packets(container, stream):
    """Demux, treating a demuxer failure after some packets as the end of a truncated file."""
    iterator = container.demux(stream)
    while True:
        try:
            packet = next(iterator)
        except StopIteration:
            return
        except av.FFmpegError:
            return
        if packet.size:
            yield packet


def _append(chunks: list[np.ndarray], frame) -> int:
    array = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    if array.size:
        chunks.append(array)
    return int(array.size)


def peak_level_dbfs(samples: np.ndarray, sample_rate: int = WHISPER_SAMPLE_RATE) -> float:
    """Loudest 50 ms window, as RMS in dBFS; one click cannot make silence look like sound."""
    window = max(1, sample_rate // 20)
    usable = samples[: samples.size - samples.size % window] if samples.size >= window else samples
    if usable.size == 0:
        return float("-inf")
    frames = usable.reshape(-1, min(window, usable.size)).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1)).max()
    return float(20 * np.log10(rms)) if rms > 0 else float("-inf")


def load_audio(
    path: str | Path,
    max_duration_s: float | None = None,
    sample_rate: int = WHISPER_SAMPLE_RATE,
    silence_threshold_dbfs: float = SILENCE_THRESHOLD_DBFS,
) -> tuple[AudioInfo, np.ndarray]:
    """Everything the transcriber checks before the model runs: probe, decode, loudness.

    A file that decodes to less than half of the duration its header announces is rejected as
    truncated (an interrupted upload) rather than transcribed in part. Returns the header info
    and the decoded samples; raises :class:`TranscriptionError`.
    """
    info = probe_audio(path, max_duration_s=max_duration_s)
    samples = decode_audio(path, sample_rate=sample_rate, max_duration_s=max_duration_s)
    decoded_s = samples.size / sample_rate
    if decoded_s < MIN_DECODED_RATIO * info.duration_s and info.duration_s - decoded_s >= 0.5:
        raise TranscriptionError(
            AUDIO_UNREADABLE,
            f"the file is truncated or corrupt: only {decoded_s:.1f} s of the "
            f"{info.duration_s:.1f} s announced by its header could be decoded",
        )
    if peak_level_dbfs(samples, sample_rate) < silence_threshold_dbfs:
        raise TranscriptionError(AUDIO_SILENT, "the recording is silent")
    return info, samples
