"""The on-disk cache of ONNX exports that every model with an ONNX engine shares.

A cache entry is a folder named by the model, its weights digest, the export options and a hash
of the recipe, holding ``model.onnx`` and ``manifest.json`` with the graph's sha256. Workers
starting together build an entry once: the first takes a file lock, the others wait on it and
then find the entry. An entry whose checksum does not match (a torn copy, a flipped byte) is
rebuilt. An entry is written into a temporary folder beside it and moved in place whole, so a
reader never sees half of one.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)


class ExportFailed(RuntimeError):
    """The network could not be exported, optimised or quantised."""


def default_cache_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "instance" / "onnx"


def entry_dir(cache_dir: Path, name: str, weights_key: str, options_key: str, *, export_format: str,
              opset: int, options: object) -> Path:
    """The entry of these weights and options, under a hash of everything else the graph depends on
    (the recipe's format, the opset, onnxruntime's version and the options in full)."""
    import onnxruntime

    recipe = f"{export_format}|{opset}|{onnxruntime.__version__}|{options}"
    digest = hashlib.sha256(recipe.encode()).hexdigest()
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
    return cache_dir / f"{safe_name}-{weights_key[:16]}-{options_key}-{digest[:8]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_graph(entry: Path) -> Path | None:
    """``entry/model.onnx`` if its manifest's checksum matches it, else None."""
    graph, manifest = entry / "model.onnx", entry / "manifest.json"
    if not graph.is_file() or not manifest.is_file():
        return None
    try:
        expected = json.loads(manifest.read_text(encoding="utf-8"))["sha256"]
    except (ValueError, KeyError):
        return None
    return graph if sha256_file(graph) == expected else None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_graph(entry: Path, build: Callable[[], None], what: str) -> Path:
    """The verified graph of ``entry``, built first by ``build`` (under the entry's lock) if missing or corrupt."""
    graph = verified_graph(entry)
    if graph is not None:
        return graph
    with file_lock(entry.with_name(entry.name + ".lock")):
        graph = verified_graph(entry)
        if graph is not None:
            return graph
        if entry.exists():
            log.warning("cached ONNX export %s fails its checksum; rebuilding it", entry.name)
            shutil.rmtree(entry)
        log.info("exporting %s to ONNX into %s", what, entry)
        build()
        return entry / "model.onnx"


@contextlib.contextmanager
def staged_entry(entry: Path, manifest: dict) -> Iterator[Path]:
    """A temporary folder to write ``model.onnx`` into; when the block succeeds, its checksum goes
    into ``manifest.json`` and the folder replaces ``entry``. Exceptions become ExportFailed."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        try:
            yield work
        except ExportFailed:
            raise
        except Exception as error:  # noqa: BLE001 - exporter and optimizer errors have many types
            raise ExportFailed(f"{type(error).__name__}: {error}") from error
        final = work / "model.onnx"
        for leftover in work.glob("*.onnx"):
            if leftover != final:
                leftover.unlink()
        written = {**manifest, "sha256": sha256_file(final)}
        (work / "manifest.json").write_text(json.dumps(written, indent=2), encoding="utf-8")
        os.replace(work, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)
