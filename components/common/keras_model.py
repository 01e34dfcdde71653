"""The model the Trainer trains and the Tuner searches over: tf_keras (Keras 2), on transformed data.

Both components build models and datasets here, so a tuned configuration is exactly the model the
Trainer then trains. TF_USE_LEGACY_KERAS=1 must be set before TensorFlow is first imported (the CLI,
the tests and the KFP entry point do); otherwise ``tf.keras`` is Keras 3, which cannot export the
SavedModel signatures serving and TFMA need.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import unicodedata
from typing import Any, Callable

from pipeline.specs import FEATURE_KINDS_FILE


_TF_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-]*")


def tf_name(name: str) -> str:
    """A name TensorFlow accepts for ``name`` (op, scope, layer and TFT analyzer names allow ASCII
    letters, digits and ``_.-`` only): ``name`` itself when it is one, else its ASCII letters and
    digits plus a short hash of the whole name, so ``größe`` and ``grösse`` stay apart. Only
    internal names use it; feature keys (tf.Example, signatures, reports) keep the user's names."""
    if _TF_NAME.fullmatch(name):
        return name
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "_", ascii_text).strip("_")[:40] or "feature"
    return f"{stem}_{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def require_tf_keras():
    """``tf.keras`` as tf_keras (Keras 2), or a clear error when TensorFlow was imported too early."""
    import tensorflow as tf

    if not tf.keras.__name__.startswith("tf_keras") and not tf.keras.__version__.startswith("2."):
        raise RuntimeError("tf.keras resolves to Keras 3: set TF_USE_LEGACY_KERAS=1 before TensorFlow is imported")
    return tf


