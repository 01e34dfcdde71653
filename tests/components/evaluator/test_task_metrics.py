"""Multiclass and regression without running TFMA: the EvalConfig built per task, gate checks on
per-task rows, the returned figures and the reports."""

from __future__ import annotations

import math

import pytest

from components.evaluator import gates
from components.evaluator.core import _write_report, headline_figures
from components.evaluator.report import render
from pipeline.config import EvaluatorConfig, FeaturesConfig
from pipeline.errors import ConfigError

MULTICLASS = FeaturesConfig(label="tier", task="multiclass", numeric=["x"], categorical=["group"],
                            sensitive=["group"])
REGRESSION = FeaturesConfig(label="rate", task="regression", numeric=["x"], categorical=["group"],
                            sensitive=["group"])
CLASSES = ["low", "mid", "high"]


def _gate_metric(config, name: str):
    [found] = [(spec, m) for spec in config.metrics_specs for m in spec.metrics if f'"name": "{name}"' in m.config]
    return found


def test_the_multiclass_eval_config_binarizes_per_class_and_per_fairness_gate():
    from components.evaluator.eval_config import build_eval_config

    evaluator = EvaluatorConfig.model_validate({"top_k": 2, "gates": [
        {"metric": "macro_f1", "min": 0.5, "per": ["group"]},
        {"fairness": "false_positive_rate", "feature": "group", "class": "high", "max_gap": 0.1},
        {"no_regression": "log_loss", "max_drop": 0.01}]})
    config = build_eval_config(evaluator, MULTICLASS, "tier_class_id", "transform_label", "scores", True,
                               classes=CLASSES)
    plain, per_class, gated = config.metrics_specs
    classes_of = {m.class_name for m in plain.metrics}
    assert {"SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "SparseCategoricalCrossentropy",
            "ArgmaxClassification", "MultiClassConfusionMatrixPlot", "ExampleCount", "SliceMoments"} == classes_of
    # (the sums behind the closed-form intervals, for the multiclass log loss)
    assert '"multiclass": true' in next(m.config for m in plain.metrics if m.class_name == "SliceMoments")
    assert '"k": 2' in next(m.config for m in plain.metrics if m.class_name == "SparseTopKCategoricalAccuracy")
    assert list(per_class.binarize.class_ids.values) == [0, 1, 2]
    spec, fpr = _gate_metric(config, "gate1_false_positive_rate")
    assert spec is gated and list(gated.binarize.class_ids.values) == [2]  # high is class id 2
    assert fpr.module == "components.evaluator.tfma_metrics" and '"statistic": "false_positive_rate"' in fpr.config
    assert fpr.cross_slice_thresholds[0].threshold.value_threshold.upper_bound.value == pytest.approx(0.1)
    spec, macro = _gate_metric(config, "gate0_macro_f1")
    assert spec is plain and list(macro.per_slice_thresholds[0].slicing_specs[0].feature_keys) == ["group"]
    _, loss = _gate_metric(config, "gate2_log_loss")
    change = loss.per_slice_thresholds[0].threshold.change_threshold
    assert change.absolute.value == pytest.approx(0.01)  # lower is better: it may rise by max_drop
    assert all("FairnessIndicators" != m.class_name for s in config.metrics_specs for m in s.metrics)


def test_a_fairness_gate_on_a_class_the_model_lacks_is_a_config_error_at_its_path():
    from components.evaluator.eval_config import build_eval_config

    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"fairness": "positive_rate", "feature": "group", "class": "urgent", "min_ratio": 0.8}]})
    with pytest.raises(ConfigError) as info:
        build_eval_config(evaluator, MULTICLASS, "tier_class_id", "transform_label", "scores", classes=CLASSES)
    [issue] = info.value.issues
    assert issue.path == "evaluator.gates[0].class"
    assert "'urgent' is not a class of the model; expected one of low, mid, high" in issue.message


