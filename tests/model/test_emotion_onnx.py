"""The ONNX Runtime engine against torch fp32: same top labels, probabilities within the tolerance, cache."""
import logging
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.model.test_emotion_model import OBVIOUS  # noqa: E402
from workers.emotion import export  # noqa: E402
from workers.emotion.data import default_data_dir, read_split  # noqa: E402
from workers.emotion.model import EmotionClassifier  # noqa: E402

AGREEMENT_ROWS = 400


@pytest.fixture(scope="module")
def torch_fp32():
    return EmotionClassifier.load(device="cpu")


@pytest.fixture(scope="module")
def onnx_int8():
    """What a CPU worker runs by default: the int8 graph from the worker's own cache."""
    return EmotionClassifier.load(device="cpu", engine="onnx", int8=True)


def agreement_texts() -> list[str]:
    data = default_data_dir()
    if not (data / "dev.tsv").is_file():
        pytest.skip(f"GoEmotions dev split not found in {data} (set SAMO_GOEMOTIONS_DIR)")
    return read_split(data / "dev.tsv").texts[:AGREEMENT_ROWS]


def test_onnx_and_torch_rank_the_obvious_label_first(onnx_int8, torch_fp32):
    texts = [text for text, _ in OBVIOUS]
    expected = [label for _, label in OBVIOUS]
    assert [r["top_emotion"] for r in onnx_int8.predict(texts)] == expected
    assert [r["top_emotion"] for r in torch_fp32.predict(texts)] == expected
    assert onnx_int8.variant == "onnx-int8" and onnx_int8.version.endswith("-onnx-int8")
    assert onnx_int8.engine.providers == ["CPUExecutionProvider"]


def test_int8_graph_probabilities_agree_with_torch_fp32_within_the_tolerance(onnx_int8, torch_fp32):
    texts = agreement_texts()
    ours, _ = onnx_int8.predict_proba(texts, batch_size=64)
    reference, _ = torch_fp32.predict_proba(texts, batch_size=64)
    gap = np.abs(ours - reference)
    assert gap.mean() <= export.INT8_TOLERANCE["mean"], gap.mean()
    assert np.quantile(gap, 0.99) <= export.INT8_TOLERANCE["p99"], np.quantile(gap, 0.99)
    assert (ours.argmax(axis=1) == reference.argmax(axis=1)).mean() >= export.INT8_TOLERANCE["same_top"]


def test_fp32_graph_matches_torch_fp32_and_keeps_the_batching(torch_fp32, tmp_path):
    fp32 = EmotionClassifier.load(device="cpu", engine="onnx", int8=False, cache_dir=tmp_path)
    texts = ["Thanks a lot!", "This is " + "very " * 40 + "annoying.", "ok :)", "I am so happy. " * 200]
    ours, truncated = fp32.predict_proba(texts, batch_size=3)
    reference, _ = torch_fp32.predict_proba(texts, batch_size=3)
    assert np.abs(ours - reference).max() <= export.FP32_TOLERANCE
    assert truncated == [False, False, False, True]
    assert fp32.last_pass_sizes and max(fp32.last_pass_sizes) <= 3
    unsorted, _ = fp32.predict_proba(texts, batch_size=2, sort_by_length=False)
    assert np.abs(unsorted - ours).max() <= export.FP32_TOLERANCE


def test_a_corrupt_cached_export_is_detected_and_rebuilt(tmp_path, caplog):
    first = EmotionClassifier.load(device="cpu", engine="onnx", int8=False, cache_dir=tmp_path)
    graph = first.onnx_path
    expected = first.predict_proba(["I love this so much"])[0]
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    assert export.verified_graph(graph.parent) is None

    with caplog.at_level(logging.WARNING, logger="workers.emotion.export"):
        again = EmotionClassifier.load(device="cpu", engine="onnx", int8=False, cache_dir=tmp_path)
    assert "fails its checksum; rebuilding it" in caplog.text
    assert again.onnx_path == graph and export.verified_graph(graph.parent) == graph
    assert np.abs(again.predict_proba(["I love this so much"])[0] - expected).max() <= export.FP32_TOLERANCE


