"""Real audio files for tests: spoken sentences (espeak-ng), silence, noise, broken files.

Speech is synthesised by espeak-ng and converted with sox; formats sox cannot write (M4A/AAC,
Opus, or MP3/OGG where sox lacks its format plugins) are encoded with PyAV instead. Needs:

    apt-get install -y espeak-ng sox libsox-fmt-all

espeak-ng output is deterministic for a given version, so transcripts of these files are
stable from run to run.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

APT_INSTALL = "apt-get install -y espeak-ng sox libsox-fmt-all"

# Formats written by PyAV: extension -> (container format, codec).
_PYAV_FORMATS = {
    ".m4a": ("ipod", "aac"),
    ".aac": ("adts", "aac"),
    ".opus": ("ogg", "libopus"),
    ".webm": ("webm", "libopus"),
    ".mp3": ("mp3", "libmp3lame"),
    ".ogg": ("ogg", "libopus"),  # PyAV ships no libvorbis; Opus-in-Ogg is still an .ogg
}


def missing_audio_tools() -> list[str]:
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


def require_audio_tools() -> None:
    missing = missing_audio_tools()
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: run `{APT_INSTALL}`")


@functools.cache
def sox_writes(extension: str) -> bool:
    """Whether this sox build has a writer for ``extension`` (mp3/ogg need format plugins)."""
    out = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    formats = next((line for line in out.splitlines() if line.startswith("AUDIO FILE FORMATS")), "")
    return extension.lstrip(".").lower() in formats.split(":", 1)[-1].split()


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


def convert(source: Path, target: Path, sample_rate: int | None = None, channels: int = 1) -> Path:
    """Write ``source`` (any sox-readable file) as ``target``, the format chosen by extension."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    ext = target.suffix.lower()
    if ext in (".wav", ".flac") or (ext in (".mp3", ".ogg") and sox_writes(ext)):
        rate = ["-r", str(sample_rate)] if sample_rate else []
        _run(["sox", str(source), *rate, "-c", str(channels), str(target)])
    elif ext in _PYAV_FORMATS:
        encode_with_pyav(source, target, sample_rate=sample_rate or 48_000)
    else:
        raise ValueError(f"no writer for {ext!r} files")
    return target


def encode_with_pyav(source: Path, target: Path, sample_rate: int = 48_000) -> Path:
    """Encode with the FFmpeg encoders bundled in PyAV wheels (AAC, Opus, LAME MP3)."""
    import av

    container_format, codec = _PYAV_FORMATS[Path(target).suffix.lower()]
    if codec == "libopus":
        sample_rate = 48_000
    with av.open(str(source)) as src, av.open(str(target), "w", format=container_format) as dst:
        stream = dst.add_stream(codec, rate=sample_rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name, layout="mono", rate=sample_rate
        )
        fifo = av.AudioFifo()
        frame_size = stream.codec_context.frame_size or 1024
        for frame in src.decode(audio=0):
            frame.pts = None
            for out in resampler.resample(frame):
                fifo.write(out)
            while fifo.samples >= frame_size:
                dst.mux(stream.encode(fifo.read(frame_size)))
        for out in resampler.resample(None):
            fifo.write(out)
        while fifo.samples:
            dst.mux(stream.encode(fifo.read(min(frame_size, fifo.samples))))
        dst.mux(stream.encode(None))
    return Path(target)


def speak(
    text: str,
    path: str | Path,
    *,
    voice: str = "en-us",
    words_per_minute: int = 150,
    sample_rate: int = 16_000,
) -> Path:
    """Synthesise ``text`` with espeak-ng into ``path`` (wav, flac, mp3, ogg, m4a, opus...)."""
    require_audio_tools()
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text])
        return convert(raw, path, sample_rate=sample_rate)


def silence(path: str | Path, seconds: float, sample_rate: int = 16_000) -> Path:
    """Digital silence of the given length."""
    return _synth(path, seconds, sample_rate, [])


def noise(
    path: str | Path, seconds: float, volume: float = 0.05, sample_rate: int = 16_000
) -> Path:
    """Quiet white noise: audible, but no speech in it."""
    return _synth(path, seconds, sample_rate, ["whitenoise", "vol", str(volume)])


def tone(path: str | Path, seconds: float, hz: float = 440.0, sample_rate: int = 16_000) -> Path:
    return _synth(path, seconds, sample_rate, ["sine", str(hz), "vol", "0.3"])


def _synth(path: str | Path, seconds: float, sample_rate: int, effect: list[str]) -> Path:
    require_audio_tools()
    path = Path(path)
    synth = ["synth", str(seconds), *effect] if effect else ["trim", "0", str(seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "synth.wav"
        _run(["sox", "-n", "-r", str(sample_rate), "-c", "1", "-b", "16", str(raw), *synth])
        return convert(raw, path, sample_rate=sample_rate)


def concatenate(parts: list[str | Path], path: str | Path, gap_s: float = 0.5) -> Path:
    """Join audio files with ``gap_s`` of silence between them (e.g. to make long audio)."""
    require_audio_tools()
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        pieces = []
        for i, part in enumerate(parts):
            wav = convert(Path(part), Path(tmp) / f"p{i}.wav", sample_rate=16_000)
            pieces.append(str(wav))
            if gap_s > 0 and i < len(parts) - 1:
                pieces.append(str(silence(Path(tmp) / f"g{i}.wav", gap_s)))
        joined = Path(tmp) / "joined.wav"
        _run(["sox", *pieces, str(joined)])
        return convert(joined, path, sample_rate=16_000)


def garbage_file(path: str | Path, size: int = 32_000, seed: int = 0) -> Path:
    """Random bytes under an audio extension: what a corrupted upload looks like."""
    import random

    path = Path(path)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def text_file(path: str | Path, text: str = "This is a text file, not a recording.\n") -> Path:
    """A plain text file under an audio name (e.g. ``notes.wav``)."""
    path = Path(path)
    path.write_text(text * 20, encoding="utf-8")
    return path


def truncated_copy(source: str | Path, path: str | Path, keep_bytes: int) -> Path:
    """The first ``keep_bytes`` of ``source``: an upload cut off in transfer."""
    path = Path(path)
    path.write_bytes(Path(source).read_bytes()[:keep_bytes])
    return path


def overwrite_middle(
    source: str | Path, path: str | Path, share: float = 0.6, seed: int = 0
) -> Path:
    """A copy of ``source`` whose middle ``share`` of bytes is replaced by random bytes."""
    import random

    data = bytearray(Path(source).read_bytes())
    start = int(len(data) * (1 - share) / 2)
    end = start + int(len(data) * share)
    data[start:end] = random.Random(seed).randbytes(end - start)
    path = Path(path)
    path.write_bytes(bytes(data))
    return path


def duration_s(path: str | Path) -> float:
    """Decoded length in seconds (PyAV, so it works for every format written here)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate
