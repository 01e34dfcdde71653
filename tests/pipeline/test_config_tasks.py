"""features.task and the tree models in the pipeline YAML: what each task needs, and what does not fit
it, reported at its YAML path with what was expected."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.loader import load_config

HEAD = """\
pipeline: {name: demo}
data: {source: data/risk.csv}
"""
MULTICLASS = HEAD + """\
features:
  label: risk_tier
  task: multiclass
  numeric: [age, income]
  categorical: [sex, region]
  sensitive: [sex]
"""
REGRESSION = MULTICLASS.replace("risk_tier", "interest_rate").replace("task: multiclass", "task: regression")


def errors(write_pipeline, text: str) -> list[str]:
    path = write_pipeline(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(issue) for issue in info.value.issues]


def test_a_binary_file_of_before_is_still_binary(write_pipeline):
    config = load_config(write_pipeline(MULTICLASS.replace("  task: multiclass\n", '  positive: "yes"\n')))
    assert config.features.task == "binary" and config.features.positive_value == "yes"


def test_binary_needs_positive_and_the_other_tasks_refuse_it(write_pipeline):
    [message] = errors(write_pipeline, MULTICLASS.replace("  task: multiclass\n", ""))
    assert message.startswith("features:") and "task binary needs positive" in message and "multiclass" in message
    [message] = errors(write_pipeline, MULTICLASS.replace("task: multiclass", 'task: multiclass\n  positive: "low"'))
    assert "positive is not used by task multiclass" in message


def test_a_gate_on_a_metric_the_task_lacks_lists_the_metrics_it_has(write_pipeline):
    text = MULTICLASS + "evaluator:\n  gates:\n    - {metric: auc, min: 0.7}\n    - {metric: rmse, max: 2}\n"
    found = errors(write_pipeline, text)
    auc = next(m for m in found if m.startswith("evaluator.gates[0].metric"))
    assert "auc is not a metric of the multiclass task" in auc
    for name in ("accuracy", "macro_f1", "log_loss", "top_k_accuracy"):
        assert name in auc
    assert any(m.startswith("evaluator.gates[1].metric") and "rmse" in m for m in found)
    found = errors(write_pipeline, REGRESSION + "evaluator:\n  gates:\n    - {no_regression: auc, max_drop: 0.01}\n")
    assert any(m.startswith("evaluator.gates[0].no_regression") and "regression task has" in m and "rmse" in m
               for m in found)


def test_a_multiclass_fairness_gate_names_its_class_and_others_do_not(write_pipeline):
    gate = "evaluator:\n  gates:\n    - {fairness: false_negative_rate, feature: sex, max_gap: 0.1}\n"
    [message] = errors(write_pipeline, MULTICLASS + gate)
    assert message.startswith("evaluator.gates[0]") and "give class:" in message
    config = load_config(write_pipeline(MULTICLASS + gate.replace("max_gap", "class: high, max_gap")))
    assert config.evaluator.gates[0].class_name == "high"
    [message] = errors(write_pipeline, REGRESSION + "evaluator:\n  gates:\n"
                                                    "    - {fairness: mae, feature: sex, class: high, max_gap: 1.5}\n")
    assert message.startswith("evaluator.gates[0].class") and "only used by the multiclass task" in message
    # a regression gap is in the label's units, a rate's at most 1
    assert load_config(write_pipeline(REGRESSION + "evaluator:\n  gates:\n"
                                                   "    - {fairness: mae, feature: sex, max_gap: 1.5}\n"))
    [message] = errors(write_pipeline, MULTICLASS + gate.replace("max_gap: 0.1", "class: high, max_gap: 1.5"))
    assert message.startswith("evaluator.gates[0].max_gap") and "between 0 and 1" in message


def test_a_log_label_is_for_regression_and_objectives_follow_the_task(write_pipeline):
    assert load_config(write_pipeline(REGRESSION + "transform: {label: log}\n")).transform.label == "log"
    [message] = errors(write_pipeline, MULTICLASS + "transform: {label: log}\n")
    assert message.startswith("transform.label") and "only the regression task" in message
    [message] = errors(write_pipeline, REGRESSION + "tuner: {objective: val_auc}\n")
    assert message.startswith("tuner.objective") and "val_rmse, val_mae, val_loss" in message


def test_tree_models_take_tree_hyperparameters(write_pipeline):
    text = REGRESSION + ("trainer: {model: gradient_boosted_trees}\ntuner:\n  enabled: true\n  search_space:\n"
                         "    num_trees: {choices: [50, 100]}\n    max_depth: {min: 3, max: 8}\n")
    config = load_config(write_pipeline(text))
    assert config.trainer.hyperparameters() == {"num_trees": 200, "max_depth": 6, "shrinkage": 0.1, "min_examples": 5}
    found = errors(write_pipeline, text + "    hidden_units: {choices: [[8]]}\n")
    assert any(m.startswith("tuner.search_space.hidden_units") and "not a hyperparameter of trainer.model "
               "gradient_boosted_trees" in m for m in found)
    found = errors(write_pipeline, text.replace("enabled: true", "enabled: true\n  algorithm: hyperband"))
    assert any(m.startswith("tuner.algorithm") and "one pass" in m for m in found)
    forest = load_config(write_pipeline(REGRESSION + "trainer: {model: random_forest}\n"))
    assert forest.trainer.hyperparameters() == {"num_trees": 200, "max_depth": 12, "min_examples": 5}


def test_a_decision_threshold_outside_binary_is_a_warning(write_pipeline, capsys):
    from pipeline.cli import main

    path = write_pipeline(REGRESSION + "evaluator: {decision_thresholds: [0.3]}\n")
    assert main(["validate-config", path]) == 0
    assert "evaluator.decision_thresholds: decision thresholds apply to the binary task only" in capsys.readouterr().err
