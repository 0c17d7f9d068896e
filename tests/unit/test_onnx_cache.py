"""The ONNX export cache: entries keyed by weights and options, built once under a lock, checksummed."""
import json
import multiprocessing
import time

from workers.emotion import export


def _fake_build(_module, entry, options, **_kwargs):
    """Stands in for the exporter: slow enough that a second process would overlap it, and counted."""
    with (entry.parent / "builds.log").open("a") as log:
        log.write(f"{options.key()}\n")
    time.sleep(0.5)
    entry.mkdir(parents=True)
    (entry / "model.onnx").write_bytes(b"graph " + options.key().encode())
    manifest = {"sha256": export.sha256_file(entry / "model.onnx")}
    (entry / "manifest.json").write_text(json.dumps(manifest))


def _export_once(cache_dir):
    export.build = _fake_build
    export.cached_export(lambda: None, name="m", weights_key="ab" * 32, options=export.ExportOptions("int8"),
                         cache_dir=cache_dir)


def test_two_workers_starting_together_export_once(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_export_once, args=(tmp_path,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert [w.exitcode for w in workers] == [0, 0]
    assert (tmp_path / "builds.log").read_text().splitlines() == ["int8"]


def test_entries_differ_by_weights_and_options(tmp_path):
    a = export.entry_dir(tmp_path, "m", "ab" * 32, export.ExportOptions("int8"))
    assert a != export.entry_dir(tmp_path, "m", "cd" * 32, export.ExportOptions("int8"))
    assert a != export.entry_dir(tmp_path, "m", "ab" * 32, export.ExportOptions("fp32"))
    assert a != export.entry_dir(tmp_path, "m", "ab" * 32, export.ExportOptions("int8", "static", 256))
    assert a == export.entry_dir(tmp_path, "m", "ab" * 32, export.ExportOptions("int8"))


def test_a_graph_without_a_matching_manifest_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "build", _fake_build)
    graph = export.cached_export(lambda: None, name="m", weights_key="ab" * 32,
                                 options=export.ExportOptions("fp32"), cache_dir=tmp_path)
    assert export.verified_graph(graph.parent) == graph
    graph.write_bytes(b"torn")
    assert export.verified_graph(graph.parent) is None
    (graph.parent / "manifest.json").unlink()
    assert export.verified_graph(graph.parent) is None
    rebuilt = export.cached_export(lambda: None, name="m", weights_key="ab" * 32,
                                   options=export.ExportOptions("fp32"), cache_dir=tmp_path)
    assert rebuilt.read_bytes() == b"graph fp32"
    assert (tmp_path / "builds.log").read_text().splitlines() == ["fp32", "fp32"]
