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
  there is a baseline; without one the gate is reported as "no baseline". The metric table
  (``metrics.py``) says which way is better; calibration is best at 1.0, which TFMA's change
  thresholds (higher or lower is better) cannot say, so that gate is checked by sluiceway.

Which TFMA class computes a metric, and which ones are measured at the decision threshold (the
first of ``evaluator.decision_thresholds``, as the fairness gates by default), is the metric table's.

Per task (``features.task``): binary as above. Multiclass: one MetricsSpec for the metrics over all
classes and the multi-class confusion matrix, one binarized on every class id for the per-class
figures, and one per fairness gate binarized on the gate's ``class`` (its rates one-vs-rest,
compared across groups like binary's); the prediction is the most probable class, no decision
threshold. Regression: one MetricsSpec, with a calibration plot over the label's range; a
fairness gate compares a metric such as ``mae`` across groups, by difference (TFMA) or ratio
(sluiceway).
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

from components.evaluator import metrics as table
from pipeline.config import AttributionGate, EvaluatorConfig, FairnessGate, FeaturesConfig, MetricGate, RegressionGate
from pipeline.errors import ConfigError, ConfigIssue

CANDIDATE, BASELINE = "candidate", "baseline"

CONFUSION_MATRICES = "confusion_matrices"  # for the ROC curve and confusion matrix shown by Kubeflow
ROC_THRESHOLDS = tuple(i / 20 for i in range(21))
MULTICLASS_CONFUSION_MATRIX = "multi_class_confusion_matrix"  # a plot: rows actual, columns predicted class
CALIBRATION_PLOT = "calibration_plot"  # regression: mean prediction and mean label per prediction bucket
CALIBRATION_BUCKETS = 10
YAML = "the pipeline YAML"  # a component does not know which file its sections came from


def decision_threshold(evaluator: EvaluatorConfig, gate=None) -> float:
    """The decision threshold a gate's metric is measured at: a fairness gate's own ``threshold``,
    else the first of ``evaluator.decision_thresholds`` (where accuracy, precision, recall and F1
    are measured, in the reports too)."""
    own = gate.threshold if isinstance(gate, FairnessGate) else None
    return own if own is not None else evaluator.decision_thresholds[0]


def gate_metric_of(gate, task: Optional[str] = None) -> table.Metric:
    """The metric a gate is on, as ``task`` computes it."""
    if isinstance(gate, MetricGate):
        return table.metric(gate.metric, task)
    if isinstance(gate, FairnessGate):
        return table.metric(gate.fairness, task)
    return table.metric(gate.no_regression, task)


def gate_metric(index: int, gate) -> str:
    """The name of the TFMA metric that carries gate ``index``'s thresholds."""
    return f"gate{index}_{gate_metric_of(gate).name}"


def class_ids(evaluator: EvaluatorConfig, classes: Sequence[str]) -> dict[int, int]:
    """Multiclass: each fairness gate's class id (gate index -> the index of its ``class`` in the
    model's classes).

    Raises:
        ConfigError: A gate names a class the model does not have.
    """
    found, issues = {}, []
    for index, gate in enumerate(evaluator.gates):
        if not isinstance(gate, FairnessGate) or gate.class_name is None:
            continue
        if gate.class_name in classes:
            found[index] = list(classes).index(gate.class_name)
        else:
            issues.append(ConfigIssue(f"evaluator.gates[{index}].class",
                                      f"'{gate.class_name}' is not a class of the model; expected one of "
                                      f"{', '.join(classes)} (the label's classes in train)"))
    if issues:
        raise ConfigError(YAML, issues)
    return found


def gate_index(metric_name: str) -> Optional[int]:
    """The gate a TFMA metric name belongs to (``gate3_auc`` -> 3), or ``None``."""
    head = metric_name.split("_", 1)[0]
    return int(head[4:]) if head.startswith("gate") and head[4:].isdigit() else None


