"""Trainer: trains the model on transformed examples and exports a servable SavedModel.

The SavedModel carries the transform graph: its ``serving_default`` signature takes serialized
*raw* tf.Examples, so serving needs no separate preprocessing and cannot skew from training.
A ``transform_features`` signature (raw -> transformed, label included) serves evaluation, and
``transform_label`` (raw -> the label only) lets TFMA read the label without the transformed
features shadowing the raw ones it slices by. What each signature returns per task is
``components.common.tasks``'s contract.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

from components.common import keras_model, tasks
from pipeline.config import SPLITS, TREE_MODELS, Section, TrainerConfig
from pipeline.errors import DataError
from pipeline.specs import HYPERPARAMETERS_FILE, TRAINING_SUMMARY_FILE

SCORES = tasks.SCORES
LABEL_SIGNATURE = tasks.LABEL_SIGNATURE
EVAL_BATCH = 1024


def binary_label_key(label: str) -> str:
    """The name ``transform_label`` gives the 0/1 label of a binary task."""
    return tasks.label_key(label, tasks.BINARY)


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

    The task (binary, multiclass, regression) and the label's classes come from what Transform
    recorded (``feature_kinds.json``).

    Args:
        transformed_dir: Transform's transformed Examples artifact.
        graph_dir: Transform's TransformGraph artifact.
        hyperparameters_dir: The Tuner's HyperParameters artifact (the YAML's values when not tuning).
        model_dir: Output Model artifact: the SavedModel.
        logs_dir: Output ModelRun artifact: TensorBoard logs and ``training.json``.
        trainer: The ``trainer`` section (model type, epochs, patience, seed).
        progress: Receives a line per phase.

    Returns:
        Figures on the eval split, by task (binary: AUC, loss, accuracy; multiclass: accuracy,
        loss; regression: RMSE, MAE, in the units trained on), epochs run and best epoch (tree
        models: trees kept), and the hyperparameters.

    Raises:
        DataError: The train split's label has one class (one value) only, or no value in some rows.
    """
    tf = keras_model.require_tf_keras()
    import tensorflow_transform as tft

    info = keras_model.load_label_info(graph_dir)
    label, task, classes = info["label"], info["task"], info["classes"]
    _, kinds = keras_model.load_feature_kinds(graph_dir)
    hp = load_hyperparameters(hyperparameters_dir)
    tft_output = tft.TFTransformOutput(graph_dir)
    spec = tft_output.transformed_feature_spec()
    files = {split: keras_model.split_files(transformed_dir, split) for split in SPLITS}
    label_stats = check_label(files[SPLITS[0]], spec, label, task, classes)
    tf.keras.utils.set_random_seed(trainer.seed)
    batch_size = int(hp.get("batch_size", trainer.batch_size))
    train = keras_model.dataset(files["train"], spec, label, kinds, batch_size, shuffle_seed=trainer.seed)
    evaluation = keras_model.dataset(files["eval"], spec, label, kinds, EVAL_BATCH)
    monitor = keras_model.MONITOR[task][0]
    num_classes = len(classes) if classes else None
    if trainer.model in TREE_MODELS:
        from components.common import tree_model

        model = tree_model.build_tree_model(kinds, hp, trainer.model, task, num_classes=num_classes,
                                            seed=trainer.seed)
        # read once, in order, in large batches (shuffling only costs a tree model time)
        train = tree_model.dataset(files["train"], spec, label, kinds)
        evaluation = tree_model.dataset(files["eval"], spec, label, kinds)
        progress(f"training a {trainer.model} model ({task}, up to {hp['num_trees']} trees, depth "
                 f"{hp['max_depth']})")
        history = tree_model.fit_tree(model, train, evaluation, task, progress=progress)
        figures: dict[str, Any] = {"trees": int(history.get("trees", [hp["num_trees"]])[-1])}
    else:
        model = keras_model.build_model(kinds, hp, trainer.model, task, num_classes=num_classes,
                                        label_stats=label_stats)
        progress(f"training a {trainer.model} model ({task}, {model.count_params():,} parameters) for up to "
                 f"{trainer.epochs} epochs")
        board = tf.keras.callbacks.TensorBoard(log_dir=logs_dir, histogram_freq=0)
        history = keras_model.fit(model, train, evaluation, trainer.epochs, trainer.early_stopping_patience, [board],
                                  monitor=monitor)
        series = history[monitor]
        figures = {"epochs": len(history["loss"]),
                   "best_epoch": series.index(keras_model.best_of(series, monitor)) + 1}
    for name in _FIGURES[task]:
        figures[f"eval_{name}"] = round(float(history[f"val_{name}"][-1 if trainer.model in TREE_MODELS else
                                                                      figures["best_epoch"] - 1]), 4)
    shown = _FIGURES[task][0]
    figures["validation"] = f"{trainer.model}, eval {_NAMES.get(shown, shown)} {figures[f'eval_{shown}']:.4f}"
    if info["label_transform"] == "log":
        figures["validation"] += " of log(1 + label)"  # what the model trained on; the Evaluator's are in units
    # recorded with the execution in ML Metadata: which hyperparameters made this model
    figures["hyperparameters"] = json.dumps(hp, sort_keys=True)
    progress("exporting the serving model")
    export_serving_model(model, tft_output, label, kinds, model_dir, task=task, classes=classes,
                         label_transform=info["label_transform"])
    with open(os.path.join(logs_dir, TRAINING_SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump({"task": task, "model": trainer.model, "hyperparameters": hp, "figures": figures,
                   "history": {k: [round(float(v), 6) for v in values] for k, values in history.items()}},
                  handle, indent=2)
    return figures


_NAMES = {"auc": "AUC", "rmse": "RMSE", "accuracy": "accuracy"}
# The eval-split figures the Trainer reports per task (the validation metrics of the best epoch).
_FIGURES = {"binary": ("auc", "loss", "binary_accuracy"), "multiclass": ("accuracy", "loss"),
            "regression": ("rmse", "mae")}


def check_label(files: list[str], spec: dict, label: str, task: str,
                classes: list[str] | None = None) -> tuple[float, float] | None:
    """Checks the train split's label can be learnt from, for ``task``.

    Returns:
        Regression: the label's mean and standard deviation (in the units trained on); else ``None``.

    Raises:
        DataError: One class only (binary, multiclass), one value only or rows without a label
            (regression).
    """
    import numpy as np
    import tensorflow as tf

    data = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096).map(
        lambda r: tf.io.parse_example(r, {label: spec[label]})[label])
    values = np.concatenate([b.numpy().ravel() for b in data])
    if task == tasks.REGRESSION:
        missing = int(np.isnan(values).sum())
        if missing:
            raise DataError(f"Trainer: {missing:,} of {values.size:,} train examples have no value of the label "
                            f"'{label}'; expected a number in every row")
        if np.unique(values).size < 2:
            raise DataError(f"Trainer: the train split's label '{label}' takes one value only ({values[0]:g} in "
                            f"{values.size:,} examples); expected a label that varies")
        return float(values.mean()), float(values.std())
    if task == tasks.MULTICLASS:
        counts = np.bincount(values[values >= 0].astype(np.int64), minlength=len(classes or []))
        present = [c for c, n in zip(classes or [], counts) if n]
        if len(present) < 2:
            raise DataError(f"Trainer: the train split's label '{label}' has one class only "
                            f"({', '.join(present) or 'none'}, {values.size:,} examples); expected at least two "
                            "classes (or set features.task)")
        return None
    counts = np.bincount(values.astype(np.int64), minlength=2)
    if counts[0] == 0 or counts[1] == 0:
        which = "positive" if counts[1] else "negative"
        raise DataError(f"Trainer: the train split's label '{label}' has one class only ({counts.sum():,} {which} "
                        "examples); expected both classes (check features.positive and the data)")
    return None


def export_serving_model(model, tft_output, label: str, kinds: dict, model_dir: str, task: str = tasks.BINARY,
                         classes: list[str] | None = None, label_transform: str = "none") -> None:
    """Saves ``model`` with the transform graph inside, as a SavedModel with the three signatures
    of ``components.common.tasks`` (raw serialized tf.Examples in, ``examples``).

    ``serving_default`` (no label needed): binary ``scores`` (probability of the positive class,
    [batch, 1]); multiclass ``scores`` (each class's probability, [batch, n]) and ``classes`` (their
    names); regression ``predictions`` ([batch, 1], in the label's units: a ``log`` label is turned
    back with expm1). ``transform_features``: raw (with the label) -> transformed features.
    ``transform_label``: the label only, under ``tasks.label_key``.
    """
    import tensorflow as tf

    from components.transform.preprocessing import _dense

    model.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    serving_spec = {name: value for name, value in raw_spec.items() if name != label}
    class_names = tf.constant(classes or [], dtype=tf.string)

    def predict(examples):
        transformed = model.tft_layer(tf.io.parse_example(examples, serving_spec))
        return model(keras_model.model_inputs(transformed, kinds))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        output = predict(examples)
        if task == tasks.MULTICLASS:
            probabilities = tf.reshape(output, [-1, len(classes)])
            return {tasks.SCORES: probabilities,
                    tasks.CLASSES: tf.tile(class_names[tf.newaxis, :], [tf.shape(probabilities)[0], 1])}
        output = tf.reshape(output, [-1, 1])
        if task == tasks.REGRESSION:
            return {tasks.PREDICTIONS: tf.math.expm1(output) if label_transform == "log" else output}
        return {tasks.SCORES: output}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_label(examples):
        if task == tasks.REGRESSION:  # the raw value: in the label's units whatever the model trained on
            raw = tf.io.parse_example(examples, {label: raw_spec[label]})[label]
            if isinstance(raw, tf.sparse.SparseTensor):
                raw = tf.sparse.SparseTensor(raw.indices, tf.cast(raw.values, tf.float32), raw.dense_shape)
            else:
                raw = tf.cast(raw, tf.float32)
            return {tasks.label_key(label, task): _dense(raw, float("nan"))}
        return {tasks.label_key(label, task): transform_features(examples)[label]}

    model.save(model_dir, save_format="tf", signatures={"serving_default": serve,
                                                         tasks.TRANSFORM_SIGNATURE: transform_features,
                                                         LABEL_SIGNATURE: transform_label})
