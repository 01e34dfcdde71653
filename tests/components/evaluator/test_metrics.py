"""The metric table: the one declaration the config, the TFMA translation, the reports and the README read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from components.evaluator import metrics
from components.evaluator.core import _write_report
from components.evaluator.report import render
from pipeline.config import EvaluatorConfig, FeaturesConfig
from tests.conftest import REPO

START, END = "<!-- metric table: generated from components/evaluator/metrics.py -->\n", "<!-- end of metric table -->"


def test_the_readme_lists_exactly_the_metrics_of_the_table():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    assert START in readme and END in readme, "the README's metric table lost its markers"
    shown = readme[readme.index(START) + len(START):readme.index(END)].rstrip("\n")

    assert shown == metrics.readme_table(), (
        "the README's metric table differs from components/evaluator/metrics.py; replace it with the output of "
        "`.venv/bin/python -m components.evaluator.metrics`")
    names = [line.split("|")[1].strip().strip("`") for line in shown.splitlines()[2:]]
    assert names == [m.name for m in metrics.METRICS]


FEATURES_OF_TASK = {
    "binary": FeaturesConfig(label="y", positive="yes", categorical=["sex"], sensitive=["sex"]),
    "multiclass": FeaturesConfig(label="y", task="multiclass", categorical=["sex"], sensitive=["sex"]),
    "regression": FeaturesConfig(label="y", task="regression", categorical=["sex"], sensitive=["sex"]),
}


@pytest.mark.parametrize("task,metric", [(t, m) for m in metrics.METRICS for t in m.tasks],
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_gates_accept_a_metric_as_the_table_says(task, metric):
    from pipeline.config import cross_section_issues

    def accepts(gate: dict) -> bool:
        try:
            evaluator = EvaluatorConfig.model_validate({"gates": [gate]})
        except ValidationError:
            return False
        return not cross_section_issues({"features": FEATURES_OF_TASK[task], "evaluator": evaluator})

    assert accepts({"metric": metric.name, "min": 0}) == metric.can_gate
    assert accepts({"no_regression": metric.name}) == metric.can_regress
    of_class = {"class": "high"} if task == "multiclass" else {}
    assert accepts({"fairness": metric.name, "feature": "sex", "max_gap": 0.1, **of_class}) == (
        metric.rate or metric.across_groups)


def test_a_name_means_one_metric_per_task_and_keeps_its_direction_and_range_across_tasks():
    # the config checks bounds and directions by name: a name's rows must agree on them
    seen = {}
    for metric in metrics.METRICS:
        for task in metric.tasks:
            assert (task, metric.name) not in seen, f"{metric.name} has two rows for {task}"
            seen[(task, metric.name)] = metric
    for name in {m.name for m in metrics.METRICS}:
        rows = [m for m in metrics.METRICS if m.name == name]
        assert len({(m.direction, m.value_range) for m in rows}) == 1, name
    assert metrics.metric("accuracy", "multiclass").tfma_class == "SparseCategoricalAccuracy"
    assert metrics.metric("accuracy").tfma_class == metrics.metric("accuracy", "binary").tfma_class == "BinaryAccuracy"
    assert metrics.metric("r2", "regression").value_range == (-float("inf"), 1.0)
    with pytest.raises(KeyError):
        metrics.metric("auc", "regression")


def test_each_task_has_the_metrics_the_issue_names():
    def names(task):
        return [m.name for m in metrics.metrics_of_task(task)]

    assert names("binary") == ["auc", "accuracy", "precision", "recall", "f1", "calibration", "example_count",
                               "positive_rate", "false_positive_rate", "false_negative_rate", "true_positive_rate",
                               "true_negative_rate"]
    assert metrics.gate_metrics_of_task("multiclass") == (
        "example_count", "accuracy", "top_k_accuracy", "macro_precision", "macro_recall", "macro_f1",
        "micro_precision", "micro_recall", "micro_f1", "log_loss")
    assert [m.name for m in metrics.metrics_of_task("multiclass") if m.per_class] == [
        "precision", "recall", "f1", "positive_rate", "false_positive_rate", "false_negative_rate",
        "true_positive_rate", "true_negative_rate"]
    assert set(names("regression")) == {"mse", "rmse", "mae", "mape", "r2", "mean_prediction", "mean_label",
                                        "calibration", "example_count"}
    assert metrics.fairness_metrics_of_task("regression") == ("mse", "rmse", "mae", "mape", "mean_prediction")
    # lower is better for errors and log loss: no_regression gates follow
    assert {m.name for m in metrics.METRICS if m.direction == metrics.LOWER and m.can_gate} == {
        "log_loss", "mse", "rmse", "mae", "mape"}


def test_example_count_cannot_regress_and_calibration_is_best_at_one():
    assert not metrics.metric("example_count").can_regress
    assert metrics.metric("calibration").direction == metrics.TOWARD_ONE
    assert [m.name for m in metrics.METRICS if m.at_threshold and not m.rate] == ["accuracy", "precision", "recall",
                                                                                 "f1"]


def test_the_table_and_the_config_import_no_tensorflow():
    code = ("import sys, pipeline.config, components.evaluator.metrics; "
            "sys.exit('tensorflow' in sys.modules or 'tensorflow_model_analysis' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def _row(name, features, size, **values):
    return {"slice": name, "features": features, "size": size, "insufficient": size < 30, "metrics": values}


ROWS = [_row("overall", [], 3000, auc=0.81, accuracy=0.74, precision=0.7, recall=0.66, f1=0.68, calibration=1.02,
             **{"positive_rate@0.3": 0.41, "false_positive_rate@0.3": 0.2, "false_negative_rate@0.3": 0.3}),
        _row("sex=female", ["sex"], 1400, auc=0.8, accuracy=0.7, **{"positive_rate@0.3": 0.35})]
EVALUATOR = EvaluatorConfig.model_validate({"decision_thresholds": [0.3, 0.5]})
THRESHOLD_COLUMNS = ["accuracy@0.3", "precision@0.3", "recall@0.3", "f1@0.3", "positive_rate@0.3",
                     "false_positive_rate@0.3", "false_negative_rate@0.3"]


def test_the_markdown_report_says_which_threshold_each_column_used(tmp_path):
    path = tmp_path / "evaluation.md"
    _write_report(ROWS, EVALUATOR, str(path))
    text = path.read_text()

    header = next(line for line in text.splitlines() if line.startswith("| slice"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == ["slice", "examples", "auc", "accuracy@0.3", "precision@0.3", "recall@0.3", "f1@0.3",
                       "calibration", "positive_rate@0.3", "false_positive_rate@0.3", "false_negative_rate@0.3"]
    overall = next(line for line in text.splitlines() if line.startswith("| overall"))
    assert "0.7400" in overall and "1.0200" in overall and "0.4100" in overall
    assert "measured at decision threshold 0.3" in text


def test_the_html_report_says_which_threshold_each_column_used():
    features = FeaturesConfig(label="approved", positive="yes", categorical=["sex"], sensitive=["sex"])
    page = render(ROWS, None, [], True, EVALUATOR, features, "run 1")
    for column in THRESHOLD_COLUMNS + ["auc", "calibration"]:
        assert f"<th>{column}</th>" in page, column
    assert "<th>accuracy</th>" not in page


@pytest.mark.slow
def test_tfma_measures_the_threshold_metrics_at_the_configured_threshold(tmp_path):
    # TFMA without a model: labels and scores are read from the examples themselves
    import random

    import tensorflow as tf
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from fairness_indicators import fairness_indicators_metrics  # noqa: F401 - registers FairnessIndicators

    from components.evaluator.core import _rows
    from components.evaluator.eval_config import build_eval_config

    rng = random.Random(5)
    pairs = []
    for _ in range(400):
        label = rng.random() < 0.4
        pairs.append((label, min(0.999, max(0.001, rng.gauss(0.6 if label else 0.35, 0.2)))))
    data = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for label, score in pairs:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "label": tf.train.Feature(float_list=tf.train.FloatList(value=[float(label)])),
                "score": tf.train.Feature(float_list=tf.train.FloatList(value=[score]))})).SerializeToString())
    evaluator = EvaluatorConfig.model_validate({"decision_thresholds": [0.3, 0.5], "slices": []})
    features = FeaturesConfig(label="label", positive="1", categorical=["sex"])
    config = build_eval_config(evaluator, features, "label", "unused", "score")
    config.model_specs[0].ClearField("preprocessing_function_names")
    config.model_specs[0].ClearField("signature_name")
    tfma.run_model_analysis(eval_config=config, data_location=data, file_format="tfrecords",
                            output_path=str(tmp_path / "out"), pipeline_options=PipelineOptions(
                                ["--direct_running_mode=in_memory", "--direct_num_workers=1"]))
    [overall] = _rows(list(tfma.load_metrics(str(tmp_path / "out"))), evaluator, "")

    def at(threshold: float) -> dict:
        tp = sum(1 for y, s in pairs if y and s > threshold)
        fp = sum(1 for y, s in pairs if not y and s > threshold)
        fn = sum(1 for y, s in pairs if y and s <= threshold)
        return {"accuracy": (len(pairs) - fp - fn) / len(pairs), "precision": tp / (tp + fp),
                "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn), "positive_rate": (tp + fp) / len(pairs)}

    expected, default = at(0.3), at(0.5)
    for name in ("accuracy", "precision", "recall", "f1"):
        assert overall["metrics"][name] == pytest.approx(expected[name], abs=1e-6), name
        assert abs(expected[name] - default[name]) > 0.01  # 0.5, TFMA's default, would give another figure
    # the same threshold as the Fairness Indicators' first one
    assert overall["metrics"]["positive_rate@0.3"] == pytest.approx(expected["positive_rate"], abs=1e-6)
    assert overall["metrics"]["recall"] == pytest.approx(overall["metrics"]["true_positive_rate@0.3"], abs=1e-6)
