"""The shipped emotion model, offline: loading, obvious cases, dev-sample F1 floor, input checks."""
import json
import os
import re

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workers.emotion.data import default_data_dir, read_labels, read_split  # noqa: E402
from workers.emotion.model import EmotionClassifier, default_artifact_dir  # noqa: E402

# Measured with the shipped artifact on the first 1,000 dev rows: see DEV_SAMPLE_MEASURED.
DEV_SAMPLE_ROWS = 1000
DEV_SAMPLE_MEASURED = 0.5731
DEV_SAMPLE_FLOOR = 0.55

OBVIOUS = [
    ("Thank you so much for your help, I really appreciate it!", "gratitude"),
    ("Hahaha that is the funniest thing I have read all week 😂", "amusement"),
    ("I am furious. This makes me so angry I could scream!", "anger"),
    ("I'm terrified, I am so scared of what will happen tonight.", "fear"),
    ("I feel so sad and lonely today, I just want to cry.", "sadness"),
    ("I love you so much, you mean the world to me ❤️", "love"),
    ("I'm so sorry, I apologize for what I did. My bad.", "remorse"),
    ("What do you mean? I don't understand how this works.", "confusion"),
]


@pytest.fixture(scope="module")
def clf():
    return EmotionClassifier.load(device="cpu")


def test_shipped_artifact_is_small_and_documented():
    folder = default_artifact_dir()
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= 10 * 1024 * 1024
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    for needed in ("CC BY 4.0", "Demszky", "macro-F1", "micro-F1", "python -m workers.emotion.train"):
        assert needed in card
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert len(config["thresholds"]) == len(config["labels"]) == 28


def test_loads_with_labels_thresholds_and_stable_version(clf):
    assert clf.name == "minilm-goemotions"
    assert re.fullmatch(r"[0-9a-f]{12}", clf.version)
    assert clf.labels == json.loads((default_artifact_dir() / "config.json").read_text())["labels"]
    assert clf.thresholds.shape == (28,)
    assert clf.multi_label
    if (default_data_dir() / "labels.txt").is_file():
        assert clf.labels == read_labels(default_data_dir() / "labels.txt")


def test_obvious_sentences_rank_the_obvious_label_first(clf):
    results = clf.predict([text for text, _ in OBVIOUS])
    tops = [r["top_emotion"] for r in results]
    assert tops == [label for _, label in OBVIOUS]


def test_result_shape_and_input_order(clf):
    texts = ["Thanks a lot!", "This is " + "very " * 40 + "annoying.", "ok :)", "I hate this so much!!!"]
    batched = clf.predict(texts, batch_size=3)
    for text, result in zip(texts, batched):
        single = clf.predict([text], batch_size=1)[0]
        assert result["top_emotion"] == single["top_emotion"]
        assert result["confidence"] == pytest.approx(single["confidence"], abs=1e-4)
        assert set(result["probabilities"]) == set(clf.labels)
        assert result["confidence"] == max(result["probabilities"].values())
        probs = [result["probabilities"][label] for label in result["emotions"]]
        assert probs == sorted(probs, reverse=True)
        assert result["truncated"] is False


def test_probabilities_keep_six_significant_digits_and_agree_with_the_labels(clf):
    result = clf.predict(["I can't believe you did that, thank you so much!"])[0]
    probs, _ = clf.predict_proba(["I can't believe you did that, thank you so much!"])
    for label, raw in zip(clf.labels, probs[0]):
        returned = result["probabilities"][label]
        assert returned == pytest.approx(float(raw), rel=1e-5)
        assert len(f"{returned:e}".split("e")[0].replace(".", "").rstrip("0")) <= 6
    assert clf.multi_label
    thresholds = dict(zip(clf.labels, clf.thresholds))
    assert set(result["emotions"]) == {label for label, p in result["probabilities"].items() if p >= thresholds[label]}


def test_long_text_is_truncated_and_flagged(clf):
    results = clf.predict(["I am so happy. " * 200, "I am so happy."])
    assert [r["truncated"] for r in results] == [True, False]
    assert results[0]["top_emotion"] == results[1]["top_emotion"] == "joy"


@pytest.mark.parametrize("texts", [[""], ["fine", "   "], ["\n\t"]])
def test_empty_text_is_refused_before_the_model(clf, monkeypatch, texts):
    def never(*_a, **_k):
        raise AssertionError("model reached")

    monkeypatch.setattr(clf, "_encode", never)
    monkeypatch.setattr(clf, "_forward", never)
    with pytest.raises(ValueError, match="empty"):
        clf.predict(texts)


def test_a_single_string_is_not_split_into_characters(clf):
    with pytest.raises(TypeError):
        clf.predict("hello")


def test_dev_sample_macro_f1_stays_above_floor(clf):
    from workers.emotion.evaluate import evaluate

    data = default_data_dir()
    if not (data / "dev.tsv").is_file():
        pytest.skip(f"GoEmotions dev split not found in {data} (set SAMO_GOEMOTIONS_DIR)")
    split = read_split(data / "dev.tsv").head(DEV_SAMPLE_ROWS)
    result = evaluate(clf, split, read_labels(data / "labels.txt"))
    assert result["n"] == DEV_SAMPLE_ROWS
    assert result["macro_f1"] >= DEV_SAMPLE_FLOOR, result


def test_int8_agrees_on_the_obvious_sentences():
    int8 = EmotionClassifier.load(device="cpu", int8=True)
    assert int8.version.endswith("-int8")
    tops = [r["top_emotion"] for r in int8.predict([text for text, _ in OBVIOUS])]
    assert tops == [label for _, label in OBVIOUS]
    probs, _ = int8.predict_proba(["Thank you!"])
    assert np.isclose(probs.sum(), probs.sum()) and probs.shape == (1, 28)


def test_any_sequence_classification_model_loads_with_its_own_labels(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from workers.emotion.data import base_model_dir

    id2label = {0: "calm", 1: "happy", 2: "upset"}
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model_dir(), num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(base_model_dir()).save_pretrained(tmp_path)

    softmax = EmotionClassifier.load(str(tmp_path), device="cpu")
    assert softmax.labels == ["calm", "happy", "upset"] and not softmax.multi_label
    result = softmax.predict(["what a day", "x " * 600])
    assert sum(result[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result[0]["emotions"] == [result[0]["top_emotion"]]
    assert result[1]["truncated"] is True and softmax.max_length == 512

    sigmoid = EmotionClassifier.load(str(tmp_path), device="cpu", multi_label=True, int8=True)
    probs = sigmoid.predict(["what a day"])[0]["probabilities"]
    assert sum(probs.values()) != pytest.approx(1.0, abs=1e-3)
    assert softmax.version.split("-")[0] == sigmoid.version.split("-")[0]
