"""Shaping emotion results by the caller's options, valence, and the parts long texts are cut into."""
from __future__ import annotations

import pytest

from config.valence import GROUP_OF_LABEL
from workers.emotion.documents import Part, halves, sentences, window_chars, windows
from workers.emotion.results import Controls, shaped, valence, weighted_probabilities

LABELS = list(GROUP_OF_LABEL)
TUNED = dict.fromkeys(LABELS, 0.5)


def probabilities(**given) -> dict[str, float]:
    return {label: given.get(label, 0.0) for label in LABELS}


def test_valence_is_the_positive_share_less_the_negative_share():
    result = valence(probabilities(joy=0.6, love=0.2, sadness=0.1, surprise=0.05, neutral=0.05))
    assert result["groups"] == pytest.approx({"positive": 0.8, "negative": 0.1, "ambiguous": 0.05, "neutral": 0.05})
    assert result["score"] == pytest.approx(0.7)
    assert valence(probabilities(grief=0.9))["score"] == -1
    assert valence(probabilities()) == {"score": 0, "groups": {"positive": 0, "negative": 0, "ambiguous": 0,
                                                                "neutral": 1}}


def test_tuned_thresholds_top_k_and_label_subsets():
    probs = probabilities(joy=0.9, excitement=0.6, sadness=0.3, neutral=0.2)
    assert shaped(probs, TUNED, Controls())["emotions"] == ["joy", "excitement"]
    assert shaped(probs, TUNED, Controls(threshold=0.25))["emotions"] == ["joy", "excitement", "sadness"]
    assert shaped(probs, TUNED, Controls(threshold=0.25, top_k=2))["emotions"] == ["joy", "excitement"]
    subset = shaped(probs, TUNED, Controls(labels=("sadness", "neutral")))
    assert subset["top_emotion"] == "sadness" and subset["confidence"] == 0.3
    assert subset["emotions"] == [] and list(subset["probabilities"]) == ["sadness", "neutral"]
    assert subset["valence"] == shaped(probs, TUNED, Controls())["valence"]


def test_a_label_the_model_lacks_is_refused():
    with pytest.raises(ValueError, match="no label"):
        shaped({"positive": 0.5, "negative": 0.5}, {"positive": 0.5, "negative": 0.5}, Controls(labels=("joy",)))


def test_controls_read_the_options():
    assert Controls.from_options({}) == Controls()
    assert Controls.from_options({"threshold": "tuned", "top_k": 3, "labels": ["joy"]}) == Controls(
        top_k=3, labels=("joy",))
    assert Controls.from_options({"threshold": 0}).threshold == 0.0


def test_parts_are_weighted_by_their_length():
    mean = weighted_probabilities([(30, probabilities(joy=1.0)), (10, probabilities(sadness=1.0))])
    assert mean["joy"] == 0.75 and mean["sadness"] == 0.25


TEXT = ("I got the job and I'm thrilled. But my dog died this morning and I can't stop crying.\n\n"
        "Tomorrow is another day. " * 40)


def test_windows_are_runs_of_whole_sentences_that_slice_the_text():
    parts = windows(TEXT, 200)
    assert len(parts) > 1
    assert all(TEXT[p.start:p.end] == p.text and len(p.text) <= 200 for p in parts)
    assert [p.start for p in parts] == sorted(p.start for p in parts)
    sentence_starts = {s.start for s in sentences(TEXT, 200)}
    assert all(p.start in sentence_starts for p in parts)
    assert windows("Short.", 200) == [Part("Short.", 0, 6)]


def test_sentences_keep_exact_offsets():
    text = "I got the job and I'm thrilled. But my dog died this morning and I can't stop crying."
    parts = sentences(text, window_chars(256))
    assert [p.text for p in parts] == ["I got the job and I'm thrilled.",
                                       "But my dog died this morning and I can't stop crying."]
    assert all(text[p.start:p.end] == p.text for p in parts)


def test_a_truncated_part_is_cut_in_halves_of_the_source():
    part = Part(TEXT[100:700], 100, 700)
    pieces = halves(part)
    assert len(pieces) >= 2 and all(len(p.text) <= 300 for p in pieces)
    assert all(TEXT[p.start:p.end] == p.text for p in pieces)
    assert halves(Part("x" * 30, 0, 30)) == []
