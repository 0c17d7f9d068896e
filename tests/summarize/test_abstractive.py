"""The seq2seq path: offline failure for hub models, and input handling on tiny local models."""
from __future__ import annotations

import pytest

from tests.summarize.conftest import ARTICLE, long_text
from workers.summarize.abstractive import AbstractiveSummarizer, SummarizerUnavailable


@pytest.fixture(scope="module")
def bart(tiny_models):
    return AbstractiveSummarizer.load(str(tiny_models["bart"]))


@pytest.fixture(scope="module")
def t5(tiny_models):
    return AbstractiveSummarizer.load(str(tiny_models["t5"]))


@pytest.mark.parametrize("ref", [None, "t5-small", "facebook/bart-large-cnn"])
def test_hub_models_fail_clearly_offline(monkeypatch, ref):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SummarizerUnavailable) as info:
        AbstractiveSummarizer.load(ref)
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and (ref or "t5-small") in message
    assert info.value.code == "model_unavailable"


def test_missing_or_broken_folder(tmp_path):
    with pytest.raises(SummarizerUnavailable, match="no model directory"):
        AbstractiveSummarizer.load(str(tmp_path / "missing"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(SummarizerUnavailable):
        AbstractiveSummarizer.load(str(tmp_path / "broken"))


def test_identity_and_budget(bart, t5, tiny_models):
    assert bart.name == "tiny-bart" and bart.version.startswith("sha256:")
    assert bart.max_input_tokens == 64
    assert t5.max_input_tokens == 512
    assert AbstractiveSummarizer.load(str(tiny_models["bart"])).model is bart.model


def test_task_prefix(bart, t5):
    assert bart.prefix == ""
    assert t5.prefix == "summarize: "


def test_result_shape_and_determinism(bart):
    result = bart.summarize(ARTICLE)
    assert set(result) == {
        "summary", "method", "sentence_indices", "sentences_total", "compression_ratio",
    }
    assert result["method"] == "abstractive"
    assert result["sentence_indices"] == []
    assert result["sentences_total"] == 12
    assert isinstance(result["summary"], str) and result["summary"]
    assert result["compression_ratio"] == round(len(result["summary"]) / len(ARTICLE), 4)
    assert bart.summarize(ARTICLE) == result


def test_long_input_is_chunked_at_sentences_within_budget(bart):
    chunks = bart.chunk(ARTICLE)
    assert len(chunks) > 1
    assert " ".join(chunks) == " ".join(ARTICLE.split(" "))
    special = bart.tokenizer.num_special_tokens_to_add()
    for chunk in chunks:
        tokens = len(bart.tokenizer(chunk, add_special_tokens=False)["input_ids"])
        assert tokens + special <= bart.max_input_tokens
        assert chunk.endswith(".")


def test_length_arguments(bart):
    assert bart.generation_lengths(200, None, None) == (12, 6)
    assert bart.generation_lengths(6, None, None) == (12, 3)
    assert bart.generation_lengths(200, 30, 10) == (30, 10)
    short = bart.summarize("The council approved the budget.", max_length=5, min_length=2)
    tokens = bart.tokenizer(short["summary"], add_special_tokens=False)["input_ids"]
    assert len(tokens) <= 5


@pytest.mark.parametrize(
    "kwargs", [{"max_length": 0}, {"min_length": -1}, {"max_length": 5, "min_length": 9}, {"max_length": 2.5}]
)
def test_bad_length_arguments(bart, kwargs):
    with pytest.raises(ValueError):
        bart.summarize(ARTICLE, **kwargs)


def test_bad_text(bart):
    with pytest.raises(ValueError, match="empty"):
        bart.summarize("  ")


def test_too_many_chunks_is_refused(bart):
    with pytest.raises(ValueError, match="extractive"):
        bart.summarize(long_text(20_000))


def test_t5_runs_with_prefix(t5):
    result = t5.summarize("The storm cut power to homes. Crews cleared the roads.", max_length=8)
    assert result["method"] == "abstractive" and result["sentences_total"] == 2