def checked_by_tfma(gate) -> bool:
    """Whether TFMA's thresholds decide this gate. sluiceway checks ``min_ratio`` (TFMA compares
    slices by difference only) and ``no_regression`` on a metric best at 1.0 (TFMA's change
    thresholds know higher or lower is better only). A gate that judges a bound of an interval, or
    a gap's significance, is sluiceway's too (TFMA's thresholds compare point estimates), and so is
    an attribution gate (TFMA computes no attributions)."""
    if isinstance(gate, AttributionGate):
        return False
    if isinstance(gate, MetricGate):
        return gate.judge == "value"
    if isinstance(gate, FairnessGate):
        return gate.min_ratio is None and gate.judge == "value"
    if isinstance(gate, RegressionGate):
        return table.metric(gate.no_regression).direction in (table.HIGHER, table.LOWER)
    return True


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


def _metric_config(metric: table.Metric, threshold: float, name: Optional[str] = None, top_k: int = 2):
    """TFMA's MetricConfig computing ``metric`` (at ``threshold`` when it takes one), under ``name``."""
    import tensorflow_model_analysis as tfma

    config = {"name": name} if name else {}
    config.update({k: v for k, v in metric.tfma_config(threshold, top_k).items() if not (name and k == "name")})
    return tfma.MetricConfig(class_name=metric.tfma_class, module=metric.tfma_module,
                             config=json.dumps(config) if config else "")


def _gate_metric_config(index: int, gate, evaluator: EvaluatorConfig, with_baseline: bool, task: str = table.BINARY):
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import config_pb2

    name = gate_metric(index, gate)
    metric = gate_metric_of(gate, task)
    config = _metric_config(metric, decision_threshold(evaluator, gate), name, evaluator.top_k)
    if not checked_by_tfma(gate):
        pass  # computed (the value is shown beside sluiceway's verdict), with no TFMA threshold
    elif isinstance(gate, MetricGate):
        bounds = {}
        if gate.min is not None:
            bounds["lower_bound"] = {"value": gate.min}
        if gate.max is not None:
            bounds["upper_bound"] = {"value": gate.max}
        threshold = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(**bounds))
        config.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
            slicing_specs=[_slicing_spec(gate.per)], threshold=threshold))
    elif isinstance(gate, FairnessGate):
        if gate.max_gap is not None:  # (min_ratio is sluiceway's)
            # TFMA's cross-slice value is (baseline slice - comparison slice)
            threshold = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
                lower_bound={"value": -gate.max_gap}, upper_bound={"value": gate.max_gap}))
            config.cross_slice_thresholds.append(tfma.CrossSliceMetricThreshold(
                cross_slicing_specs=[cross_slicing_spec(gate)], threshold=threshold))
    elif with_baseline:
        # TFMA's change is candidate - baseline (relative: divided by baseline): it may fall by
        # max_drop when higher is better, rise by max_drop when lower is better
        higher = metric.direction == table.HIGHER
        direction = config_pb2.MetricDirection.HIGHER_IS_BETTER if higher else config_pb2.MetricDirection.LOWER_IS_BETTER
        bound = -gate.max_drop if higher else gate.max_drop
        change = tfma.GenericChangeThreshold(direction=direction,
                                             **{"relative" if gate.relative else "absolute": {"value": bound}})
        config.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
            slicing_specs=[_slicing_spec(gate.per)], threshold=tfma.MetricThreshold(change_threshold=change)))
    return config


