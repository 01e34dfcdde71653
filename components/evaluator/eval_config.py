"""The one place where the pipeline YAML becomes TFMA's EvalConfig.

Users write flat YAML (``evaluator.slices``, ``decision_thresholds``); TFMA's nested protobufs are
built here and nowhere else.
"""

from __future__ import annotations

import json

from pipeline.config import EvaluatorConfig, FeaturesConfig

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


def fairness_key(metric: str, threshold: float) -> str:
    """TFMA's key of a Fairness Indicators metric at a decision threshold."""
    return f"fairness_indicators_metrics/{metric}@{threshold:g}"


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


def build_eval_config(evaluator: EvaluatorConfig, features: FeaturesConfig, label_key: str,
                      label_signature: str, prediction_key: str):
    """TFMA's EvalConfig: overall and per-slice metrics, Fairness Indicators at the decision thresholds."""
    import tensorflow_model_analysis as tfma

    metrics = [tfma.MetricConfig(class_name=name) for name in
               ("ExampleCount", "AUC", "BinaryAccuracy", "Precision", "Recall", "F1Score", "Calibration")]
    metrics.append(tfma.MetricConfig(
        class_name="FairnessIndicators", module="fairness_indicators.fairness_indicators_metrics",
        config=json.dumps({"thresholds": list(evaluator.decision_thresholds)})))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", prediction_key=prediction_key,
                                    label_key=label_key, preprocessing_function_names=[label_signature])],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=keys)
                                              for keys in slices(evaluator, features)],
    )
