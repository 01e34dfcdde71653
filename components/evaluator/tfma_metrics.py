"""sluiceway's own TFMA metrics, for figures TFMA 0.47.1 gets wrong or does not have.

They are ordinary TFMA metrics (``tfma.MetricConfig(class_name=..., module=__name__)``): computed
per slice and per model in the same Beam pass as TFMA's own, and value, cross-slice and change
thresholds apply to them, so gates on them are decided by TFMA's validation like every other gate.

``ArgmaxClassification``: multiclass figures of the predicted class (the most probable one),
derived from TFMA's multi-class confusion matrix (the computation ``MultiClassConfusionMatrixPlot``
uses, so it is computed once). TFMA's own way to get them, binary metrics with ``top_k: 1``, fails
on this release, as measured on a three-class model:

- macro averaging (``AggregationOptions(macro_average=True, class_weights=...)``) of a metric with
  ``top_k`` raises ``KeyError`` (it looks up the per-class values without their ``top_k``);
- with ``binarize`` on class ids, a class never predicted in a slice gets a positive rate of 1.0
  there (every example counted as predicted positive), and thresholds on those metrics are
  "Metric not found" (their key carries ``top_k``, the threshold's does not);
- micro averaging with ``top_k: 1`` gives a recall of 1.0.

``CoefficientOfDetermination``: R² = 1 - SS_res / SS_tot, where SS_res = sum (label - prediction)²
and SS_tot = sum (label - mean label)², from running sums accumulated in one pass (tf_keras' ``R2Score``
fails inside TFMA). Examples whose label or prediction is NaN are left out, as TFMA's mean errors
leave them out.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util, multi_class_confusion_matrix_metrics
from tensorflow_model_analysis.proto import config_pb2

# One-vs-rest figures of one class (the MetricsSpec binarizes on class ids; each class is a sub key).
PER_CLASS = ("precision", "recall", "f1", "positive_rate", "false_positive_rate", "false_negative_rate",
             "true_positive_rate", "true_negative_rate")
# Figures over all classes.
AVERAGED = ("macro_precision", "macro_recall", "macro_f1", "micro_precision", "micro_recall", "micro_f1")
STATISTICS = PER_CLASS + AVERAGED
_ARGMAX = 0.0  # TFMA's matrix at threshold 0.0: every example's predicted class is its most probable one


class ArgmaxClassification(metric_types.Metric):
    """A multiclass figure of the predicted (most probable) class; see the module docstring.

    Args:
        statistic: One of ``STATISTICS``. The ``PER_CLASS`` ones need a MetricsSpec with
            ``binarize.class_ids`` (the class is the sub key); the ``AVERAGED`` ones take none.
        name: The metric's name (its TFMA key); default ``statistic``.
    """

    def __init__(self, statistic: str, name: Optional[str] = None):
        if statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {statistic!r}; expected one of {', '.join(STATISTICS)}")
        super().__init__(metric_util.merge_per_key_computations(_argmax_computations), statistic=statistic,
                         name=name or statistic)


def _argmax_computations(statistic: str, name: str, eval_config: Optional[config_pb2.EvalConfig] = None,
                         model_name: str = "", output_name: str = "",
                         sub_key: Optional[metric_types.SubKey] = None,
                         example_weighted: bool = False) -> metric_types.MetricComputations:
    class_id = sub_key.class_id if sub_key is not None else None
    if (statistic in PER_CLASS) != (class_id is not None):
        raise ValueError(f"{name}: {statistic} " + ("needs a MetricsSpec binarized on class ids"
                                                    if statistic in PER_CLASS else "takes no class id"))
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                                 example_weighted=example_weighted)
    computations = multi_class_confusion_matrix_metrics.multi_class_confusion_matrices(
        thresholds=[_ARGMAX], eval_config=eval_config, model_name=model_name, output_name=output_name,
        example_weighted=example_weighted)
    matrices_key = computations[-1].keys[-1]

    def result(metrics: Dict[metric_types.MetricKey, object]) -> Dict[metric_types.MetricKey, float]:
        counts = {(entry.actual_class_id, entry.predicted_class_id): value
                  for entry, value in metrics[matrices_key].get(_ARGMAX, {}).items()}
        return {key: argmax_statistic(statistic, counts, class_id)}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def argmax_statistic(statistic: str, counts: Dict[tuple[int, int], float], class_id: Optional[int] = None) -> float:
    """``statistic`` from a multiclass confusion matrix: (actual class id, predicted class id) ->
    examples (an actual id of -1 is a label outside the classes, a wrong prediction for every class).

    Per class (one-vs-rest): 0/0 is NaN, as in the Fairness Indicators. Macro averages take the
    mean over the classes that occur as a label or a prediction in the slice, a class's 0/0 counting
    as 0 (scikit-learn's ``average="macro"``); micro averages pool every class's counts.
    """
    total = sum(counts.values())
    classes = sorted({c for pair in counts for c in pair if c >= 0})

    def one_vs_rest(c: int) -> tuple[float, float, float, float]:
        tp = counts.get((c, c), 0.0)
        fp = sum(v for (a, p), v in counts.items() if p == c and a != c)
        fn = sum(v for (a, p), v in counts.items() if a == c and p != c)
        return tp, fp, fn, total - tp - fp - fn

    if statistic in PER_CLASS:
        tp, fp, fn, tn = one_vs_rest(int(class_id))
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return {"precision": precision, "recall": recall, "f1": _ratio(2 * tp, 2 * tp + fp + fn),
                "positive_rate": _ratio(tp + fp, total), "false_positive_rate": _ratio(fp, fp + tn),
                "false_negative_rate": _ratio(fn, tp + fn), "true_positive_rate": recall,
                "true_negative_rate": _ratio(tn, tn + fp)}[statistic]
    tallies = [one_vs_rest(c) for c in classes]
    if statistic.startswith("micro_"):
        tp = sum(t[0] for t in tallies)
        precision = _ratio(tp, sum(t[0] + t[1] for t in tallies))
        recall = _ratio(tp, sum(t[0] + t[2] for t in tallies))
        f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
        return {"micro_precision": precision, "micro_recall": recall, "micro_f1": f1}[statistic]
    if not tallies:
        return float("nan")

    def zero_if_undefined(value: float) -> float:
        return 0.0 if math.isnan(value) else value

    per_class = {"macro_precision": [zero_if_undefined(_ratio(tp, tp + fp)) for tp, fp, _, _ in tallies],
                 "macro_recall": [zero_if_undefined(_ratio(tp, tp + fn)) for tp, _, fn, _ in tallies],
                 "macro_f1": [zero_if_undefined(_ratio(2 * tp, 2 * tp + fp + fn)) for tp, fp, fn, _ in tallies]}
    return float(np.mean(per_class[statistic]))


class CoefficientOfDetermination(metric_types.Metric):
    """R² of a regression model (see the module docstring): 1.0 predicts perfectly, 0.0 is no better
    than always predicting the slice's mean label, below 0 is worse than that. NaN for a slice whose
    labels are all equal."""

    def __init__(self, name: str = "r2"):
        super().__init__(metric_util.merge_per_key_computations(_r2_computations), name=name)


def _r2_computations(name: str = "r2", eval_config: Optional[config_pb2.EvalConfig] = None, model_name: str = "",
                     output_name: str = "", sub_key: Optional[metric_types.SubKey] = None,
                     example_weighted: bool = False) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(keys=[key], preprocessors=None,
                                           combiner=_R2Combiner(key, eval_config, example_weighted))]


class _Sums:
    """Weighted count, mean label and sum of squared deviations from it (Welford's update, Chan's
    merge: no cancellation for labels far from 0), and the sum of squared errors."""

    __slots__ = ("weight", "mean", "deviations", "squared_error")

    def __init__(self):
        self.weight = self.mean = self.deviations = self.squared_error = 0.0

    def add(self, label: float, prediction: float, weight: float) -> None:
        if weight <= 0:
            return
        total = self.weight + weight
        delta = label - self.mean
        self.mean += delta * weight / total
        self.deviations += weight * delta * (label - self.mean)
        self.weight = total
        self.squared_error += weight * (label - prediction) ** 2

    def merge(self, other: "_Sums") -> None:
        total = self.weight + other.weight
        if other.weight <= 0:
            return
        delta = other.mean - self.mean
        self.deviations += other.deviations + delta * delta * self.weight * other.weight / total
        self.mean += delta * other.weight / total
        self.weight = total
        self.squared_error += other.squared_error


class _R2Combiner(beam.CombineFn):
    def __init__(self, key: metric_types.MetricKey, eval_config: Optional[config_pb2.EvalConfig],
                 example_weighted: bool):
        self._key, self._eval_config, self._example_weighted = key, eval_config, example_weighted

    def create_accumulator(self) -> _Sums:
        return _Sums()

    def add_input(self, sums: _Sums, element: metric_types.StandardMetricInputs) -> _Sums:
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, sub_key=self._key.sub_key,
                example_weighted=self._example_weighted):
            y, p = float(label), float(prediction)
            if not (math.isnan(y) or math.isnan(p)):
                sums.add(y, p, float(weight))
        return sums

    def merge_accumulators(self, accumulators: Iterable[_Sums]) -> _Sums:
        merged = _Sums()
        for sums in accumulators:
            merged.merge(sums)
        return merged

    def extract_output(self, sums: _Sums) -> Dict[metric_types.MetricKey, float]:
        return {self._key: r2_from_sums(sums.weight, sums.deviations, sums.squared_error)}


def r2_from_sums(weight: float, deviations: float, squared_error: float) -> float:
    """R² = 1 - squared_error / deviations (sum w·(y - p)² over sum w·(y - mean)²); NaN without
    examples or when every label is the same."""
    if weight <= 0 or deviations <= 0:
        return float("nan")
    return 1.0 - squared_error / deviations


# The running sums behind the closed-form confidence intervals (``intervals.py``) of the metrics that
# are means or ratios of per-example figures: y the label, p the prediction (binary: the score),
# e = y - p; ape the absolute percentage error (examples whose label is 0 left out, as TFMA's MAPE);
# ll the multiclass log loss of one example (-log of the probability given to its label).
MOMENTS = "slice_moments"
MOMENT_SUMS = ("n", "y", "y2", "y3", "y4", "p", "p2", "yp", "e2", "e4", "e2y", "e2y2", "ae", "ape_n", "ape", "ape2",
               "ll_n", "ll", "ll2")


def moment_key(stat: str) -> str:
    """The TFMA metric name of one running sum (``slice_moments/e2``)."""
    return f"{MOMENTS}/{stat}"


class SliceMoments(metric_types.Metric):
    """Per slice, the sums of ``MOMENT_SUMS`` (each a metric of its own, ``slice_moments/<sum>``), in the
    same Beam pass as every other metric: with them ``intervals.py`` gives the intervals of the
    calibration, the errors, the means, R² and the log loss without resampling.

    Args:
        multiclass: The predictions are class probabilities and the label a class id.
    """

    def __init__(self, name: str = MOMENTS, multiclass: bool = False):
        super().__init__(metric_util.merge_per_key_computations(_moments_computations), name=name,
                         multiclass=multiclass)


def _moments_computations(name: str = MOMENTS, multiclass: bool = False,
                          eval_config: Optional[config_pb2.EvalConfig] = None, model_name: str = "",
                          output_name: str = "", sub_key: Optional[metric_types.SubKey] = None,
                          example_weighted: bool = False) -> metric_types.MetricComputations:
    keys = [metric_types.MetricKey(name=f"{name}/{stat}", model_name=model_name, output_name=output_name,
                                   sub_key=sub_key, example_weighted=example_weighted) for stat in MOMENT_SUMS]
    return [metric_types.MetricComputation(keys=keys, preprocessors=None,
                                           combiner=_MomentsCombiner(keys, eval_config, multiclass))]


class _MomentsCombiner(beam.CombineFn):
    def __init__(self, keys, eval_config: Optional[config_pb2.EvalConfig], multiclass: bool):
        self._keys, self._eval_config, self._multiclass = keys, eval_config, multiclass

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(len(MOMENT_SUMS))

    def add_input(self, sums: np.ndarray, element: metric_types.StandardMetricInputs) -> np.ndarray:
        key = self._keys[0]
        for label, prediction, _ in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=key.model_name, output_name=key.output_name,
                flatten=not self._multiclass, squeeze=False):
            sums[0] += 1
            if self._multiclass:
                label_id = int(np.asarray(label).reshape(-1)[0])
                probabilities = np.asarray(prediction, dtype=float).reshape(-1)
                if 0 <= label_id < len(probabilities):
                    loss = -math.log(min(max(probabilities[label_id], 1e-15), 1.0))
                    sums[16] += 1
                    sums[17] += loss
                    sums[18] += loss * loss
                continue
            y, p = float(np.asarray(label).reshape(-1)[0]), float(np.asarray(prediction).reshape(-1)[0])
            if math.isnan(y) or math.isnan(p):
                sums[0] -= 1
                continue
            e = y - p
            e2 = e * e
            sums[1:13] += (y, y * y, y ** 3, y ** 4, p, p * p, y * p, e2, e2 * e2, e2 * y, e2 * y * y, abs(e))
            if y != 0:
                ape = 100.0 * abs(e) / abs(y)
                sums[13:16] += (1, ape, ape * ape)
        return sums

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        merged = np.zeros(len(MOMENT_SUMS))
        for sums in accumulators:
            merged += sums
        return merged

    def extract_output(self, sums: np.ndarray) -> Dict[metric_types.MetricKey, float]:
        return {key: float(value) for key, value in zip(self._keys, sums)}
