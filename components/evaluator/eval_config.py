"""The one place where the pipeline YAML becomes TFMA's EvalConfig, gates included.

Users write flat YAML (``evaluator.slices``, ``decision_thresholds``, ``gates``); TFMA's nested
protobufs are built here and nowhere else. Each gate gets a metric of its own, named
``gate<N>_<metric>`` (N: its index in ``evaluator.gates``), carrying the gate's TFMA thresholds, so
every failure TFMA reports in its validation result names the gate it belongs to:

- ``metric`` bound: a value threshold on that metric, overall or on every slice of ``per``.
- ``fairness`` ``max_gap``: a cross-slice threshold: TFMA compares each group with the reference
  group (or every group with every other one, which bounds max - min) and the difference must lie
  within +/- max_gap. TFMA's cross-slice comparisons are differences only, so ``min_ratio`` is
  checked by sluiceway from TFMA's per-slice values (see ``gates.py``).
- ``no_regression``: a change threshold against the baseline model (the one serving), only when
  there is a baseline; without one the gate is reported as "no baseline".
"""

from __future__ import annotations

import json
from typing import Optional

from pipeline.config import EvaluatorConfig, FairnessGate, FeaturesConfig, MetricGate

CANDIDATE, BASELINE = "candidate", "baseline"

# The YAML's metric names -> TFMA's metric keys (Fairness Indicators' at a decision threshold).
METRICS = {
    "example_count": "example_count",
    "auc": "auc",
    "accuracy": "binary_accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1_score",
    "calibration": "calibration",
}
FAIRNESS_METRICS = ("positive_rate", "false_positive_rate", "false_negative_rate", "true_positive_rate",
                    "true_negative_rate")
# TFMA metric classes computing each of them (the rates at one decision threshold).
METRIC_CLASSES = {"example_count": "ExampleCount", "auc": "AUC", "accuracy": "BinaryAccuracy",
                  "precision": "Precision", "recall": "Recall", "f1": "F1Score", "calibration": "Calibration"}
RATE_CLASSES = {"positive_rate": "PredictedPositiveRate", "false_positive_rate": "FallOut",
                "false_negative_rate": "MissRate", "true_positive_rate": "Recall", "true_negative_rate": "Specificity"}


CONFUSION_MATRICES = "confusion_matrices"  # for the ROC curve and confusion matrix shown by Kubeflow
ROC_THRESHOLDS = tuple(i / 20 for i in range(21))


def fairness_key(metric: str, threshold: float) -> str:
    """TFMA's key of a Fairness Indicators metric at a decision threshold."""
    return f"fairness_indicators_metrics/{metric}@{threshold:g}"


def gate_metric(index: int, gate) -> str:
    """The name of the TFMA metric that carries gate ``index``'s thresholds."""
    if isinstance(gate, MetricGate):
        return f"gate{index}_{gate.metric}"
    if isinstance(gate, FairnessGate):
        return f"gate{index}_{gate.fairness}"
    return f"gate{index}_{gate.no_regression}"


def gate_index(metric_name: str) -> Optional[int]:
    """The gate a TFMA metric name belongs to (``gate3_auc`` -> 3), or ``None``."""
    head = metric_name.split("_", 1)[0]
    return int(head[4:]) if head.startswith("gate") and head[4:].isdigit() else None


def checked_by_tfma(gate) -> bool:
    """Whether TFMA's thresholds decide this gate (``min_ratio`` is checked by sluiceway)."""
    return not (isinstance(gate, FairnessGate) and gate.min_ratio is not None)


def slices(evaluator: EvaluatorConfig, features: FeaturesConfig) -> list[list[str]]:
    """The feature lists to slice by (overall not included): the configured ones (by default each
    sensitive feature and their cross) and every slice a gate looks at."""
    from components.evaluator.gates import gate_slices

    if evaluator.slices is not None:
        chosen = [list(s) for s in evaluator.slices]
    else:
        chosen = [[name] for name in features.sensitive]
        if len(features.sensitive) > 1:
            chosen.append(list(features.sensitive))
    for gate in evaluator.gates:
        needed = gate_slices(gate)
        if needed and sorted(needed) not in [sorted(s) for s in chosen]:
            chosen.append(needed)
    return chosen


def band_labels(boundaries: list[float]) -> list[str]:
    """The slice values of a banded feature: ``[25, 40]`` -> ``<25``, ``[25,40)``, ``>=40``."""
    inner = [f"[{low:g},{high:g})" for low, high in zip(boundaries, boundaries[1:])]
    return [f"<{boundaries[0]:g}", *inner, f">={boundaries[-1]:g}"]


def slicing_spec(features: list[str], bands: dict[str, list[float]]):
    """TFMA's SlicingSpec for slicing by ``features``; banded numerics are sliced through TFMA's SQL
    slicing (``slice_keys_sql``), each example getting its band's label under the feature's name."""
    import tensorflow_model_analysis as tfma

    if not any(f in bands for f in features):
        return tfma.SlicingSpec(feature_keys=list(features))
    columns = []
    for feature in features:
        if feature in bands:
            boundaries = bands[feature]
            labels = band_labels(boundaries)
            cases = " ".join(f"WHEN {feature} < {float(bound)!r} THEN '{label}'" for bound, label in zip(boundaries, labels))
            columns.append(f"CASE {cases} ELSE '{labels[-1]}' END AS {feature}")
        else:
            columns.append(feature)
    sources = ", ".join(f"example.{f}" for f in features)
    return tfma.SlicingSpec(slice_keys_sql=f"SELECT STRUCT({', '.join(columns)}) FROM {sources}")