def build_eval_config(evaluator: EvaluatorConfig, features: FeaturesConfig, label_key: str,
                      label_signature: str, prediction_key: str, with_baseline: bool = False, *,
                      classes: Sequence[str] = (), label_range: Optional[tuple[float, float]] = None):
    """TFMA's EvalConfig: overall and per-slice metrics of ``features.task``, the Fairness
    Indicators at the decision thresholds (binary), and the gates as TFMA thresholds.

    Args:
        with_baseline: A second model, ``baseline``, is evaluated beside ``candidate``; the
            no-regression gates become change thresholds against it.
        classes: Multiclass: the model's classes, in class-id order.
        label_range: Regression: the lowest and highest label, the calibration plot's range.

    Raises:
        ConfigError: A multiclass fairness gate names a class the model does not have.
    """
    import tensorflow_model_analysis as tfma
    from google.protobuf import wrappers_pb2

    task = features.task
    threshold = decision_threshold(evaluator)
    gate_configs = {i: _gate_metric_config(i, gate, evaluator, with_baseline, task)
                    for i, gate in enumerate(evaluator.gates) if not isinstance(gate, AttributionGate)}
    # the task's metrics (binary: accuracy, precision, recall and F1 at the decision threshold, TFMA's
    # own default being 0.5); per-class metrics get a spec of their own, binarized on every class
    metrics = [_metric_config(m, threshold, top_k=evaluator.top_k) for m in table.metrics_of_task(task)
               if not m.per_class and not (m.rate and task == table.BINARY)]
    specs = []
    if task == table.BINARY:
        metrics.append(tfma.MetricConfig(
            class_name="FairnessIndicators", module="fairness_indicators.fairness_indicators_metrics",
            config=json.dumps({"thresholds": list(evaluator.decision_thresholds)})))
        metrics.append(tfma.MetricConfig(class_name="ConfusionMatrixAtThresholds", config=json.dumps(
            {"name": CONFUSION_MATRICES,
             "thresholds": sorted(set(ROC_THRESHOLDS) | set(evaluator.decision_thresholds))})))
        metrics += list(gate_configs.values())
    elif task == table.MULTICLASS:
        if not classes:
            raise ValueError("a multiclass evaluation needs the model's classes")
        gated_classes = class_ids(evaluator, classes)
        metrics.append(tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot",
                                         config=json.dumps({"name": MULTICLASS_CONFUSION_MATRIX})))
        metrics += [c for i, c in gate_configs.items() if i not in gated_classes]
        specs.append(tfma.MetricsSpec(
            metrics=[_metric_config(m, threshold) for m in table.metrics_of_task(task) if m.per_class],
            binarize=tfma.BinarizationOptions(class_ids={"values": list(range(len(classes)))})))
        for index, class_id in gated_classes.items():  # a fairness gate's rates of its class, one-vs-rest
            specs.append(tfma.MetricsSpec(metrics=[gate_configs[index]],
                                          binarize=tfma.BinarizationOptions(class_ids={"values": [class_id]})))
    else:
        if label_range is not None and label_range[1] > label_range[0]:
            metrics.append(tfma.MetricConfig(class_name="CalibrationPlot", config=json.dumps(
                {"name": CALIBRATION_PLOT, "num_buckets": CALIBRATION_BUCKETS,
                 "left": float(label_range[0]), "right": float(label_range[1])})))
        metrics += list(gate_configs.values())

    resampling = {}
    method = evaluator.intervals.method
    if method == "closed_form":  # the sums behind the closed-form intervals, in the same pass
        metrics.append(tfma.MetricConfig(class_name="SliceMoments", module=table.SLUICEWAY_METRICS,
                                         config=json.dumps({"multiclass": task == table.MULTICLASS})))
    elif method in ("tfma_jackknife", "tfma_bootstrap"):
        from tensorflow_model_analysis.proto import config_pb2

        methods = config_pb2.ConfidenceIntervalOptions.ConfidenceIntervalMethod
        resampling = {"compute_confidence_intervals": wrappers_pb2.BoolValue(value=True),
                      "confidence_intervals": config_pb2.ConfidenceIntervalOptions(
                          method=methods.JACKKNIFE if method == "tfma_jackknife" else methods.POISSON_BOOTSTRAP)}

    def model_spec(name: str, is_baseline: bool = False):
        return tfma.ModelSpec(name=name, signature_name="serving_default", prediction_key=prediction_key,
                              label_key=label_key, preprocessing_function_names=[label_signature],
                              is_baseline=is_baseline)

    return tfma.EvalConfig(
        model_specs=[model_spec(CANDIDATE)] + ([model_spec(BASELINE, is_baseline=True)] if with_baseline else []),
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)] + specs,
        slicing_specs=[tfma.SlicingSpec()] + [slicing_spec(keys, evaluator.bands)
                                              for keys in slices(evaluator, features)],
        cross_slicing_specs=[cross_slicing_spec(g) for g in evaluator.gates
                             if isinstance(g, FairnessGate) and checked_by_tfma(g)],
        # Not the model's compiled Keras metrics (loss, auc, binary_accuracy): every figure comes from
        # the metrics above, and TFMA would reload the SavedModel for each of their combiners (~3 s
        # each, a dozen with a baseline): about half the Evaluator's time.
        options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False), **resampling),
    )
