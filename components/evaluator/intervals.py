"""Confidence intervals of the Evaluator's metrics, from what TFMA computes in its one pass.

TFMA's own intervals (``Options.compute_confidence_intervals``: jackknife or Poisson bootstrap)
re-run every metric on resampled data: measured on the quickstart they made the Evaluator 7.8x
slower. Most metrics here are rates, means or ratios of counts TFMA already produces per slice, and
for those a closed form is sound and costs nothing (``evaluator.intervals.method: closed_form``):

- a rate or share (accuracy, precision, recall, the Fairness Indicators' rates, a class's
  one-vs-rest rates, top-k accuracy): the **Wilson score interval** of k successes in n trials
  (it stays within [0, 1] and keeps its coverage for small n and rates near 0 or 1);
- AUC: the **Hanley-McNeil** standard error, from the AUC and the numbers of positives and negatives;
- a mean of per-example figures (MAE, MSE, MAPE, the mean prediction and label, the multiclass log
  loss), a ratio of means (calibration) and R²: the normal approximation with the **delta method**,
  on per-slice sums of powers and products (``tfma_metrics.SliceMoments``); RMSE takes MSE's bounds'
  square roots;
- F1 and the averages over classes (macro and micro precision, recall and F1), which are not a
  single proportion: a seeded **bootstrap of the confusion matrix** (multinomial draws of its
  cells; resampling examples does exactly this to a confusion matrix), 2,000 draws, percentile bounds.

``tfma_jackknife`` and ``tfma_bootstrap`` take TFMA's interval of every metric instead (TFMA gives
its standard error and degrees of freedom; the bounds are recomputed at ``evaluator.intervals.level``).

A gap between two groups (the fairness gates) gets the MOVER interval of a difference of two
independent estimates (Newcombe's method for two Wilson intervals), from the groups' own intervals.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from components.evaluator import metrics as table
from components.evaluator.tfma_metrics import argmax_statistic

WILSON, HANLEY_MCNEIL, DELTA = "wilson", "hanley-mcneil", "delta method"
MATRIX_BOOTSTRAP = "confusion-matrix bootstrap"
TFMA_JACKKNIFE, TFMA_BOOTSTRAP = "tfma jackknife", "tfma bootstrap"
TFMA_METHODS = {"tfma_jackknife": TFMA_JACKKNIFE, "tfma_bootstrap": TFMA_BOOTSTRAP}
BOOTSTRAP_DRAWS = 2000

Interval = tuple[float, float]


def z_value(level: float) -> float:
    """The standard normal quantile of a two-sided ``level`` interval (1.96 at 0.95)."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def wilson(successes: float, trials: float, level: float) -> Optional[Interval]:
    """The Wilson score interval of ``successes`` out of ``trials``; ``None`` without trials."""
    if trials <= 0:
        return None
    z = z_value(level)
    share = min(max(successes / trials, 0.0), 1.0)
    denominator = 1 + z * z / trials
    center = (share + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return max(0.0, center - half), min(1.0, center + half)


def hanley_mcneil(auc: float, positives: float, negatives: float, level: float) -> Optional[Interval]:
    """AUC's interval from its Hanley-McNeil (1982) standard error; ``None`` without both classes."""
    if positives <= 0 or negatives <= 0 or auc is None or math.isnan(auc):
        return None
    pairs = positives * negatives
    # an AUC of exactly 0 or 1 (a small slice separated perfectly) has a standard error of 0, which
    # says nothing about how sure it is: its error is taken at the AUC of one more pair, tied
    shrunk = (auc * pairs + 0.5) / (pairs + 1) if auc in (0.0, 1.0) else auc
    q1, q2 = shrunk / (2 - shrunk), 2 * shrunk * shrunk / (1 + shrunk)
    variance = (shrunk * (1 - shrunk) + (positives - 1) * (q1 - shrunk * shrunk)
                + (negatives - 1) * (q2 - shrunk * shrunk)) / pairs
    half = z_value(level) * math.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def normal(value: float, variance: float, level: float, low: float = -math.inf,
           high: float = math.inf) -> Optional[Interval]:
    """value +/- z * sqrt(variance), kept within [low, high]."""
    if value is None or variance is None or math.isnan(value) or math.isnan(variance) or variance < 0:
        return None
    half = z_value(level) * math.sqrt(variance)
    return max(low, value - half), min(high, value + half)


def mean_interval(total: float, squares: float, count: float, level: float, low: float = -math.inf,
                  high: float = math.inf) -> Optional[Interval]:
    """The normal interval of a mean, from the sum and the sum of squares of ``count`` values."""
    if count < 2:
        return None
    mean = total / count
    variance = max(squares / count - mean * mean, 0.0) * count / (count - 1)
    return normal(mean, variance / count, level, low, high)


def delta_interval(value: float, gradient: Sequence[float], means: Mapping[str, float], names: Sequence[str],
                   count: float, level: float, low: float = -math.inf, high: float = math.inf) -> Optional[Interval]:
    """The delta method's interval of a function of means of per-example figures.

    Args:
        value: The function's value.
        gradient: Its derivatives with respect to the means of ``names``' figures.
        means: The means of each figure and of each product of two (``moment_mean``'s keys).
        names: The figures, e.g. ``("e2", "y", "y2")``.
    """
    if count < 2 or value is None or math.isnan(value):
        return None
    variance = 0.0
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            covariance = means[_product(a, b)] - means[a] * means[b]
            variance += gradient[i] * gradient[j] * covariance
    return normal(value, max(variance, 0.0) / (count - 1), level, low, high)


_PRODUCTS = {("y", "y"): "y2", ("y", "y2"): "y3", ("y2", "y2"): "y4", ("p", "p"): "p2", ("y", "p"): "yp",
             ("e2", "e2"): "e4", ("e2", "y"): "e2y", ("e2", "y2"): "e2y2"}


def _product(a: str, b: str) -> str:
    return _PRODUCTS.get((a, b)) or _PRODUCTS[(b, a)]


def matrix_bootstrap(counts: Mapping[tuple[int, int], float], statistic: Callable[[dict], float], level: float,
                     seed: int, draws: int = BOOTSTRAP_DRAWS) -> Optional[Interval]:
    """Percentile interval of ``statistic`` over multinomial resamples of a confusion matrix (cells:
    (actual, predicted) -> examples), as resampling the examples would give."""
    cells = [(cell, value) for cell, value in counts.items() if value > 0]
    total = int(round(sum(value for _, value in cells)))
    if total < 2:
        return None
    generator = np.random.default_rng(seed)
    shares = np.array([value for _, value in cells], dtype=float)
    samples = generator.multinomial(total, shares / shares.sum(), size=draws)
    values = np.array([statistic({cell: float(n) for (cell, _), n in zip(cells, sample)}) for sample in samples])
    values = values[~np.isnan(values)]
    if len(values) < draws / 2:
        return None
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def mover_difference(a: float, a_interval: Optional[Interval], b: float,
                     b_interval: Optional[Interval]) -> Optional[Interval]:
    """The interval of a - b for two independent estimates with their own intervals (the MOVER
    method; for two Wilson intervals it is Newcombe's hybrid score interval)."""
    if a_interval is None or b_interval is None or a is None or b is None:
        return None
    (a_low, a_high), (b_low, b_high) = a_interval, b_interval
    gap = a - b
    return (gap - math.sqrt((a - a_low) ** 2 + (b_high - b) ** 2),
            gap + math.sqrt((a_high - a) ** 2 + (b - b_low) ** 2))


def too_wide(metric: table.Metric, value: Optional[float], interval: Optional[Interval], max_width: float) -> bool:
    """Whether an interval is too wide to judge: wider than ``max_width`` for a metric between 0 and
    1, than ``max_width`` x |value| for the others."""
    if interval is None or value is None or math.isnan(value):
        return False
    width = interval[1] - interval[0]
    return width > (max_width if metric.value_range == (0.0, 1.0) else max_width * abs(value))


def method_of(task: str, name: str) -> str:
    """The closed-form method of a metric of ``task``."""
    if name in ("auc",):
        return HANLEY_MCNEIL
    if name == "f1" or name.startswith(("macro_", "micro_")):
        return MATRIX_BOOTSTRAP
    if task == table.REGRESSION or name in ("calibration", "log_loss"):
        return DELTA
    return WILSON


def closed_form_methods(task: str, thresholds: Sequence[float], classes: Sequence[str] = ()) -> dict[str, str]:
    """Metric key -> the closed-form method of its interval, for every metric ``task`` reports."""
    found = {}
    for metric in table.metrics_of_task(task):
        if metric.name == "example_count":
            continue
        if metric.per_class:
            keys = [metric.row_key(0.0, c) for c in classes]
        elif metric.rate:
            keys = [metric.row_key(t) for t in thresholds]
        else:
            keys = [metric.row_key(thresholds[0])]
        found.update({key: method_of(task, metric.name) for key in keys})
    return found


# -- per slice ---------------------------------------------------------------------------------------

def _binary_counts(matrix: Mapping[str, float]) -> tuple[float, float, float, float]:
    return matrix["tp"], matrix["fp"], matrix["tn"], matrix["fn"]


def _binary_cells(tp: float, fp: float, tn: float, fn: float) -> dict[tuple[int, int], float]:
    return {(1, 1): tp, (0, 1): fp, (0, 0): tn, (1, 0): fn}


def _binary_f1(cells: Mapping[tuple[int, int], float]) -> float:
    tp, fp, fn = cells.get((1, 1), 0.0), cells.get((0, 1), 0.0), cells.get((1, 0), 0.0)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def _proportion(metric_name: str, tp: float, fp: float, tn: float, fn: float) -> tuple[float, float]:
    """(successes, trials) of a binary rate at one threshold."""
    return {"accuracy": (tp + tn, tp + fp + tn + fn), "precision": (tp, tp + fp), "recall": (tp, tp + fn),
            "positive_rate": (tp + fp, tp + fp + tn + fn), "false_positive_rate": (fp, fp + tn),
            "false_negative_rate": (fn, fn + tp), "true_positive_rate": (tp, tp + fn),
            "true_negative_rate": (tn, tn + fp)}[metric_name]


def _moment_means(sums: Mapping[str, float], count_key: str = "n") -> dict[str, float]:
    count = sums.get(count_key, 0.0)
    return {name: value / count for name, value in sums.items() if count}


def closed_form(row: Mapping, task: str, thresholds: Sequence[float], level: float, seed: int,
                counts: Mapping, moments: Mapping[str, float], classes: Sequence[str] = ()
                ) -> tuple[dict[str, Interval], dict[str, str]]:
    """The closed-form intervals of one slice's metrics.

    Args:
        row: The slice's row (``metrics``: key -> value, as ``core._rows`` builds it).
        thresholds: ``evaluator.decision_thresholds`` (binary rates carry theirs in their key).
        counts: Binary: threshold -> {tp, fp, tn, fn}; multiclass: (actual id, predicted id) -> examples.
        moments: ``tfma_metrics.SliceMoments``' sums, by name.

    Returns:
        Metric key -> (low, high), and metric key -> the method that gave it.
    """
    values = row["metrics"]
    intervals: dict[str, Interval] = {}
    methods: dict[str, str] = {}

    def put(key: str, interval: Optional[Interval]) -> None:
        if interval is not None and key in values:
            name = key.split("@", 1)[0].split("[", 1)[0]
            intervals[key] = (round(interval[0], 6), round(interval[1], 6))
            methods[key] = method_of(task, name)

    means = _moment_means(moments)
    n = moments.get("n", 0.0)
    if task == table.BINARY:
        first = thresholds[0]
        matrix = counts.get(first)
        if matrix is not None:
            tp, fp, tn, fn = _binary_counts(matrix)
            for name in ("accuracy", "precision", "recall"):
                put(name, wilson(*_proportion(name, tp, fp, tn, fn), level))
            put("f1", matrix_bootstrap(_binary_cells(tp, fp, tn, fn), _binary_f1, level, seed))
            put("auc", hanley_mcneil(values.get("auc"), tp + fn, fp + tn, level))
        for threshold in thresholds:
            matrix = counts.get(threshold)
            if matrix is None:
                continue
            for metric in table.metrics_of_task(task):
                if metric.rate:
                    put(metric.row_key(threshold), wilson(*_proportion(metric.name, *_binary_counts(matrix)), level))
        if means and means.get("y"):
            put("calibration", delta_interval(values.get("calibration"), (1 / means["y"], -means["p"] / means["y"] ** 2),
                                              means, ("p", "y"), n, level, low=0.0))
    elif task == table.MULTICLASS:
        total = sum(counts.values())
        for name in ("accuracy", "top_k_accuracy"):
            if values.get(name) is not None and total:
                put(name, wilson(values[name] * total, total, level))
        ll_n = moments.get("ll_n", 0.0)
        put("log_loss", mean_interval(moments.get("ll", 0.0), moments.get("ll2", 0.0), ll_n, level, low=0.0))
        for class_id, class_name in enumerate(classes):
            tp = counts.get((class_id, class_id), 0.0)
            fp = sum(v for (a, p), v in counts.items() if p == class_id and a != class_id)
            fn = sum(v for (a, p), v in counts.items() if a == class_id and p != class_id)
            tn = total - tp - fp - fn
            for metric in table.metrics_of_task(task):
                if not metric.per_class:
                    continue
                key = metric.row_key(0.0, class_name)
                if metric.name == "f1":
                    put(key, matrix_bootstrap(counts, lambda c, i=class_id: argmax_statistic("f1", c, i), level, seed))
                else:
                    put(key, wilson(*_proportion(metric.name, tp, fp, tn, fn), level))
        for name in ("macro_precision", "macro_recall", "macro_f1", "micro_precision", "micro_recall", "micro_f1"):
            if name in values and total:
                put(name, matrix_bootstrap(counts, lambda c, s=name: argmax_statistic(s, c), level, seed))
    else:
        if n >= 2:
            put("mae", mean_interval(moments["ae"], moments["e2"], n, level, low=0.0))
            mse = mean_interval(moments["e2"], moments["e4"], n, level, low=0.0)
            put("mse", mse)
            if mse is not None:
                put("rmse", (math.sqrt(mse[0]), math.sqrt(mse[1])))
            put("mean_prediction", mean_interval(moments["p"], moments["p2"], n, level))
            put("mean_label", mean_interval(moments["y"], moments["y2"], n, level))
            put("mape", mean_interval(moments["ape"], moments["ape2"], moments["ape_n"], level, low=0.0))
            if means.get("y"):
                put("calibration", delta_interval(values.get("calibration"),
                                                  (1 / means["y"], -means["p"] / means["y"] ** 2), means, ("p", "y"),
                                                  n, level))
            spread = means["y2"] - means["y"] ** 2
            if spread > 0:
                gradient = (-1 / spread, -means["e2"] * 2 * means["y"] / spread ** 2, means["e2"] / spread ** 2)
                put("r2", delta_interval(values.get("r2"), gradient, means, ("e2", "y", "y2"), n, level, high=1.0))
    return intervals, methods


def from_tfma(row: Mapping, standard_errors: Mapping[str, tuple[float, float]], level: float,
              method: str) -> tuple[dict[str, Interval], dict[str, str]]:
    """Intervals from TFMA's resampling: value +/- t(level, degrees of freedom) x standard error.

    Args:
        standard_errors: Metric key -> (standard error, degrees of freedom), as TFMA wrote them.
        method: ``TFMA_JACKKNIFE`` or ``TFMA_BOOTSTRAP``.
    """
    from scipy.stats import t

    intervals, methods = {}, {}
    for key, (error, freedom) in standard_errors.items():
        value = row["metrics"].get(key)
        if value is None or math.isnan(value) or error is None or math.isnan(error) or freedom < 1:
            continue
        half = float(t.ppf(0.5 + level / 2, freedom)) * error
        intervals[key], methods[key] = (round(value - half, 6), round(value + half, 6)), method
    return intervals, methods
