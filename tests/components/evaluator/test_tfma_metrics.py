"""sluiceway's own TFMA metrics (``components/evaluator/tfma_metrics.py``) without running TFMA:
the multiclass figures of the most probable class against a hand count, R² against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest


def _counts(labels, predicted) -> dict[tuple[int, int], float]:
    counts: dict[tuple[int, int], float] = {}
    for a, p in zip(labels, predicted):
        counts[(a, p)] = counts.get((a, p), 0.0) + 1.0
    return counts


# ten examples by hand: (label, predicted class)
LABELS = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
PREDICTED = [0, 0, 0, 1, 1, 0, 2, 2, 2, 0]


def test_per_class_figures_match_a_hand_count():
    from components.evaluator.tfma_metrics import argmax_statistic

    counts = _counts(LABELS, PREDICTED)
    # class 0: predicted 5 times (rows 0,1,2,5,9), right 3 times; 4 examples of it
    assert argmax_statistic("precision", counts, 0) == pytest.approx(3 / 5)
    assert argmax_statistic("recall", counts, 0) == pytest.approx(3 / 4)
    assert argmax_statistic("f1", counts, 0) == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    # class 1: predicted twice (rows 3, 4), right once; 3 examples of it
    assert argmax_statistic("precision", counts, 1) == pytest.approx(1 / 2)
    assert argmax_statistic("recall", counts, 1) == pytest.approx(1 / 3)
    assert argmax_statistic("positive_rate", counts, 1) == pytest.approx(2 / 10)
    assert argmax_statistic("false_positive_rate", counts, 1) == pytest.approx(1 / 7)
    assert argmax_statistic("false_negative_rate", counts, 1) == pytest.approx(2 / 3)
    assert argmax_statistic("true_negative_rate", counts, 1) == pytest.approx(6 / 7)
    precisions = [3 / 5, 1 / 2, 2 / 3]
    recalls = [3 / 4, 1 / 3, 2 / 3]
    f1s = [2 * p * r / (p + r) for p, r in zip(precisions, recalls)]
    assert argmax_statistic("macro_precision", counts) == pytest.approx(np.mean(precisions))
    assert argmax_statistic("macro_recall", counts) == pytest.approx(np.mean(recalls))
    assert argmax_statistic("macro_f1", counts) == pytest.approx(np.mean(f1s))
    accuracy = np.mean(np.array(LABELS) == np.array(PREDICTED))
    for name in ("micro_precision", "micro_recall", "micro_f1"):
        assert argmax_statistic(name, counts) == pytest.approx(accuracy), name


def test_a_class_never_predicted_has_no_precision_and_counts_as_zero_in_the_macro_average():
    from components.evaluator.tfma_metrics import argmax_statistic

    counts = _counts([0, 0, 1, 1, 2], [0, 0, 0, 0, 2])   # class 1 is never predicted
    assert math.isnan(argmax_statistic("precision", counts, 1))
    assert argmax_statistic("recall", counts, 1) == 0.0
    assert argmax_statistic("positive_rate", counts, 1) == 0.0  # TFMA's top_k binarization said 1.0 here
    assert argmax_statistic("macro_precision", counts) == pytest.approx((2 / 4 + 0 + 1) / 3)
    # a class neither labelled nor predicted in a slice is left out of its macro average
    only_two = _counts([0, 2], [0, 2])
    assert argmax_statistic("macro_recall", only_two) == 1.0


def test_r2_from_running_sums_matches_numpy_also_far_from_zero_and_when_merged():
    from components.evaluator.tfma_metrics import _Sums, r2_from_sums

    rng = np.random.default_rng(3)
    for offset in (0.0, 1e6):
        labels = offset + rng.normal(0, 2, 500)
        predictions = labels + rng.normal(0.3, 1, 500)
        expected = 1 - np.sum((labels - predictions) ** 2) / np.sum((labels - labels.mean()) ** 2)
        parts = [_Sums(), _Sums(), _Sums()]
        for i, (y, p) in enumerate(zip(labels, predictions)):
            parts[i % 3].add(float(y), float(p), 1.0)
        merged = _Sums()
        for part in parts:
            merged.merge(part)
        assert r2_from_sums(merged.weight, merged.deviations, merged.squared_error) == pytest.approx(
            expected, abs=1e-9), offset
    constant = _Sums()
    for p in (1.0, 2.0):
        constant.add(5.0, p, 1.0)
    assert math.isnan(r2_from_sums(constant.weight, constant.deviations, constant.squared_error))
