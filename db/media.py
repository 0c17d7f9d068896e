"""Uploaded audio waiting for its job: one file per job in ``Settings.media_dir``.

The API writes the file, a model worker reads it and deletes it once the job has reached a
terminal state; cancel deletes it too. In production the API and the model workers must mount
the same directory (a shared volume). Only the standard library is used here: the API process
imports this module.

Files are named ``<job id><suffix>``: the id makes the owner obvious to both sides and to the
orphan sweep, the suffix (from the uploaded name, when it is a known audio one) helps FFmpeg
pick a demuxer for formats it cannot sniff. A file is written under a ``.part`` name and
renamed into place, so a reader never sees half an upload.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from config.settings import Settings

#: Suffixes kept on stored files; anything else is stored without one and sniffed by FFmpeg.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".webm", ".weba"}
)
PARTIAL_SUFFIX = ".part"


def media_root(settings: Settings) -> Path:
    root = Path(settings.media_dir)
    root.mkdir(parents=True, exist_ok=True)
    return root


def stored_suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else ""


def media_path(settings: Settings, job_id: uuid.UUID | str, filename: str | None) -> Path:
    return Path(settings.media_dir) / f"{job_id}{stored_suffix(filename)}"


@dataclass(frozen=True)
class StagedUpload:
    """An upload copied into the media directory under a partial name, not yet a job's file."""

    path: Path
    size_bytes: int
    sha256: str


def stage_upload(settings: Settings, job_id: uuid.UUID, source: BinaryIO) -> StagedUpload:
    """Copy ``source`` to ``<job id>.<random>.part``, hashing it on the way."""
    root = media_root(settings)
    digest = hashlib.sha256()
    size = 0
    handle, partial = tempfile.mkstemp(prefix=f"{job_id}.", suffix=PARTIAL_SUFFIX, dir=root)
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := source.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return StagedUpload(Path(partial), size, digest.hexdigest())


def place(settings: Settings, staged: StagedUpload, job_id: uuid.UUID, filename: str | None) -> Path:
    """Rename a staged upload to the job's file name: readers see all of it or nothing."""
    target = media_path(settings, job_id, filename)
    os.replace(staged.path, target)
    return target


def discard(settings: Settings, job_id: uuid.UUID | str) -> int:
    """Remove the job's file (and any partial write); returns how many files went."""
    root = Path(settings.media_dir)
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.glob(f"{job_id}*"):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def discard_many(settings: Settings, job_ids: list[uuid.UUID]) -> int:
    """:func:`discard` for many jobs, reading the directory once; returns how many files went."""
    root = Path(settings.media_dir)
    wanted = {str(job_id) for job_id in job_ids}
    if not wanted or not root.is_dir():
        return 0
    removed = 0
    for path in root.iterdir():
        if path.name[:36] in wanted:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass(frozen=True)
class StoredFile:
    path: Path
    job_id: uuid.UUID | None
    age_s: float


def _job_id_of(path: Path) -> uuid.UUID | None:
    try:
        return uuid.UUID(path.name[:36])
    except ValueError:
        return None


def files_older_than(settings: Settings, ttl_s: float) -> list[StoredFile]:
    """Files (complete or partial) untouched for ``ttl_s``; the sweep decides which are orphans."""
    root = Path(settings.media_dir)
    if not root.is_dir():
        return []
    now = time.time()
    old = []
    for path in root.iterdir():
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if path.is_file() and age > ttl_s:
            old.append(StoredFile(path, _job_id_of(path), age))
    return old
