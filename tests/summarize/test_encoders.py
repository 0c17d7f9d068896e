"""The summariser's sentence encoder on ONNX Runtime against torch: embeddings, choices, cache, failures."""
from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from tests.summarize.conftest import ARTICLE, long_text
from tests.support.texts import DIARY
from workers.emotion.data import default_data_dir, read_split
from workers.summarize import encoders, extractive
from workers.summarize.extractive import ExtractiveSummarizer, SummarizerUnavailable


def dev_texts(count: int) -> list[str]:
    data = default_data_dir() / "dev.tsv"
    if not data.is_file():
        pytest.skip(f"GoEmotions dev split not found in {data.parent} (set SAMO_GOEMOTIONS_DIR)")
    return read_split(data).texts[:count]


def dev_entry(texts: list[str]) -> str:
    return " ".join(t.strip() if t.strip()[-1:] in ".!?" else t.strip() + "." for t in texts)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_fp32(onnx_cache):
    return ExtractiveSummarizer.load(device="cpu", engine="onnx", cache_dir=onnx_cache, fallback=False)


@pytest.fixture(scope="module")
def onnx_int8(onnx_cache):
    return ExtractiveSummarizer.load(device="cpu", engine="onnx", int8=True, cache_dir=onnx_cache, fallback=False)


@pytest.fixture(scope="module")
def torch_fp32():
    return ExtractiveSummarizer.load(device="cpu")


@pytest.fixture
def fresh_models(monkeypatch):
    """A process that has loaded no encoder yet, so each load below really loads."""
    monkeypatch.setattr(extractive, "_MODELS", {})


def cosines(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (ours * reference).sum(axis=1)


def test_the_onnx_encoder_names_its_engine_in_the_version(onnx_fp32, onnx_int8, torch_fp32):
    assert onnx_fp32.variant == "onnx-fp32" and onnx_fp32.version == torch_fp32.version + "-onnx-fp32"
    assert onnx_int8.variant == "onnx-int8" and onnx_int8.version.endswith("-onnx-int8")
    assert torch_fp32.variant == "torch-fp32"
    assert onnx_fp32.encoder.providers == ["CPUExecutionProvider"]
    assert onnx_fp32.encoder.path.parent != onnx_int8.encoder.path.parent


def test_fp32_embeddings_agree_with_torch_within_the_tolerance(onnx_fp32, torch_fp32):
    texts = dev_texts(300) + ["ok", "This is " + "very " * 200 + "long."]
    ours, reference = onnx_fp32.embed(texts), torch_fp32.embed(texts)
    assert ours.shape == reference.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosines(ours, reference).min() >= encoders.FP32_MIN_COSINE


def test_int8_embeddings_agree_with_torch_within_the_tolerance(onnx_int8, torch_fp32):
    texts = dev_texts(300)
    similarity = cosines(onnx_int8.embed(texts), torch_fp32.embed(texts))
    assert similarity.min() >= encoders.INT8_MIN_COSINE["min"], similarity.min()
    assert similarity.mean() >= encoders.INT8_MIN_COSINE["mean"], similarity.mean()


def test_fp32_picks_the_same_sentences_as_torch_on_real_inputs(onnx_fp32, torch_fp32):
    texts = dev_texts(200)
    inputs = [ARTICLE, DIARY, long_text(5_000, seed=3), dev_entry(texts[:10]), dev_entry(texts[10:50]),
              dev_entry(texts[50:200])]
    for text in inputs:
        for length in ({}, {"sentences": 5}, {"ratio": 0.3}):
            assert onnx_fp32.summarize(text, **length) == torch_fp32.summarize(text, **length), length


def test_a_warm_cache_loads_without_the_torch_weights(onnx_fp32, onnx_cache, fresh_models, monkeypatch):
    def never(*_a, **_k):
        raise AssertionError("torch weights loaded on a warm cache")

    monkeypatch.setattr(extractive, "_load_torch", never)
    warm = ExtractiveSummarizer.load(device="cpu", engine="onnx", cache_dir=onnx_cache, fallback=False)
    assert warm.encoder is not onnx_fp32.encoder and warm.encoder.path == onnx_fp32.encoder.path
    assert warm.summarize(DIARY) == onnx_fp32.summarize(DIARY)


def test_an_encoder_that_cannot_be_exported_runs_on_torch_with_one_log_line(tmp_path, fresh_models, monkeypatch,
                                                                            caplog, torch_fp32):
    def unexportable(*_a, **_k):
        raise NotImplementedError("operator not supported by the exporter")

    monkeypatch.setattr(encoders, "export_graph", unexportable)
    with caplog.at_level(logging.WARNING):
        summariser = ExtractiveSummarizer.load(device="cpu", engine="onnx", cache_dir=tmp_path)
    assert summariser.variant == "torch-fp32" and summariser.version == torch_fp32.version
    failures = [r for r in caplog.records if "ONNX export" in r.getMessage()]
    assert len(failures) == 1
    assert "NotImplementedError" in failures[0].getMessage() and "runs on torch" in failures[0].getMessage()
    assert summariser.summarize(DIARY) == torch_fp32.summarize(DIARY)
    assert not list(tmp_path.glob("*/model.onnx"))
    with pytest.raises(SummarizerUnavailable, match="NotImplementedError"):
        ExtractiveSummarizer.load(device="cpu", engine="onnx", cache_dir=tmp_path / "strict", fallback=False)


def test_a_missing_onnxruntime_fails_clearly(tmp_path, fresh_models, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SummarizerUnavailable) as info:
        ExtractiveSummarizer.load(device="cpu", engine="onnx", cache_dir=tmp_path)
    assert info.value.code == "model_unavailable"
    assert "SAMO_SUMMARY_ENGINE=onnx needs the onnxruntime package" in str(info.value)
    assert "SAMO_SUMMARY_ENGINE=torch" in str(info.value)
    assert ExtractiveSummarizer.load(device="cpu", engine="torch").variant == "torch-fp32"


def test_an_unknown_engine_is_refused(fresh_models):
    with pytest.raises(ValueError, match="engine must be one of torch, onnx"):
        ExtractiveSummarizer.load(device="cpu", engine="tensorrt")