def load_feature_kinds(graph_dir: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The label name and each transformed feature's kind, as Transform wrote them."""
    body = _feature_kinds_file(graph_dir)
    return body["label"], body["features"]


def load_label_info(graph_dir: str) -> dict[str, Any]:
    """What Transform recorded of the label: ``label``, ``task``, ``classes`` (multiclass, in
    class-id order) and ``label_transform`` (regression: ``none`` or ``log``)."""
    body = _feature_kinds_file(graph_dir)
    return {"label": body["label"], "task": body.get("task", "binary"), "classes": body.get("classes"),
            "label_transform": body.get("label_transform", "none")}


def _feature_kinds_file(graph_dir: str) -> dict[str, Any]:
    with open(os.path.join(graph_dir, FEATURE_KINDS_FILE), encoding="utf-8") as handle:
        return json.load(handle)


# The validation metric each task's early stopping (and, by default, the Tuner) follows, and which way is better.
MONITOR = {"binary": ("val_auc", "max"), "multiclass": ("val_loss", "min"), "regression": ("val_rmse", "min")}
MAXIMIZED = {"val_auc", "val_binary_accuracy", "val_accuracy"}


def best_of(series: list[float], metric: str) -> float:
    """The best value of a validation metric's history."""
    return max(series) if metric in MAXIMIZED else min(series)


def split_files(transformed_dir: str, split: str) -> list[str]:
    return sorted(glob.glob(os.path.join(transformed_dir, f"Split-{split}", "*.tfrecord.gz")))


def dataset(files: list[str], feature_spec: dict, label: str, kinds: dict, batch_size: int,
            shuffle_seed: int | None = None, keep: Callable | None = None):
    """Batches of (features, label) from transformed gzip TFRecords.

    Args:
        keep: Optional ``(index) -> bool tensor`` to select examples by position (cross-validation folds).
    """
    tf = require_tf_keras()
    data = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if keep is not None:
        data = data.enumerate().filter(lambda index, _: keep(index)).map(lambda _, record: record)
    if shuffle_seed is not None:
        data = data.shuffle(10_000, seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(lambda records: tf.io.parse_example(records, feature_spec),
                                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.map(lambda f: (model_inputs(f, kinds), f[label])).prefetch(tf.data.AUTOTUNE)


def model_inputs(transformed: dict, kinds: dict) -> dict:
    """The model's inputs from transformed features: ids shifted to start at 0 where Transform's may
    be -1, keyed by ``tf_name`` of the feature (the Keras input's name)."""
    out = {}
    for name, kind in kinds.items():
        value = transformed[name]
        out[tf_name(name)] = value + kind["offset"] if kind.get("offset") else value
    return out


def build_model(kinds: dict[str, dict[str, Any]], hp: dict[str, Any], model_type: str, task: str = "binary",
                num_classes: int | None = None, label_stats: tuple[float, float] | None = None):
    """A tf_keras model over transformed features for ``task``.

    Args:
        kinds: Feature name -> ``{"kind": "numeric"}`` or ``{"kind": "categorical", "size": N}``;
            the model's inputs are named ``tf_name(feature)`` (see ``model_inputs``).
        hp: ``hidden_units``, ``embedding_dim``, ``dropout``, ``learning_rate``.
        model_type: ``dnn``, or ``wide_and_deep`` (adds a linear part over one-hot categoricals).
        task: ``binary`` (output: probability of the positive class, [batch, 1]), ``multiclass``
            (each class's probability, [batch, num_classes]) or ``regression`` ([batch, 1], the
            label as trained on).
        label_stats: Regression: the train label's mean and standard deviation; the output is
            ``mean + std * x``, so the layers learn a standardized target whatever the label's units.

    Returns:
        A compiled tf_keras model; its metrics are named as the Tuner's objectives read them:
        ``auc`` and ``binary_accuracy`` (binary), ``accuracy`` and ``auc`` (multiclass, one-vs-rest
        over every class), ``rmse`` and ``mae`` (regression), besides ``loss``.
    """
    tf = require_tf_keras()
    layers = tf.keras.layers
    inputs, deep, wide = {}, [], []
    for feature, kind in sorted(kinds.items()):
        name = tf_name(feature)  # Keras makes scope names of input and layer names
        if kind["kind"] == "numeric":
            inputs[name] = tf.keras.Input(shape=(), dtype=tf.float32, name=name)
            deep.append(layers.Reshape((1,), name=f"{name}_column")(inputs[name]))
        else:
            inputs[name] = tf.keras.Input(shape=(), dtype=tf.int64, name=name)
            deep.append(layers.Embedding(kind["size"], int(hp["embedding_dim"]), name=f"{name}_embedding")(inputs[name]))
            wide.append(layers.CategoryEncoding(num_tokens=kind["size"], output_mode="one_hot",
                                                name=f"{name}_one_hot")(inputs[name]))
    x = layers.Concatenate(name="deep_inputs")(deep) if len(deep) > 1 else deep[0]
    for index, units in enumerate(hp["hidden_units"]):
        x = layers.Dense(int(units), activation="relu", name=f"hidden_{index}")(x)
        if hp["dropout"]:
            x = layers.Dropout(float(hp["dropout"]), name=f"dropout_{index}")(x)
    width = int(num_classes) if task == "multiclass" else 1
    logit = layers.Dense(width, name="deep_logit")(x)
    if model_type == "wide_and_deep" and wide:
        linear = layers.Concatenate(name="wide_inputs")(wide) if len(wide) > 1 else wide[0]
        logit = layers.Add(name="logit")([logit, layers.Dense(width, name="wide_logit")(linear)])
    optimizer = tf.keras.optimizers.Adam(float(hp["learning_rate"]))
    if task == "multiclass":
        output = layers.Softmax(name="probabilities")(logit)
        model = tf.keras.Model(inputs, output)
        model.compile(optimizer=optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                               SparseAUC(num_classes=int(num_classes), name="auc")])
    elif task == "regression":
        mean, std = label_stats or (0.0, 1.0)
        output = layers.Rescaling(scale=float(std) or 1.0, offset=float(mean), name="prediction")(logit)
        model = tf.keras.Model(inputs, output)
        model.compile(optimizer=optimizer, loss=tf.keras.losses.MeanSquaredError(),
                      metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                               tf.keras.metrics.MeanAbsoluteError(name="mae")])
    else:
        output = layers.Activation("sigmoid", name="probability")(logit)
        model = tf.keras.Model(inputs, output)
        model.compile(optimizer=optimizer, loss=tf.keras.losses.BinaryCrossentropy(),
                      metrics=[tf.keras.metrics.AUC(name="auc"),
                               tf.keras.metrics.BinaryAccuracy(name="binary_accuracy")])
    return model


def _sparse_auc_class():
    tf = require_tf_keras()

    class _SparseAUC(tf.keras.metrics.AUC):
        """AUC over every class one-vs-rest (micro-averaged) from class ids and probabilities."""

        def __init__(self, num_classes: int, **kwargs):
            super().__init__(**kwargs)
            self.num_classes = num_classes

        def update_state(self, y_true, y_pred, sample_weight=None):
            one_hot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), self.num_classes)
            return super().update_state(one_hot, y_pred, sample_weight)

        def get_config(self):
            return {**super().get_config(), "num_classes": self.num_classes}

    return _SparseAUC


def SparseAUC(num_classes: int, name: str = "auc"):  # noqa: N802 - builds a Keras metric
    """A Keras AUC metric for class ids (see ``_sparse_auc_class``)."""
    return _sparse_auc_class()(num_classes=num_classes, name=name)


def fit(model, train, validation, epochs: int, patience: int, callbacks: list | None = None,
        monitor: str = "val_auc") -> dict[str, list[float]]:
    """Trains with early stopping on the validation metric ``monitor``, keeping the best epoch's weights."""
    tf = require_tf_keras()
    stop = tf.keras.callbacks.EarlyStopping(monitor=monitor, mode="max" if monitor in MAXIMIZED else "min",
                                            patience=patience, restore_best_weights=True)
    history = model.fit(train, validation_data=validation, epochs=epochs, callbacks=[stop, *(callbacks or [])],
                        verbose=0)
    return history.history
