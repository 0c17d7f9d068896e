"""Pure parts of the emotion package: F1, threshold tuning, TSV reading, emoji handling."""
import subprocess
import sys

import numpy as np
import pytest

from workers.emotion import metrics
from workers.emotion.data import emoji_to_words, read_split


def test_per_label_macro_micro_f1():
    target = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    pred = np.array([[1, 0], [0, 0], [0, 1], [0, 1]], dtype=bool)
    # label 0: tp1 fn1 -> 2/3; label 1: tp1 fp1 -> 2/3; micro: tp2 fp1 fn1 -> 4/6
    assert metrics.per_label_f1(pred, target) == pytest.approx([2 / 3, 2 / 3])
    assert metrics.macro_f1(pred, target) == pytest.approx(2 / 3)
    assert metrics.micro_f1(pred, target) == pytest.approx(2 / 3)


def test_label_without_support_or_predictions_scores_zero():
    target = np.zeros((3, 1))
    assert metrics.per_label_f1(np.zeros((3, 1), bool), target) == pytest.approx([0.0])


def test_scores_apply_per_label_thresholds():
    probs = np.array([[0.3, 0.8], [0.2, 0.6]], dtype=np.float32)
    target = np.array([[1, 1], [0, 0]], dtype=np.float32)
    out = metrics.scores(probs, target, np.array([0.25, 0.7]))
    assert out["per_label_f1"] == pytest.approx([1.0, 1.0])
    assert out["n"] == 2
    assert metrics.scores(probs, target, 0.5)["per_label_f1"] == pytest.approx([0.0, 2 / 3])


def test_tune_thresholds_finds_the_separating_region():
    rng = np.random.default_rng(0)
    target = (rng.random((400, 2)) < 0.3).astype(np.float32)
    probs = np.where(target == 1, rng.uniform(0.3, 0.4, target.shape), rng.uniform(0.0, 0.2, target.shape))
    thresholds = metrics.tune_thresholds(probs.astype(np.float32), target)
    assert np.all((thresholds > 0.2) & (thresholds <= 0.3))
    assert metrics.scores(probs, target, thresholds)["macro_f1"] == pytest.approx(1.0)


def test_ties_go_to_the_threshold_nearest_one_half():
    probs = np.array([0.95, 0.92, 0.08, 0.05], dtype=np.float32)[:, None]
    target = np.array([1, 1, 0, 0], dtype=np.float32)[:, None]
    for smooth in (0, 2):
        assert metrics.tune_thresholds(probs, target, smooth=smooth)[0] == pytest.approx(0.5)


def test_smoothing_skips_a_one_point_spike():
    # Raw F1 is 1.0 only at 0.60 (a positive at 0.60, negatives packed just under it) and
    # 0.8 on the broad stretch above; the smoothed choice leaves the knife edge.
    pos = [0.60, 0.70, 0.80]
    neg = [0.595, 0.59, 0.585, 0.58]
    probs = np.array(pos + neg, dtype=np.float32)[:, None]
    target = np.array([1] * len(pos) + [0] * len(neg), dtype=np.float32)[:, None]
    raw = metrics.tune_thresholds(probs, target, smooth=0)[0]
    smooth = metrics.tune_thresholds(probs, target, smooth=2)[0]
    assert raw == pytest.approx(0.60)
    assert smooth > 0.60
    assert metrics.scores(probs, target, smooth)["macro_f1"] == pytest.approx(0.8)


def test_read_split_keeps_text_verbatim(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text('He said "no" 😂!!\t1,3\tabc\nplain\t27\tdef\n', encoding="utf-8")
    split = read_split(path)
    assert split.texts == ['He said "no" 😂!!', "plain"]
    assert split.label_ids == [[1, 3], [27]]
    assert split.targets(28)[0, [1, 3]].tolist() == [1.0, 1.0]


def test_emoji_are_spelt_out_and_punctuation_kept():
    assert emoji_to_words("so funny 😂!!!") == "so funny  face with tears of joy !!!"
    assert emoji_to_words("plain, text?!") == "plain, text?!"
    assert emoji_to_words("café ⠀") == "café ⠀"


def test_package_import_stays_light():
    code = ("import sys, workers.emotion, workers.emotion.metrics, workers.emotion.data;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