def _slicing_spec(per: Optional[list[str]]):
    """The slices a threshold applies to: every slice of ``per``'s features, or overall."""
    import tensorflow_model_analysis as tfma

    return tfma.SlicingSpec(feature_keys=list(per)) if per else tfma.SlicingSpec()  # no keys: overall only


def cross_slicing_spec(gate: FairnessGate):
    """The group pairs a fairness gate compares: each group against the reference, or all pairs."""
    import tensorflow_model_analysis as tfma

    if gate.reference is not None:
        baseline = tfma.SlicingSpec(feature_values={gate.feature: gate.reference})
    else:
        baseline = tfma.SlicingSpec(feature_keys=[gate.feature])
    return tfma.CrossSlicingSpec(baseline_spec=baseline, slicing_specs=[tfma.SlicingSpec(feature_keys=[gate.feature])])


def _gate_metric_config(index: int, gate, evaluator: EvaluatorConfig, with_baseline: bool):
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import config_pb2

    name = gate_metric(index, gate)
    if isinstance(gate, MetricGate):
        bounds = {}
        if gate.min is not None:
            bounds["lower_bound"] = {"value": gate.min}
        if gate.max is not None:
            bounds["upper_bound"] = {"value": gate.max}
        threshold = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(**bounds))
        return tfma.MetricConfig(class_name=METRIC_CLASSES[gate.metric], config=json.dumps({"name": name}),
                                 per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                                     slicing_specs=[_slicing_spec(gate.per)], threshold=threshold)])
    if isinstance(gate, FairnessGate):
        decision = gate.threshold if gate.threshold is not None else evaluator.decision_thresholds[0]
        config = tfma.MetricConfig(class_name=RATE_CLASSES[gate.fairness],
                                   config=json.dumps({"name": name, "thresholds": [decision]}))
        if gate.max_gap is not None:
            # TFMA's cross-slice value is (baseline slice - comparison slice)
            threshold = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
                lower_bound={"value": -gate.max_gap}, upper_bound={"value": gate.max_gap}))
            config.cross_slice_thresholds.append(tfma.CrossSliceMetricThreshold(
                cross_slicing_specs=[cross_slicing_spec(gate)], threshold=threshold))
        return config
    config = tfma.MetricConfig(class_name=METRIC_CLASSES[gate.no_regression], config=json.dumps({"name": name}))
    if with_baseline:
        change = tfma.GenericChangeThreshold(direction=config_pb2.MetricDirection.HIGHER_IS_BETTER,
                                             **{"relative" if gate.relative else "absolute": {"value": -gate.max_drop}})
        config.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
            slicing_specs=[_slicing_spec(gate.per)], threshold=tfma.MetricThreshold(change_threshold=change)))
    return config


def build_eval_config(evaluator: EvaluatorConfig, features: FeaturesConfig, label_key: str,
                      label_signature: str, prediction_key: str, with_baseline: bool = False):
    """TFMA's EvalConfig: overall and per-slice metrics, Fairness Indicators at the decision
    thresholds, and the gates as TFMA thresholds.

    Args:
        with_baseline: A second model, ``baseline``, is evaluated beside ``candidate``; the
            no-regression gates become change thresholds against it.
    """
    import tensorflow_model_analysis as tfma
    from google.protobuf import wrappers_pb2

    metrics = [tfma.MetricConfig(class_name=name) for name in METRIC_CLASSES.values()]
    metrics.append(tfma.MetricConfig(
        class_name="FairnessIndicators", module="fairness_indicators.fairness_indicators_metrics",
        config=json.dumps({"thresholds": list(evaluator.decision_thresholds)})))
    metrics.append(tfma.MetricConfig(class_name="ConfusionMatrixAtThresholds", config=json.dumps(
        {"name": CONFUSION_MATRICES,
         "thresholds": sorted(set(ROC_THRESHOLDS) | set(evaluator.decision_thresholds))})))
    metrics += [_gate_metric_config(i, gate, evaluator, with_baseline) for i, gate in enumerate(evaluator.gates)]

    def model_spec(name: str, is_baseline: bool = False):
        return tfma.ModelSpec(name=name, signature_name="serving_default", prediction_key=prediction_key,
                              label_key=label_key, preprocessing_function_names=[label_signature],
                              is_baseline=is_baseline)

    return tfma.EvalConfig(
        model_specs=[model_spec(CANDIDATE)] + ([model_spec(BASELINE, is_baseline=True)] if with_baseline else []),
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
        slicing_specs=[tfma.SlicingSpec()] + [slicing_spec(keys, evaluator.bands)
                                              for keys in slices(evaluator, features)],
        cross_slicing_specs=[cross_slicing_spec(g) for g in evaluator.gates
                             if isinstance(g, FairnessGate) and g.max_gap is not None],
        # Not the model's compiled Keras metrics (loss, auc, binary_accuracy): every figure comes from
        # the metrics above, and TFMA would reload the SavedModel for each of their combiners (~3 s
        # each, a dozen with a baseline): about half the Evaluator's time.
        options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)),
    )
