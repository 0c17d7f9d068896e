"""Cross-validated thresholds shrunk toward a global one: the mix, the folds and the choice of strength."""
import math

import numpy as np

from workers.emotion import metrics, thresholds


def _data(seed=0, n=600):
    """Three labels: a frequent clean one, a frequent noisy one and a rare one."""
    rng = np.random.default_rng(seed)
    target = np.zeros((n, 3), dtype=np.float32)
    target[:, 0] = rng.random(n) < 0.4
    target[:, 1] = rng.random(n) < 0.3
    target[:, 2] = rng.random(n) < 0.02
    noise = rng.normal(0, [0.1, 0.3, 0.3], size=(n, 3))
    probs = np.clip(0.25 + 0.5 * target + noise, 0, 1).astype(np.float32)
    return probs, target


def test_strength_zero_is_the_per_label_tuning_and_infinity_the_global_threshold():
    probs, target = _data()
    assert np.allclose(thresholds.shrunk_thresholds(probs, target, 0.0), metrics.tune_thresholds(probs, target))
    overall = thresholds.global_threshold(probs, target)
    assert np.allclose(thresholds.shrunk_thresholds(probs, target, math.inf), overall)


def test_rare_labels_lean_on_the_global_threshold_more_than_frequent_ones():
    probs, target = _data()
    own = metrics.tune_thresholds(probs, target)
    overall = thresholds.global_threshold(probs, target)
    mixed = thresholds.shrunk_thresholds(probs, target, 40.0)
    support = target.sum(axis=0)
    pulled = np.abs(mixed - own) / np.maximum(np.abs(overall - own), 1e-9)
    moved = np.abs(overall - own) > 1e-6
    rare, frequent = int(support.argmin()), int(support.argmax())
    if moved[rare] and moved[frequent]:
        assert pulled[rare] > pulled[frequent]
    assert np.allclose(mixed, np.round(support / (support + 40) * own + 40 / (support + 40) * overall, 3))


def test_folds_partition_the_rows():
    parts = thresholds.folds(103, 5, seed=1)
    assert len(parts) == 5
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_choice_is_the_best_cross_validated_strength_and_scores_out_of_fold():
    probs, target = _data(seed=3)
    result = thresholds.choose(probs, target, k=4, repeats=2, strengths=(0.0, 20.0, math.inf))
    estimates = {0.0: result["cv_macro_f1_per_label_only"], math.inf: result["cv_macro_f1_global_only"]}
    assert result["cv_macro_f1"] >= max(estimates.values())
    assert result["strength"] in (0.0, 20.0, math.inf)
    assert len(result["thresholds"]) == 3
    assert result["cv_by_strength"].keys() == {"0", "20", "inf"}
    # Out-of-fold decisions cannot beat thresholds tuned on the very rows they score.
    assert result["cv_macro_f1_per_label_only"] <= metrics.macro_f1(
        probs >= metrics.tune_thresholds(probs, target, smooth=0), target) + 1e-9


def test_agreement_reports_gaps_and_top_label_matches():
    reference = np.array([[0.9, 0.1], [0.2, 0.7]], dtype=np.float32)
    moved = reference + np.array([[0.0, 0.05], [0.6, -0.3]], dtype=np.float32)
    result = thresholds.agreement(moved, reference)
    assert result["max"] == 0.6 and result["same_top"] == 0.5
