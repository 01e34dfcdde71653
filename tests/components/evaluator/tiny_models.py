"""Small SavedModels that follow the model contract of ``components.common.tasks`` exactly, and
the raw examples they score, so the Evaluator's tests know every label and prediction.

Each model has the three signatures taking serialized raw tf.Examples (``examples``):
``serving_default`` (binary/multiclass ``scores``, multiclass ``classes`` too, regression
``predictions``), ``transform_features`` and ``transform_label`` (the label under
``tasks.label_key``). Their outputs are fixed functions of one numeric feature ``x`` and a
categorical ``group``, written out below, so a test can compute every figure by hand.
"""

from __future__ import annotations

import os

import numpy as np

from components.common import tasks

CLASSES = ("low", "mid", "high")  # class-id order, as a label vocabulary would list them
MULTICLASS_LABEL, REGRESSION_LABEL = "tier", "rate"


def multiclass_scores(x: np.ndarray, group: np.ndarray, shift: float = 0.0) -> np.ndarray:
    """The class probabilities the multiclass model gives: a softmax of (-2x, 0.3, 2x + shift
    for group ``b``) (shift: how far group b's examples lean to ``high``)."""
    logits = np.stack([-2.0 * x, np.full_like(x, 0.3), 2.0 * x + shift * (group == "b")], axis=1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def regression_predictions(x: np.ndarray, group: np.ndarray, slope: float = 3.0, offset: float = 0.0) -> np.ndarray:
    """The regression model's predictions: ``slope * x + 10`` (+ ``offset`` for group ``b``)."""
    return slope * x + 10.0 + offset * (group == "b")


def write_examples(path: str, columns: dict[str, list]) -> list[bytes]:
    """Writes raw tf.Examples (one per row of ``columns``; ``None`` leaves a value out) to a TFRecord
    file and returns them serialized."""
    import tensorflow as tf

    records = []
    names = list(columns)
    for values in zip(*columns.values()):
        feature = {}
        for name, value in zip(names, values):
            if value is None:
                continue
            if isinstance(value, str):
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
            else:
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        records.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with tf.io.TFRecordWriter(path, options="GZIP" if path.endswith(".gz") else None) as writer:
        for record in records:
            writer.write(record)
    return records


def _save(model, model_dir: str) -> str:
    """Saves a model with the contract's three signatures (its ``serve``, ``transform_features``
    and ``transform_label`` functions)."""
    import tensorflow as tf

    tf.saved_model.save(model, model_dir, signatures={
        "serving_default": model.serve, tasks.TRANSFORM_SIGNATURE: model.transform_features,
        tasks.LABEL_SIGNATURE: model.transform_label})
    return model_dir


def _raw_spec(label: str, label_dtype):
    import tensorflow as tf

    return ({"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
             "group": tf.io.FixedLenFeature([1], tf.string, default_value=[""])},
            {label: tf.io.VarLenFeature(label_dtype)})


def save_multiclass_model(model_dir: str, shift: float = 0.0, classes: tuple[str, ...] = CLASSES,
                          label: str = MULTICLASS_LABEL) -> str:
    """A multiclass model over ``classes`` (three: the scores above), its label vocabulary under
    ``assets/`` as ``tasks.label_vocabulary_file(label)``."""
    import tensorflow as tf

    assert len(classes) == 3, "the scores are written for three classes"
    scratch = os.path.join(os.path.dirname(os.path.abspath(model_dir)), f".vocabulary-{os.path.basename(model_dir)}")
    os.makedirs(scratch, exist_ok=True)
    vocabulary = os.path.join(scratch, tasks.label_vocabulary_file(label))
    with open(vocabulary, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{c}\n" for c in classes))
    features, label_spec = _raw_spec(label, tf.string)

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.vocabulary = tf.saved_model.Asset(vocabulary)
            self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                self.vocabulary, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER), default_value=-1)
            self.classes = tf.constant(list(classes))

        def _features(self, examples):
            parsed = tf.io.parse_example(examples, features)
            return parsed["x"][:, 0], parsed["group"][:, 0]

        def _class_id(self, examples):
            raw = tf.io.parse_example(examples, label_spec)[label]
            dense = tf.reshape(tf.sparse.to_dense(tf.sparse.reset_shape(raw, [tf.shape(examples)[0], 1]),
                                                  default_value=""), [-1])
            return self.table.lookup(dense)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            x, group = self._features(examples)
            shifted = 2.0 * x + shift * tf.cast(tf.equal(group, "b"), tf.float32)
            logits = tf.stack([-2.0 * x, tf.fill(tf.shape(x), 0.3), shifted], axis=1)
            scores = tf.nn.softmax(logits)
            return {tasks.SCORES: scores,
                    tasks.CLASSES: tf.tile(self.classes[tf.newaxis, :], [tf.shape(scores)[0], 1])}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_features(self, examples):
            x, _ = self._features(examples)
            return {"x": x, label: self._class_id(examples)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_label(self, examples):
            return {tasks.label_key(label, tasks.MULTICLASS): self._class_id(examples)}

    return _save(Model(), model_dir)


def save_regression_model(model_dir: str, slope: float = 3.0, offset: float = 0.0,
                          label: str = REGRESSION_LABEL) -> str:
    """A regression model predicting ``regression_predictions`` (in the label's units)."""
    import tensorflow as tf

    features, label_spec = _raw_spec(label, tf.float32)

    class Model(tf.Module):
        def _predict(self, examples):
            parsed = tf.io.parse_example(examples, features)
            group_b = tf.cast(tf.equal(parsed["group"][:, 0], "b"), tf.float32)
            return slope * parsed["x"][:, 0] + 10.0 + offset * group_b

        def _label(self, examples):
            raw = tf.io.parse_example(examples, label_spec)[label]
            return tf.reshape(tf.sparse.to_dense(tf.sparse.reset_shape(raw, [tf.shape(examples)[0], 1]),
                                                 default_value=float("nan")), [-1])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            return {tasks.PREDICTIONS: tf.reshape(self._predict(examples), [-1, 1])}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_features(self, examples):
            parsed = tf.io.parse_example(examples, features)
            return {"x": parsed["x"][:, 0], label: self._label(examples)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_label(self, examples):
            return {tasks.label_key(label, tasks.REGRESSION): self._label(examples)}

    return _save(Model(), model_dir)


def write_examples_artifact(folder: str, columns: dict[str, list], label: str, task: str,
                            split: str = "eval") -> list[bytes]:
    """An Examples artifact as ExampleGen lays it out, holding ``split`` only: the gzip TFRecord of
    ``columns`` and a ``split_info.json`` with the groups of ``group`` and the label's record
    (regression ``label_stats``, else ``label_counts``)."""
    import json
    from collections import Counter

    from components.common.artifacts import split_file
    from pipeline.specs import SPLIT_INFO_FILE

    records = write_examples(split_file(folder, split), columns)
    labels = [v for v in columns[label] if v is not None]
    info = {"label": label, "task": task, "groups": {"group": {split: dict(Counter(columns["group"]))}}}
    if task == tasks.REGRESSION:
        info["label_stats"] = {split: {"count": len(labels), "missing": len(columns[label]) - len(labels),
                                       "min": min(labels), "max": max(labels), "mean": float(np.mean(labels))}}
    else:
        info["label_counts"] = dict(Counter(labels))
    with open(os.path.join(folder, SPLIT_INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump(info, handle)
    return records
