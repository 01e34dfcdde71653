"""The Evaluator on models the Trainer trained (a multiclass and a regression one, the generated
credit data of ``generate-data --task``, a few hundred rows through every core before it): TFMA's
figures against numpy on what the exported SavedModel serves for the raw eval split."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pipeline.config import BeamConfig, EvaluatorConfig, FeaturesConfig
from pipeline.specs import BLESSING_FILE, EVALUATION_SUMMARY_FILE
from tests.components.conftest import (CATEGORICAL, NUMERIC, make_outputs, raw_records, read_json, run_data_half,
                                      trainer_config)

pytestmark = pytest.mark.slow

ROWS, SEED = 700, 5
LABELS = {"multiclass": "risk_tier", "regression": "interest_rate"}
GATES = {
    "multiclass": [{"metric": "accuracy", "min": 0.99},
                   {"metric": "macro_f1", "min": 0.05, "per": ["sex"]},
                   {"fairness": "false_negative_rate", "feature": "sex", "class": "low", "max_gap": 0.9}],
    "regression": [{"metric": "rmse", "max": 0.01},
                   {"metric": "r2", "min": -100, "per": ["sex"]},
                   {"fairness": "mae", "feature": "sex", "max_gap": 100}],
}


def _trained(task: str, root) -> dict:
    """ExampleGen -> StatisticsGen -> SchemaGen -> Transform -> Tuner (off) -> Trainer -> Evaluator."""
    from components.evaluator.core import execute as evaluator
    from components.trainer.core import execute as trainer
    from components.tuner.core import execute as tuner
    from pipeline.config import DataConfig, TransformConfig, TunerConfig, ValidationConfig
    from pipeline.datagen import generate

    source = str(root / "credit.csv.gz")
    generate(source, rows=ROWS, seed=SEED, task=task)
    features = FeaturesConfig(label=LABELS[task], task=task, numeric=NUMERIC, categorical=CATEGORICAL,
                              sensitive=["sex", "race"])
    evaluator_config = EvaluatorConfig.model_validate({"min_slice_size": 15, "gates": GATES[task]})
    config = {"data": DataConfig.model_validate({"source": source, "split": {"key": "applicant_id"}}),
              "features": features, "beam": BeamConfig(), "validation": ValidationConfig(),
              "transform": TransformConfig.model_validate({"label": "log" if task == "regression" else "none"}),
              "evaluator": evaluator_config, "tuner": TunerConfig(), "trainer": trainer_config()}
    examples, transformed = run_data_half(root, config)
    tuned = make_outputs(str(root / "Tuner"), ("best_hyperparameters",), {"trials": "trials.md"})
    data = {"transformed_examples": transformed["transformed_examples"],
            "transform_graph": transformed["transform_graph"]}
    tuner(data, tuned, config)
    model = make_outputs(str(root / "Trainer"), ("model", "model_run"))
    trainer({**data, "hyperparameters": tuned["best_hyperparameters"]}, model, config)
    outputs = make_outputs(str(root / "Evaluator"), ("evaluation", "blessing"),
                           {"evaluation_report": "evaluation.md", "fairness_report": "fairness_report.html"})
    figures = evaluator({"examples": examples, "model": model["model"]}, outputs, config)
    return {"figures": figures, "examples": examples, "model": model["model"], "features": features,
            "summary": read_json(os.path.join(outputs["evaluation"], EVALUATION_SUMMARY_FILE)),
            "blessing": read_json(os.path.join(outputs["blessing"], BLESSING_FILE))}


def _served(result: dict) -> dict:
    """The exported model's serving_default and transform_label on the raw eval split."""
    import tensorflow as tf

    from components.common import tasks

    records = tf.constant(raw_records(result["examples"], "eval"))
    model = tf.saved_model.load(result["model"])
    served = {k: v.numpy() for k, v in model.signatures["serving_default"](examples=records).items()}
    task, label = result["features"].task, result["features"].label
    labels = model.signatures[tasks.LABEL_SIGNATURE](examples=records)[tasks.label_key(label, task)].numpy()
    sex = [tf.train.Example.FromString(r).features.feature["sex"].bytes_list.value for r in records.numpy()]
    return {**served, "label": labels, "sex": np.array([v[0].decode() if v else "" for v in sex])}


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> dict:
    result = _trained("multiclass", tmp_path_factory.mktemp("trained-multiclass"))
    return {**result, "served": _served(result)}