def test_a_warm_cache_loads_without_building_the_torch_network(tmp_path, monkeypatch):
    EmotionClassifier.load(device="cpu", engine="onnx", int8=False, cache_dir=tmp_path)

    def never(*_a, **_k):
        raise AssertionError("torch network built on a warm cache")

    monkeypatch.setattr(EmotionClassifier, "_build_module", never)
    warm = EmotionClassifier.load(device="cpu", engine="onnx", int8=False, cache_dir=tmp_path)
    assert warm.predict(["Thank you so much!"])[0]["top_emotion"] == "gratitude"


def _hub_model(path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from workers.emotion.data import base_model_dir

    id2label = {0: "calm", 1: "happy", 2: "upset"}
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model_dir(), num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(base_model_dir()).save_pretrained(path)
    return str(path)


def test_a_hugging_face_model_is_exported_and_agrees_with_torch(tmp_path):
    ref = _hub_model(tmp_path / "model")
    torch_clf = EmotionClassifier.load(ref, device="cpu")
    onnx_clf = EmotionClassifier.load(ref, device="cpu", engine="onnx", int8=False, cache_dir=tmp_path / "cache")
    assert onnx_clf.variant == "onnx-fp32" and not onnx_clf.multi_label
    texts = ["what a day", "I can't stand this"]
    ours, reference = onnx_clf.predict_proba(texts)[0], torch_clf.predict_proba(texts)[0]
    assert np.abs(ours - reference).max() <= export.FP32_TOLERANCE
    assert ours.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_a_model_that_cannot_be_exported_runs_on_torch_with_one_log_line(tmp_path, monkeypatch, caplog):
    ref = _hub_model(tmp_path / "model")

    def unexportable(*_a, **_k):
        raise NotImplementedError("operator not supported by the exporter")

    monkeypatch.setattr(export, "export_graph", unexportable)
    with caplog.at_level(logging.WARNING):
        clf = EmotionClassifier.load(ref, device="cpu", engine="onnx", int8=False, cache_dir=tmp_path / "cache")
    assert clf.variant == "torch-fp32" and clf.onnx_path is None
    failures = [r for r in caplog.records if "ONNX export" in r.getMessage()]
    assert len(failures) == 1
    assert "NotImplementedError" in failures[0].getMessage() and "runs on torch" in failures[0].getMessage()
    assert len(clf.predict(["what a day"])[0]["probabilities"]) == 3
    assert not list((tmp_path / "cache").glob("*/model.onnx"))


def test_evaluation_runs_what_the_worker_setting_names(monkeypatch, capsys):
    import json

    from workers.emotion import evaluate

    data = default_data_dir() / "dev.tsv"
    if not data.is_file():
        pytest.skip(f"GoEmotions dev split not found in {data.parent} (set SAMO_GOEMOTIONS_DIR)")
    monkeypatch.setenv("SAMO_EMOTION_ENGINE", "torch")
    monkeypatch.setenv("SAMO_EMOTION_INT8", "true")
    evaluate.main(["--data", str(data), "--limit", "40"])
    monkeypatch.setenv("SAMO_EMOTION_ENGINE", "onnx")
    evaluate.main(["--data", str(data), "--limit", "40"])
    evaluate.main(["--data", str(data), "--limit", "40", "--engine", "torch", "--no-int8"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["variant"] for line in lines] == ["torch-int8", "onnx-int8", "torch-fp32"]
    assert lines[1]["version"].endswith("-onnx-int8") and all(line["n"] == 40 for line in lines)


def test_each_variant_decides_with_the_thresholds_tuned_on_its_own_probabilities(onnx_int8, torch_fp32):
    import json

    from workers.emotion.model import default_artifact_dir

    config = json.loads((default_artifact_dir() / "config.json").read_text(encoding="utf-8"))
    by_variant = config.get("thresholds_by_variant")
    if not by_variant:
        pytest.skip("this artifact has one set of thresholds for every engine")
    for clf in (onnx_int8, torch_fp32):
        assert np.allclose(clf.thresholds, by_variant[clf.variant])


def test_intra_op_threads_sleep_instead_of_spinning_between_operators(onnx_int8):
    """A worker shares its cores with the pool's other processes, the API and the database."""
    options = onnx_int8.engine.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
