"""The closed-form confidence intervals: published figures, and coverage measured by simulation
(an interval that claims 95% must hold the true value about 95% of the time)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.evaluator import intervals
from components.evaluator.tfma_metrics import argmax_statistic


def test_wilson_matches_the_published_figures_and_stays_within_0_and_1():
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662; 0/20 -> 0 to 0.1611
    low, high = intervals.wilson(81, 263, 0.95)
    assert (low, high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    low, high = intervals.wilson(0, 20, 0.95)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    assert intervals.wilson(0, 0, 0.95) is None
    assert intervals.wilson(20, 20, 0.95)[1] == 1.0


def test_a_difference_of_two_rates_gets_newcombes_hybrid_score_interval():
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339 (method 10)
    a, b = 56 / 70, 48 / 80
    low, high = intervals.mover_difference(a, intervals.wilson(56, 70, 0.95), b, intervals.wilson(48, 80, 0.95))
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_a_higher_level_and_fewer_examples_give_wider_intervals():
    width = {(n, level): np.subtract(*intervals.wilson(0.3 * n, n, level)[::-1])
             for n in (50, 5000) for level in (0.9, 0.99)}
    assert width[(50, 0.9)] > 5 * width[(5000, 0.9)]
    assert width[(50, 0.99)] > width[(50, 0.9)]


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    positives, negatives = scores[labels == 1], scores[labels == 0]
    greater = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return greater / (len(positives) * len(negatives))


def test_the_auc_interval_covers_the_true_auc_about_as_often_as_it_claims():
    generator = np.random.default_rng(1)
    separation = 1.2  # binormal scores: the true AUC is Phi(separation / sqrt(2))
    from scipy.stats import norm

    truth = norm.cdf(separation / math.sqrt(2))
    covered = 0
    for _ in range(400):
        labels = (generator.random(120) < 0.4).astype(int)
        scores = generator.normal(separation * labels, 1.0)
        low, high = intervals.hanley_mcneil(_auc(labels, scores), labels.sum(), len(labels) - labels.sum(), 0.95)
        covered += low <= truth <= high
    assert 0.90 <= covered / 400 <= 0.99


def test_the_confusion_matrix_bootstrap_of_f1_covers_about_as_often_as_it_claims():
    generator = np.random.default_rng(2)
    cells = {(1, 1): 0.3, (0, 1): 0.1, (0, 0): 0.45, (1, 0): 0.15}
    truth = 2 * 0.3 / (2 * 0.3 + 0.1 + 0.15)
    covered = 0
    for seed in range(150):
        draw = generator.multinomial(200, list(cells.values()))
        counts = dict(zip(cells, draw.astype(float)))
        low, high = intervals.matrix_bootstrap(counts, intervals._binary_f1, 0.95, seed, draws=500)
        covered += low <= truth <= high
    assert 0.88 <= covered / 150 <= 0.99


def _regression_moments(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    e = y - p
    sums = {"n": len(y), "y": y.sum(), "y2": (y ** 2).sum(), "y3": (y ** 3).sum(), "y4": (y ** 4).sum(),
            "p": p.sum(), "p2": (p ** 2).sum(), "yp": (y * p).sum(), "e2": (e ** 2).sum(), "e4": (e ** 4).sum(),
            "e2y": (e ** 2 * y).sum(), "e2y2": (e ** 2 * y ** 2).sum(), "ae": np.abs(e).sum()}
    nonzero = y != 0
    ape = 100 * np.abs(e[nonzero]) / np.abs(y[nonzero])
    sums.update({"ape_n": nonzero.sum(), "ape": ape.sum(), "ape2": (ape ** 2).sum()})
    return {k: float(v) for k, v in sums.items()}


def test_the_delta_method_intervals_of_the_errors_and_r2_cover_about_as_often_as_they_claim():
    generator = np.random.default_rng(3)
    # y = 10 + 2x + noise(sd 1), predictions 10 + 2x: true MAE sqrt(2/pi), MSE 1, R^2 = 4 / 5
    truth = {"mae": math.sqrt(2 / math.pi), "mse": 1.0, "r2": 4 / 5, "mean_label": 10.0}
    covered = dict.fromkeys(truth, 0)
    for _ in range(300):
        x = generator.normal(size=150)
        y = 10 + 2 * x + generator.normal(size=150)
        p = 10 + 2 * x
        e = y - p
        row = {"metrics": {"mae": np.abs(e).mean(), "mse": (e ** 2).mean(), "mean_label": y.mean(),
                           "r2": 1 - (e ** 2).sum() / ((y - y.mean()) ** 2).sum()}}
        found, methods = intervals.closed_form(row, "regression", [0.5], 0.95, 0, {}, _regression_moments(y, p))
        for name, value in truth.items():
            low, high = found[name]
            covered[name] += low <= value <= high
        assert set(methods.values()) == {intervals.DELTA}
    for name in truth:
        assert 0.88 <= covered[name] / 300 <= 0.99, name


def test_closed_form_gives_every_binary_metric_an_interval_around_its_value():
    tp, fp, tn, fn = 40.0, 10.0, 35.0, 15.0
    row = {"metrics": {"auc": 0.8, "accuracy": 0.75, "precision": 0.8, "recall": 40 / 55, "f1": 80 / 105,
                       "positive_rate@0.5": 0.5, "false_positive_rate@0.5": 10 / 45, "calibration": 1.05}}
    moments = {"n": 100.0, "y": 55.0, "y2": 55.0, "p": 57.75, "p2": 40.0, "yp": 38.0}
    found, methods = intervals.closed_form(row, "binary", [0.5], 0.95, 0, {0.5: {"tp": tp, "fp": fp, "tn": tn,
                                                                                   "fn": fn}}, moments)
    assert set(found) == set(row["metrics"])
    for key, (low, high) in found.items():
        assert low <= row["metrics"][key] <= high, key
    assert methods["auc"] == intervals.HANLEY_MCNEIL and methods["f1"] == intervals.MATRIX_BOOTSTRAP
    assert methods["accuracy"] == intervals.WILSON and methods["calibration"] == intervals.DELTA
    assert found["accuracy"] == pytest.approx(intervals.wilson(75, 100, 0.95))


def test_multiclass_intervals_come_from_the_slices_confusion_matrix():
    counts = {(0, 0): 30.0, (0, 1): 5.0, (1, 1): 25.0, (1, 2): 10.0, (2, 2): 28.0, (2, 0): 2.0}
    total = sum(counts.values())
    row = {"metrics": {"accuracy": 83 / total, "macro_f1": argmax_statistic("macro_f1", counts),
                       "recall[b]": argmax_statistic("recall", counts, 1), "log_loss": 0.6}}
    found, methods = intervals.closed_form(row, "multiclass", [0.5], 0.95, 0, counts,
                                           {"n": total, "ll_n": total, "ll": 0.6 * total, "ll2": 0.6 * total},
                                           classes=["a", "b", "c"])
    assert found["recall[b]"] == pytest.approx(intervals.wilson(25, 35, 0.95))
    assert methods["macro_f1"] == intervals.MATRIX_BOOTSTRAP and methods["log_loss"] == intervals.DELTA
    for key, (low, high) in found.items():
        assert low <= row["metrics"][key] <= high, key


def test_an_interval_is_too_wide_by_its_metrics_scale():
    from components.evaluator import metrics as table

    auc, mae = table.metric("auc"), table.metric("mae", "regression")
    assert intervals.too_wide(auc, 0.8, (0.65, 0.9), 0.2) and not intervals.too_wide(auc, 0.8, (0.75, 0.85), 0.2)
    assert intervals.too_wide(mae, 10.0, (8.0, 12.5), 0.2) and not intervals.too_wide(mae, 10.0, (9.0, 11.0), 0.2)


def test_tfmas_standard_errors_give_intervals_at_the_configured_level():
    row = {"metrics": {"auc": 0.8}}
    found, methods = intervals.from_tfma(row, {"auc": (0.02, 19)}, 0.9, intervals.TFMA_JACKKNIFE)
    from scipy.stats import t

    assert found["auc"] == pytest.approx((0.8 - t.ppf(0.95, 19) * 0.02, 0.8 + t.ppf(0.95, 19) * 0.02), abs=1e-6)
    assert methods == {"auc": intervals.TFMA_JACKKNIFE}


def test_a_perfect_auc_on_few_examples_still_gets_an_interval_of_some_width():
    low, high = intervals.hanley_mcneil(1.0, 6, 8, 0.95)
    assert high == 1.0 and low < 0.97
    assert intervals.hanley_mcneil(1.0, 600, 800, 0.95)[0] > 0.999
