"""Tuner and Trainer on small generated data, through the local runner: a tuned run with
cross-validation, the exported model's signatures, repeatability and a one-class label."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.lineage import Lineage
from pipeline.loader import load_config
from pipeline.runner import pipeline_dir, run_pipeline
from tests.conftest import pipeline_yaml

pytestmark = pytest.mark.slow

TUNED = """\
validation:
  drift: {categorical_linf: 0.3, numeric_jsd: 0.3}
tuner:
  enabled: true
  algorithm: random
  max_trials: 2
  epochs: 2
  cv_folds: 2
  search_space:
    learning_rate: {min: 0.001, max: 0.05, sampling: log}
    hidden_units: {choices: [[16], [32, 16]]}
trainer:
  epochs: 3
  batch_size: 64
"""


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, credit_csv):
    folder = tmp_path_factory.mktemp("tuned")
    path = folder / "pipeline.yaml"
    path.write_text(pipeline_yaml(credit_csv, extra=TUNED))
    lines: list[str] = []
    config = load_config(str(path))
    result = run_pipeline(config, str(path), echo=lines.append)
    return config, result, lines


def _outputs(result, component):
    return result.outcome(component).outputs


def test_a_tuned_run_reports_each_trials_mean_and_spread_over_folds(tuned_run):
    _, result, lines = tuned_run
    trial_lines = [line for line in lines if "Tuner: trial" in line]
    assert len(trial_lines) == 2 and all("mean of 2 folds, sd" in line for line in trial_lines)
    figures = result.outcome("Tuner").figures
    assert figures["tuned"] is True and figures["trials"] == 2 and "best_spread" in figures
    table = open(os.path.join(_outputs(result, "Tuner")["trials"], "trials.md")).read()
    assert "2-fold cross-validation" in table and "spread (sd over folds)" in table
    assert table.count("| completed |") == 2


def test_the_best_trials_hyperparameters_reach_the_trainer_and_its_lineage(tuned_run):
    config, result, _ = tuned_run
    best = json.load(open(os.path.join(_outputs(result, "Tuner")["best_hyperparameters"], "hyperparameters.json")))
    assert best["source"].startswith("random search, trial ")
    assert best["values"]["hidden_units"] in ([16], [32, 16]) and 0.001 <= best["values"]["learning_rate"] <= 0.05
    assert best["values"]["batch_size"] == 64  # not searched: the trainer section's value
    lineage = Lineage(pipeline_dir(config))
    run = lineage.run_context(config.pipeline.name, result.run_id)
    [trainer] = [e for e in lineage.executions_of_run(run)
                 if lineage.store.get_execution_types_by_id([e.type_id])[0].name == "sluiceway.Trainer"]
    assert json.loads(trainer.custom_properties["hyperparameters"].string_value) == best["values"]
    assert 0.5 < trainer.custom_properties["eval_auc"].double_value <= 1.0


def test_serving_default_on_raw_examples_gives_the_training_paths_scores(tuned_run):
    import tensorflow as tf
    import tensorflow_transform as tft

    from components.common import keras_model
    from components.common.artifacts import split_file
    from components.common.tfrecord import read_records

    _, result, _ = tuned_run
    model_dir = _outputs(result, "Trainer")["model"]
    graph = _outputs(result, "Transform")["transform_graph"]
    raw = list(read_records(split_file(_outputs(result, "ExampleGen")["examples"], "eval")))
    served = tf.saved_model.load(model_dir).signatures["serving_default"](examples=tf.constant(raw))["scores"]
    # the training path: Beam-transformed eval examples straight into the Keras model
    label, kinds = keras_model.load_feature_kinds(graph)
    spec = tft.TFTransformOutput(graph).transformed_feature_spec()
    data = keras_model.dataset(keras_model.split_files(_outputs(result, "Transform")["transformed_examples"], "eval"),
                               spec, label, kinds, 512)
    keras = tf.keras.models.load_model(model_dir)
    trained = np.concatenate([keras.predict(features, verbose=0).ravel() for features, _ in data])
    assert served.shape == (len(raw), 1)
    np.testing.assert_allclose(served.numpy().ravel(), trained, atol=1e-5)


def test_serving_takes_examples_with_gaps_and_unseen_categories(tuned_run):
    import tensorflow as tf

    _, result, _ = tuned_run
    serve = tf.saved_model.load(_outputs(result, "Trainer")["model"]).signatures["serving_default"]

    def example(**values):
        feature = {k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) if isinstance(v, float)
                   else tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) for k, v in values.items()}
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    scores = serve(examples=tf.constant([example(), example(age=40.0, purpose="crypto", region="overseas"),
                                         example(credit_score=800.0, income=90000.0, sex="female")]))["scores"]
    assert np.all(np.isfinite(scores.numpy())) and np.all((scores.numpy() >= 0) & (scores.numpy() <= 1))
    transformed = tf.saved_model.load(_outputs(result, "Trainer")["model"]).signatures["transform_features"]
    out = transformed(examples=tf.constant([example(approved="yes", sex="male"), example(approved="no")]))
    assert out["approved"].numpy().tolist() == [1, 0]


def test_the_same_seed_trains_the_same_model_and_logs_for_tensorboard(tuned_run, tmp_path):
    from components.trainer.core import run_trainer

    config, result, _ = tuned_run
    transform = _outputs(result, "Transform")
    figures = run_trainer(transform["transformed_examples"], transform["transform_graph"],
                          _outputs(result, "Tuner")["best_hyperparameters"], str(tmp_path / "model"),
                          str(tmp_path / "logs"), config.trainer)
    first = result.outcome("Trainer").figures
    assert figures["eval_auc"] == first["eval_auc"] and figures["eval_loss"] == first["eval_loss"]
    assert os.listdir(tmp_path / "logs" / "train") and os.path.exists(tmp_path / "logs" / "training.json")


def test_a_train_split_with_one_class_is_a_clear_error(tuned_run, tmp_path):
    import tensorflow as tf

    from components.common.tfrecord import TFRecordWriter
    from components.trainer.core import run_trainer

    config, result, _ = tuned_run
    transform = _outputs(result, "Transform")
    only_positive = tmp_path / "transformed"
    for split in ("train", "eval", "test"):
        source = os.path.join(transform["transformed_examples"], f"Split-{split}", "data-00000-of-00001.tfrecord.gz")
        records = [r.numpy() for r in tf.data.TFRecordDataset(source, compression_type="GZIP")
                   if tf.train.Example.FromString(r.numpy()).features.feature["approved"].int64_list.value[0] == 1]
        os.makedirs(only_positive / f"Split-{split}")
        with TFRecordWriter(str(only_positive / f"Split-{split}" / "data-00000-of-00001.tfrecord.gz")) as writer:
            writer.write_many(records)
    with pytest.raises(DataError, match="label 'approved' has one class only .* positive examples"):
        run_trainer(str(only_positive), transform["transform_graph"], _outputs(result, "Tuner")["best_hyperparameters"],
                    str(tmp_path / "model"), str(tmp_path / "logs"), config.trainer)


def test_the_evaluator_reports_metrics_overall_and_per_raw_slice(tuned_run):
    import tensorflow_model_analysis as tfma

    _, result, _ = tuned_run
    evaluation = _outputs(result, "Evaluator")["evaluation"]
    summary = json.load(open(os.path.join(evaluation, "metrics.json")))
    rows = {row["slice"]: row for row in summary["slices"]}
    assert summary["slices"][0]["slice"] == "overall"
    # default slices: each sensitive feature and their cross, by raw values (not vocabulary ids)
    assert {"sex=female", "sex=male", "race=group_a"} <= set(rows)
    assert any(name.startswith("race=group_a, sex=") for name in rows)
    overall = rows["overall"]
    assert overall["size"] == result.outcome("ExampleGen").figures["rows_eval"]
    # the same model on the same split: TFMA's AUC agrees with the Trainer's Keras AUC
    assert overall["metrics"]["auc"] == pytest.approx(result.outcome("Trainer").figures["eval_auc"], abs=2e-3)
    for name in ("accuracy", "precision", "recall", "f1", "calibration", "positive_rate@0.5",
                 "false_positive_rate@0.5", "false_negative_rate@0.5", "true_positive_rate@0.5"):
        assert name in overall["metrics"], name
    assert rows["sex=female"]["size"] + rows["sex=male"]["size"] == overall["size"]
    # TFMA's own output stays readable with TFMA (and so by the Fairness Indicators widget)
    assert len(tfma.load_eval_result(evaluation).slicing_metrics) == len(rows)


def test_slices_below_min_slice_size_are_reported_as_insufficient_data(tuned_run):
    _, result, _ = tuned_run
    evaluation = _outputs(result, "Evaluator")
    rows = json.load(open(os.path.join(evaluation["evaluation"], "metrics.json")))["slices"]
    small = [r for r in rows if r["size"] < 30]
    assert small, "expected some race x sex slice under 30 examples in 4,000 rows"
    assert all(r["insufficient"] for r in small) and not any(r["insufficient"] for r in rows if r["size"] >= 30)
    report = open(os.path.join(evaluation["evaluation_report"], "evaluation.md")).read()
    assert report.count("(insufficient data)") == len(small)
    assert result.outcome("Evaluator").figures["insufficient_slices"] == len(small)
