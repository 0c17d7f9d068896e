"""What the headers of an uploaded recording say (format, codec, duration), read with PyAV alone.

Reading headers is cheap (milliseconds for any upload size) and needs neither numpy nor the
model stack, so the API probes an upload before accepting it and the transcriber probes it
again before decoding (``workers.speech.audio``). A container whose headers carry no duration
is demuxed, not decoded, to find it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av

from db.audio_errors import (
    AUDIO_EMPTY,
    AUDIO_TOO_LONG,
    AUDIO_UNREADABLE,
    TranscriptionError,
)

# Demuxers FFmpeg picks for things that are not sound: pictures, subtitles, terminal art.
_NON_AUDIO_FORMAT_SUFFIXES = ("_pipe",)
_NON_AUDIO_FORMATS = frozenset({"image2", "tty", "srt", "webvtt", "ass", "subviewer", "mpl2"})


@dataclass(frozen=True)
class AudioInfo:
    """What the headers say about an upload; ``duration_s`` is estimated for some VBR files."""

    duration_s: float
    format_name: str
    codec: str
    sample_rate: int
    channels: int

    def to_dict(self) -> dict:
        return {
            "duration_s": round(self.duration_s, 3),
            "format_name": self.format_name,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
        }


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise TranscriptionError(AUDIO_UNREADABLE, f"no such file: {path.name}")
    if os.path.getsize(path) == 0:
        raise TranscriptionError(AUDIO_EMPTY, "the file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise TranscriptionError(
            AUDIO_UNREADABLE, f"not a readable audio file ({_ffmpeg_reason(exc)})"
        ) from exc


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    fmt = container.format.name
    if container.streams.audio:
        return container.streams.audio[0]
    if fmt in _NON_AUDIO_FORMATS or fmt.endswith(_NON_AUDIO_FORMAT_SUFFIXES):
        raise TranscriptionError(AUDIO_UNREADABLE, f"not an audio file (detected {fmt!r})")
    if container.streams.video:
        raise TranscriptionError(AUDIO_EMPTY, "the file has a video stream but no audio stream")
    raise TranscriptionError(AUDIO_UNREADABLE, f"no audio stream found (detected {fmt!r})")


def _header_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _demuxed_duration(container, stream) -> float:
    """Duration from packet timestamps, for containers whose header leaves it out."""
    end = 0.0
    try:
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    except av.FFmpegError as exc:
        if end == 0.0:
            raise TranscriptionError(
                AUDIO_UNREADABLE, f"the audio stream cannot be read ({_ffmpeg_reason(exc)})"
            ) from exc
    return end


def probe_audio(path: str | Path, max_duration_s: float | None = None) -> AudioInfo:
    """Read format, codec and duration from the headers, without decoding the audio.

    Raises :class:`TranscriptionError` with ``audio_unreadable`` (missing, corrupt or not
    audio), ``audio_empty`` (0 bytes, no audio stream, zero duration) or, when
    ``max_duration_s`` is given, ``audio_too_long``.
    """
    path = Path(path)
    with _open(path) as container:
        stream = _audio_stream(container)
        ctx = stream.codec_context
        duration = _header_duration(container, stream)
        if duration is None:
            duration = _demuxed_duration(container, stream)
        info = AudioInfo(
            duration_s=duration,
            format_name=container.format.name,
            codec=ctx.codec.canonical_name if ctx.codec else ctx.name,
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
        )
    if info.duration_s <= 0:
        raise TranscriptionError(AUDIO_EMPTY, "the audio stream has zero length")
    check_duration(info.duration_s, max_duration_s)
    return info


def check_duration(duration_s: float, max_duration_s: float | None) -> None:
    if max_duration_s is not None and duration_s > max_duration_s:
        raise TranscriptionError(
            AUDIO_TOO_LONG,
            f"the audio lasts {duration_s:.1f} s, over the limit of {max_duration_s:g} s",
        )