def test_the_regression_eval_config_plots_calibration_over_the_label_range_and_gates_r2_in_tfma():
    from components.evaluator.eval_config import build_eval_config, checked_by_tfma

    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"metric": "r2", "min": 0.6}, {"no_regression": "r2"}, {"fairness": "mae", "feature": "group", "max_gap": 2}]})
    config = build_eval_config(evaluator, REGRESSION, "rate_value", "transform_label", "predictions", True,
                               label_range=(2.0, 14.0))
    [spec] = config.metrics_specs
    by_class = {m.class_name: m for m in spec.metrics if '"name": "gate' not in m.config}
    assert {"MeanSquaredError", "RootMeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
            "CoefficientOfDetermination", "MeanPrediction", "MeanLabel", "Calibration", "ExampleCount",
            "CalibrationPlot", "SliceMoments"} == set(by_class)
    assert by_class["RootMeanSquaredError"].module == "tf_keras.metrics"
    assert '"left": 2.0, "right": 14.0' in by_class["CalibrationPlot"].config
    _, r2 = _gate_metric(config, "gate0_r2")
    assert r2.class_name == "CoefficientOfDetermination"
    assert r2.per_slice_thresholds[0].threshold.value_threshold.lower_bound.value == pytest.approx(0.6)
    assert all(checked_by_tfma(g) for g in evaluator.gates)
    _, mae = _gate_metric(config, "gate2_mae")
    assert mae.cross_slice_thresholds[0].threshold.value_threshold.lower_bound.value == pytest.approx(-2)


def _row(name, features, size, **metrics):
    return {"slice": name, "features": features, "size": size, "insufficient": size < 30, "metrics": metrics}


def test_multiclass_fairness_checks_compare_the_gates_class_and_name_it():
    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"fairness": "positive_rate", "feature": "group", "class": "high", "min_ratio": 0.8},
        {"metric": "top_k_accuracy", "min": 0.9}]})
    rows = [_row("overall", [], 300, top_k_accuracy=0.85),
            _row("group=a", ["group"], 180, **{"positive_rate[high]": 0.30, "positive_rate[low]": 0.5}),
            _row("group=b", ["group"], 120, **{"positive_rate[high]": 0.45, "positive_rate[low]": 0.2})]
    ratio, top_k = gates.evaluate(evaluator, rows, None, gates.TfmaValidation(failures={1: {"overall": "x"}}),
                                  task="multiclass")
    assert ratio.gate == "gates[0] fairness positive_rate[high] across group: min_ratio 0.8"
    assert (ratio.slice, ratio.metric, ratio.status) == ("group=a vs group=b", "positive_rate[high] ratio", "fail")
    assert ratio.value == pytest.approx(0.30 / 0.45) and ratio.detail == "group=a: 0.3000 vs group=b: 0.4500"
    assert (top_k.metric, top_k.value, top_k.bound, top_k.status) == ("top_k_accuracy (k=2)", 0.85, ">= 0.9", "fail")


def test_regression_checks_gap_in_label_units_and_regress_where_lower_is_better():
    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"fairness": "mean_prediction", "feature": "group", "max_gap": 1.5},
        {"fairness": "mean_prediction", "feature": "group", "min_ratio": 0.9},
        {"no_regression": "rmse", "max_drop": 0.1}]})
    rows = [_row("overall", [], 300, rmse=2.4),
            _row("group=a", ["group"], 180, mean_prediction=-1.0), _row("group=b", ["group"], 120, mean_prediction=2.0)]
    gap, ratio, regressed = gates.evaluate(evaluator, rows, [_row("overall", [], 300, rmse=2.2)],
                                           gates.TfmaValidation(failures={0: {("group=a", "group=b"): "x"}},
                                                                diff_failures={2: {"overall": "x"}}),
                                           task="regression")
    assert (gap.metric, gap.value, gap.bound, gap.status) == ("mean_prediction gap", 3.0, "<= 1.5", "fail")
    assert ratio.status == "fail" and ratio.value is None and "ratio of negative values" in ratio.detail
    assert regressed.bound == "<= 2.3000 (baseline + max_drop)" and regressed.status == "fail"
    assert regressed.detail == "rise +0.2000"