@pytest.fixture(scope="module")
def regression(tmp_path_factory) -> dict:
    result = _trained("regression", tmp_path_factory.mktemp("trained-regression"))
    return {**result, "served": _served(result)}


def test_a_trained_multiclass_model_is_evaluated_as_it_serves(multiclass):
    served, summary = multiclass["served"], multiclass["summary"]
    classes = [c.decode() for c in served["classes"][0]]
    assert summary["classes"] == classes
    labels, predicted = served["label"], served["scores"].argmax(axis=1)
    overall = summary["slices"][0]["metrics"]
    assert summary["slices"][0]["size"] == len(labels)
    assert overall["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
    matrix = [[int(np.sum((labels == a) & (predicted == p))) for p in range(len(classes))]
              for a in range(len(classes))]
    assert summary["confusion_matrix"] == matrix
    for c, name in enumerate(classes):
        if np.any(predicted == c):
            precision = np.sum((predicted == c) & (labels == c)) / np.sum(predicted == c)
            assert overall[f"precision[{name}]"] == pytest.approx(precision, abs=1e-9), name
        assert overall[f"recall[{name}]"] == pytest.approx(np.sum((predicted == c) & (labels == c))
                                                           / np.sum(labels == c), abs=1e-9), name
    log_loss = -np.mean(np.log(np.clip(served["scores"][np.arange(len(labels)), labels], 1e-7, 1)))
    assert overall["log_loss"] == pytest.approx(log_loss, abs=1e-4)
    figures = multiclass["figures"]
    assert figures["eval_accuracy"] == round(overall["accuracy"], 4) and figures["blessed"] is False
    [accuracy] = [c for c in multiclass["blessing"]["blocking"] if c["gate"].startswith("gates[0]")]
    assert (accuracy["slice"], accuracy["bound"]) == ("overall", ">= 0.99")
    fnr = [c for c in multiclass["blessing"]["checks"] if c["gate"].startswith("gates[2]")]
    assert any(c["metric"] == "false_negative_rate[low] gap" for c in fnr)


def test_a_trained_regression_model_is_evaluated_in_the_labels_units(regression):
    served, overall = regression["served"], regression["summary"]["slices"][0]["metrics"]
    labels, predictions = served["label"].astype(np.float64), served["predictions"][:, 0].astype(np.float64)
    assert 1.0 < labels.mean() < 100  # percent: the raw label, not log(1 + rate)
    error = labels - predictions
    assert overall["rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=1e-4)
    assert overall["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-4)
    assert overall["r2"] == pytest.approx(1 - np.sum(error ** 2) / np.sum((labels - labels.mean()) ** 2), rel=1e-4)
    assert overall["mean_prediction"] == pytest.approx(predictions.mean(), rel=1e-5)
    sex = served["sex"]
    rows = {r["slice"]: r["metrics"] for r in regression["summary"]["slices"]}
    for value in ("female", "male"):
        chosen = sex == value
        r2 = 1 - np.sum(error[chosen] ** 2) / np.sum((labels[chosen] - labels[chosen].mean()) ** 2)
        assert rows[f"sex={value}"]["r2"] == pytest.approx(r2, rel=1e-4), value
    assert sum(b["examples"] for b in regression["summary"]["calibration_plot"]) == len(labels)
    figures = regression["figures"]
    assert figures["eval_r2"] == round(overall["r2"], 4) and figures["blessed"] is False
    [rmse] = regression["blessing"]["blocking"]
    assert (rmse["gate"], rmse["slice"], rmse["bound"]) == ("gates[0] rmse max 0.01 overall", "overall", "<= 0.01")
    assert rmse["value"] == pytest.approx(overall["rmse"])
