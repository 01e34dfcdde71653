"""The Trainer's core on a few hundred transformed rows: the exported model scores raw examples,
training.json holds the figures it returned, the seed makes runs repeatable, and the Tuner's
hyperparameters file decides the model that is built."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pipeline.specs import HYPERPARAMETERS_FILE, TRAINING_SUMMARY_FILE
from tests.components.conftest import read_json, run_trainer_core, trainer_config

pytestmark = pytest.mark.slow


def _labels(records: list[bytes]) -> np.ndarray:
    import tensorflow as tf

    return np.array([tf.train.Example.FromString(r).features.feature["approved"].bytes_list.value[0] == b"yes"
                     for r in records], dtype=int)


def test_execute_exports_a_model_whose_serving_signature_scores_raw_examples(trained_model, served_eval):
    from sklearn.metrics import roc_auc_score

    records, scores = served_eval["records"], served_eval["scores"]
    labels = _labels(records)
    assert 0 < labels.sum() < len(labels)  # both classes, or an AUC means nothing
    assert scores.shape == (len(records), 1)
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    assert np.unique(scores.round(6)).size > 1  # it tells examples apart
    # the served model is the one the Trainer reported on: the raw eval split scores to its eval AUC
    # (Keras' AUC is interpolated over 200 thresholds, so not to the last digit)
    assert roc_auc_score(labels, scores.ravel()) == pytest.approx(trained_model.figures["eval_auc"], abs=0.02)
    assert trained_model.figures["eval_auc"] > 0.5


def test_training_json_holds_the_returned_figures_of_the_best_epochs_weights(trained_model):
    summary = read_json(os.path.join(trained_model.model_run, TRAINING_SUMMARY_FILE))
    figures = trained_model.figures
    assert summary["figures"] == figures
    assert set(figures) >= {"eval_auc", "eval_loss", "eval_binary_accuracy", "epochs", "best_epoch"}
    hyperparameters = read_json(os.path.join(trained_model.hyperparameters, HYPERPARAMETERS_FILE))["values"]
    assert summary["hyperparameters"] == hyperparameters == json.loads(figures["hyperparameters"])
    history = summary["history"]
    assert 1 <= figures["epochs"] <= trainer_config().epochs
    assert all(len(series) == figures["epochs"] for series in history.values())
    assert figures["best_epoch"] == int(np.argmax(history["val_auc"])) + 1
    # early stopping restores the best epoch's weights, and those are what the figures describe
    best = figures["best_epoch"] - 1
    assert figures["eval_auc"] == pytest.approx(history["val_auc"][best], abs=1e-4)
    assert figures["eval_loss"] == pytest.approx(history["val_loss"][best], abs=1e-4)
    assert any("training a wide_and_deep model" in line for line in trained_model.progress)


@pytest.fixture
def built_models(monkeypatch) -> list:
    """Records the model each Trainer run would export, and skips the export (some 20 s a run; the
    export itself is tested on the session's model)."""
    from components.trainer import core

    models: list = []
    monkeypatch.setattr(core, "export_serving_model", lambda model, *_, **__: models.append(model))
    return models


def test_the_same_config_trains_the_same_model_again(trained_model, built_models, tmp_path):
    import tensorflow as tf

    outputs, figures, _ = run_trainer_core(trained_model.pipeline, trained_model.hyperparameters, str(tmp_path))
    assert figures == trained_model.figures
    first = read_json(os.path.join(trained_model.model_run, TRAINING_SUMMARY_FILE))["history"]
    assert read_json(os.path.join(outputs["model_run"], TRAINING_SUMMARY_FILE))["history"] == first
    [again] = built_models
    exported = tf.keras.models.load_model(trained_model.model)
    trained = [layer for layer in again.layers if layer.weights]
    assert any(layer.name.startswith("hidden_") for layer in trained)
    for layer in trained:
        for mine, theirs in zip(layer.get_weights(), exported.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs, err_msg=layer.name)


def test_the_hyperparameters_file_decides_the_model_not_the_trainer_section(trained_model, built_models, tmp_path):
    from components.tuner.core import write_hyperparameters

    chosen = {"hidden_units": [12], "embedding_dim": 3, "dropout": 0.25, "learning_rate": 0.004, "batch_size": 64}
    section = trainer_config()
    assert all(getattr(section, name) != value for name, value in chosen.items())
    folder = str(tmp_path / "hyperparameters")
    write_hyperparameters(folder, chosen, source="random search, trial 2")
    outputs, figures, _ = run_trainer_core(trained_model.pipeline, folder, str(tmp_path / "trainer"))
    assert read_json(os.path.join(outputs["model_run"], TRAINING_SUMMARY_FILE))["hyperparameters"] == chosen
    assert json.loads(figures["hyperparameters"]) == chosen
    [model] = built_models
    layers = {layer.name: layer for layer in model.layers}
    assert [layer.units for layer in model.layers if layer.name.startswith("hidden_")] == [12]
    assert {layer.output_dim for layer in model.layers if layer.name.endswith("_embedding")} == {3}
    assert layers["dropout_0"].rate == pytest.approx(0.25)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.004)