def test_the_headline_figures_follow_the_task():
    overall = {"metrics": {"rmse": 1.23456, "mae": 0.9, "r2": 0.8, "mean_prediction": 10.0, "mean_label": 9.9}}
    assert headline_figures(overall, "regression") == {"eval_rmse": 1.2346, "eval_mae": 0.9, "eval_r2": 0.8,
                                                       "eval_mean_prediction": 10.0, "eval_mean_label": 9.9}
    assert set(headline_figures({"metrics": {}}, "multiclass")) == {"eval_accuracy", "eval_macro_f1", "eval_log_loss",
                                                                    "eval_top_k_accuracy"}


MULTICLASS_ROWS = [_row("overall", [], 10, accuracy=0.6, macro_f1=0.55, **{
    "precision[low]": 0.6, "recall[low]": 0.75, "precision[mid]": 0.5, "precision[high]": 0.6667}),
    _row("group=a", ["group"], 6, accuracy=0.5)]
PLOTS = {"classes": CLASSES, "confusion_matrix": [[3, 1, 0], [1, 1, 1], [1, 0, 2]]}


def test_the_multiclass_reports_show_the_classes_and_the_confusion_matrix(tmp_path):
    from tests.components.conftest import markdown_rows

    evaluator = EvaluatorConfig.model_validate({"min_slice_size": 5})
    path = tmp_path / "evaluation.md"
    _write_report(MULTICLASS_ROWS, evaluator, str(path), "multiclass", PLOTS)
    text = path.read_text()
    [overall, _] = markdown_rows(text)
    assert overall["accuracy"] == "0.6000" and overall["top_k_accuracy (k=2)"] == "-"
    per_class = markdown_rows(text[text.index("## Per class"):])
    assert [r["class"] for r in per_class] == CLASSES
    assert (per_class[0]["precision"], per_class[0]["recall"]) == ("0.6000", "0.7500")
    matrix = markdown_rows(text[text.index("## Confusion matrix"):])
    assert matrix[1] == {"label / predicted": "mid", "low": "1", "mid": "1", "high": "1"}
    page = render(MULTICLASS_ROWS, None, [], True, evaluator, MULTICLASS, "run", plots=PLOTS)
    assert "<h2>Confusion matrix (overall)</h2>" in page and "<th>macro_f1</th>" in page
    assert "aria-label='accuracy by group'" in page  # the default chart without a fairness gate


def test_the_regression_reports_show_mean_prediction_against_mean_label(tmp_path):
    from tests.components.conftest import markdown_rows

    rows = [_row("overall", [], 300, rmse=1.1, mean_prediction=10.2, mean_label=9.8, calibration=10.2 / 9.8),
            _row("group=a", ["group"], 180, mae=0.8, mean_prediction=-0.5),
            _row("group=b", ["group"], 120, mae=1.4, mean_prediction=3.0)]
    plots = {"calibration_plot": [{"from": -math.inf, "to": 4.0, "examples": 12, "mean_prediction": 3.1,
                                   "mean_label": 3.5}, {"from": 4.0, "to": 8.0, "examples": 288,
                                                        "mean_prediction": 6.0, "mean_label": 5.9}]}
    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"fairness": "mean_prediction", "feature": "group", "max_gap": 1.0, "reference": "a"}]})
    path = tmp_path / "evaluation.md"
    _write_report(rows, evaluator, str(path), "regression", plots)
    text = path.read_text()
    overall = markdown_rows(text)[0]
    assert (overall["mean_prediction"], overall["mean_label"], overall["calibration"]) == ("10.2000", "9.8000",
                                                                                             "1.0408")
    buckets = markdown_rows(text[text.index("## Calibration"):])
    assert buckets[0] == {"predictions": "[-inf, 4)", "examples": "12", "mean prediction": "3.1000",
                          "mean label": "3.5000"}
    page = render(rows, None, [], False, evaluator, REGRESSION, "run", plots=plots)
    # a negative mean prediction is drawn, every bar has a non-negative width, both bounds around the reference
    assert "width='-" not in page
    assert "lowest allowed (max_gap 1): -1.5000" in page and "highest allowed (max_gap 1): 0.5000" in page
