"""Trainer: trains the tf_keras model on transformed examples and exports a servable SavedModel.

The SavedModel carries the transform graph: its ``serving_default`` signature takes serialized
*raw* tf.Examples, so serving needs no separate preprocessing and cannot skew from training.
A ``transform_features`` signature (raw -> transformed, label included) serves evaluation, and
``transform_label`` (raw -> the label as 0/1 only) lets TFMA read the label without the transformed
features shadowing the raw ones it slices by.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

from components.common import keras_model
from pipeline.config import SPLITS, Section, TrainerConfig
from pipeline.errors import DataError
from pipeline.specs import HYPERPARAMETERS_FILE, TRAINING_SUMMARY_FILE

SCORES = "scores"
LABEL_SIGNATURE = "transform_label"


def binary_label_key(label: str) -> str:
    """The name ``transform_label`` gives the 0/1 label."""
    return f"{label}_binary"


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the Trainer as a pipeline step; see ``run_trainer``. Returns its figures."""
    return run_trainer(inputs["transformed_examples"], inputs["transform_graph"], inputs["hyperparameters"],
                       outputs["model"], outputs["model_run"], config["trainer"], progress)


def load_hyperparameters(hyperparameters_dir: str) -> dict[str, Any]:
    with open(os.path.join(hyperparameters_dir, HYPERPARAMETERS_FILE), encoding="utf-8") as handle:
        return json.load(handle)["values"]


def run_trainer(transformed_dir: str, graph_dir: str, hyperparameters_dir: str, model_dir: str, logs_dir: str,
                trainer: TrainerConfig, progress: Callable[[str], None] = lambda _: None) -> dict:
    """Trains on the train split with early stopping on eval, then exports the serving model.

    Args:
        transformed_dir: Transform's transformed Examples artifact.
        graph_dir: Transform's TransformGraph artifact.
        hyperparameters_dir: The Tuner's HyperParameters artifact (the YAML's values when not tuning).
        model_dir: Output Model artifact: the SavedModel.
        logs_dir: Output ModelRun artifact: TensorBoard logs and ``training.json``.
        trainer: The ``trainer`` section (model type, epochs, patience, seed).
        progress: Receives a line per phase.

    Returns:
        Figures: eval AUC, loss and accuracy of the exported weights, epochs run, best epoch.

    Raises:
        DataError: The train split's label has one class only.
    """
    tf = keras_model.require_tf_keras()
    import tensorflow_transform as tft

    label, kinds = keras_model.load_feature_kinds(graph_dir)
    hp = load_hyperparameters(hyperparameters_dir)
    tft_output = tft.TFTransformOutput(graph_dir)
    spec = tft_output.transformed_feature_spec()
    files = {split: keras_model.split_files(transformed_dir, split) for split in SPLITS}
    _check_two_classes(files[SPLITS[0]], spec, label)
    tf.keras.utils.set_random_seed(trainer.seed)
    train = keras_model.dataset(files["train"], spec, label, kinds, int(hp["batch_size"]), shuffle_seed=trainer.seed)
    evaluation = keras_model.dataset(files["eval"], spec, label, kinds, 1024)
    model = keras_model.build_model(kinds, hp, trainer.model)
    progress(f"training a {trainer.model} model ({model.count_params():,} parameters) for up to "
             f"{trainer.epochs} epochs")
    board = tf.keras.callbacks.TensorBoard(log_dir=logs_dir, histogram_freq=0)
    history = keras_model.fit(model, train, evaluation, trainer.epochs, trainer.early_stopping_patience, [board])
    metrics = model.evaluate(evaluation, return_dict=True, verbose=0)
    best_epoch = int(max(range(len(history["val_auc"])), key=history["val_auc"].__getitem__)) + 1
    figures = {"eval_auc": round(float(metrics["auc"]), 4), "eval_loss": round(float(metrics["loss"]), 4),
               "eval_binary_accuracy": round(float(metrics["binary_accuracy"]), 4),
               "epochs": len(history["loss"]), "best_epoch": best_epoch,
               # recorded with the execution in ML Metadata: which hyperparameters made this model
               "hyperparameters": json.dumps(hp, sort_keys=True)}
    progress("exporting the serving model")
    export_serving_model(model, tft_output, label, kinds, model_dir)
    with open(os.path.join(logs_dir, TRAINING_SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump({"hyperparameters": hp, "figures": figures,
                   "history": {k: [round(float(v), 6) for v in values] for k, values in history.items()}},
                  handle, indent=2)
    return figures


def _check_two_classes(files: list[str], spec: dict, label: str) -> None:
    import numpy as np
    import tensorflow as tf

    data = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096).map(
        lambda r: tf.io.parse_example(r, {label: spec[label]})[label])
    counts = np.bincount(np.concatenate([b.numpy().ravel() for b in data]).astype(np.int64), minlength=2)
    if counts[0] == 0 or counts[1] == 0:
        which = "positive" if counts[1] else "negative"
        raise DataError(f"Trainer: the train split's label '{label}' has one class only ({counts.sum():,} {which} "
                        "examples); expected both classes (check features.positive and the data)")


def export_serving_model(model, tft_output, label: str, kinds: dict, model_dir: str) -> None:
    """Saves ``model`` with the transform graph inside, as a SavedModel with two signatures.

    ``serving_default``: ``examples`` (serialized raw tf.Example, no label needed) -> ``scores``
    (probability of the positive class, [batch, 1]). ``transform_features``: ``examples`` (raw,
    with the label) -> transformed features, the label as 0/1. ``transform_label``: ``examples`` ->
    ``<label>_binary`` only.
    """
    import tensorflow as tf

    model.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    serving_spec = {name: value for name, value in raw_spec.items() if name != label}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        transformed = model.tft_layer(tf.io.parse_example(examples, serving_spec))
        return {SCORES: tf.reshape(model(keras_model.model_inputs(transformed, kinds)), [-1, 1])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_label(examples):
        return {binary_label_key(label): transform_features(examples)[label]}

    model.save(model_dir, save_format="tf", signatures={"serving_default": serve,
                                                         "transform_features": transform_features,
                                                         LABEL_SIGNATURE: transform_label})
