"""The tree models the Trainer trains and the Tuner searches over: TensorFlow Decision Forests
(TF-DF) gradient-boosted trees and random forests, on the same transformed data as the Keras models.

A tree model takes the same inputs as ``keras_model.build_model``'s (``keras_model.model_inputs``:
a dict keyed by ``tf_name(feature)``, float32 numeric values and int64 category ids) and gives the
same outputs (``components.common.tasks``): binary [batch, 1], the probability of class 1;
multiclass [batch, n], each class's probability in class-id order; regression [batch, 1]. So the
Trainer exports it with the same ``export_serving_model``.

How it is trained, and why (measured on the quickstart's data, 20,000 and 100,000 rows, seed 7, on 2
shared cores; an eval AUC's standard error is about 0.008 at 3,000 eval rows and 0.003 at 15,000,
by Hanley and McNeil's formula):

- On the Transform output, like the Keras models, so every model has one serving path. Trees care
  only about the order of a numeric feature's values, which the Transform's z-score and log keep:
  gradient boosting's eval AUC is 0.8162 on the Transform output and 0.8183 on the raw features
  (20k rows), 0.8169 and 0.8172 (100k); a random forest's 0.8125 and 0.8143, 0.8144 and 0.8142.
- The validation data (the eval split, or a cross-validation fold) is handed to TF-DF, so gradient
  boosting stops early on it (when 30 more trees did not lower the validation loss; the best number
  of trees is kept) and trains on all of train, as the Keras models stop early on eval. Without it
  TF-DF holds out 10% of train instead: eval AUC 0.8178 (20k) and 0.8156 (100k), against 0.8162
  and 0.8169 with the eval split: no difference beyond the noise either way.
- TF-DF's Keras history holds no usable validation metrics (its losses are always 0), and its Keras
  ``evaluate``/``predict`` first spend seconds tracing (about 16 s of a 25 s fit at 20k rows, on a
  busy machine); the validation metrics are computed here from one eager pass of the model over
  the validation data (about 1 s).
- The data's order, its batch size and the number of threads make no measurable difference (100k
  rows, gradient boosting: 28 s on shuffled batches of 128, 31 s in order in batches of 8,192; one
  thread as fast as two on the shared machine). ``dataset`` gives the data in order, in large
  batches, as TF-DF recommends; a shuffled dataset is accepted (TF-DF refuses one unless told) and
  trains a deterministic model, its seed being fixed.
- A random forest's classes are averaged leaf distributions, not one vote per tree (TF-DF's
  ``winner_take_all=False``): eval AUC 0.8125 against 0.8109 (20k), 0.8144 against 0.8108 (100k).

A process that loads a tree model's SavedModel must have the TF-DF ops registered: call
``ensure_tree_ops(model_dir)`` first (it imports ``tensorflow_decision_forests`` only when the model
uses its ops, so Keras models never pay for it).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from typing import Any, Callable

from components.common.keras_model import tf_name

GRADIENT_BOOSTED_TREES, RANDOM_FOREST = "gradient_boosted_trees", "random_forest"
TREE_OPS_PREFIX = "SimpleML"  # every TF-DF op: SimpleMLCreateModelResource, SimpleMLLoadModelFromPathWithHandle...
TRAIN_BATCH = 8192  # TF-DF reads all the data before it trains: big batches, fewer steps
_YDF_DEFAULT_LOG_LEVEL = 2


def uses_tree_ops(model_dir: str) -> bool:
    """Whether the SavedModel in ``model_dir`` (a local path or a URL) uses TF-DF ops. Reads
    ``saved_model.pb`` only (a few milliseconds); an unreadable one says no (loading it will fail
    with its own message)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = f"{model_dir.rstrip('/')}/saved_model.pb"
    saved_model = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            saved_model.ParseFromString(handle.read())
    except (tf.errors.OpError, DecodeError):
        return False
    for graph in saved_model.meta_graphs:
        ops = {op.name for op in graph.meta_info_def.stripped_op_list.op}
        if not ops:  # a SavedModel written without the stripped op list: look at the graph itself
            ops = {node.op for node in graph.graph_def.node}
            ops |= {node.op for function in graph.graph_def.library.function for node in function.node_def}
        if any(op.startswith(TREE_OPS_PREFIX) for op in ops):
            return True
    return False


def ensure_tree_ops(model_dir: str) -> bool:
    """Registers the TF-DF ops before a tree model's SavedModel is loaded (``tf.saved_model.load``
    fails with ``Op type not registered 'SimpleMLCreateModelResource'`` without them). Does nothing
    for any other model. Returns whether the model is a tree model.

    Raises:
        RuntimeError: The model needs TF-DF and ``tensorflow_decision_forests`` cannot be imported.
    """
    if not uses_tree_ops(model_dir):
        return False
    try:
        import tensorflow_decision_forests  # noqa: F401 - registers the ops
    except ImportError as exc:
        raise RuntimeError(f"the model in {model_dir} is a TensorFlow Decision Forests model and "
                           f"tensorflow_decision_forests cannot be imported ({exc})") from None
    return True


def dataset(files: list[str], feature_spec: dict, label: str, kinds: dict, keep: Callable | None = None):
    """``keras_model.dataset`` as tree models read it best: in order, in batches of ``TRAIN_BATCH``."""
    from components.common import keras_model

    return keras_model.dataset(files, feature_spec, label, kinds, TRAIN_BATCH, keep=keep)


def build_tree_model(kinds: dict[str, dict[str, Any]], hp: dict[str, Any], model_type: str, task: str,
                     num_classes: int | None = None, seed: int = 42, num_threads: int | None = None):
    """A TF-DF Keras model over transformed features for ``task``.

    Args:
        kinds: Feature name -> ``{"kind": "numeric"}`` or ``{"kind": "categorical", ...}``: numeric
            features are TF-DF NUMERICAL, categorical ids CATEGORICAL (TF-DF would take int ids for
            numbers); no other input is used.
        hp: ``num_trees``, ``max_depth``, ``min_examples`` and, for gradient boosting, ``shrinkage``.
        model_type: ``gradient_boosted_trees`` or ``random_forest``.
        task: ``binary``, ``multiclass`` (TF-DF classification; ``num_classes`` classes) or
            ``regression``.
        seed: TF-DF's random seed (its sampling of examples and features).
        num_threads: Training threads; default: the CPUs this process may run on.

    Returns:
        An untrained model for ``fit_tree``; quiet (TF-DF's logs are kept from the output).
    """
    import tensorflow_decision_forests as tfdf

    if model_type not in (GRADIENT_BOOSTED_TREES, RANDOM_FOREST):
        raise ValueError(f"not a tree model: {model_type!r}; expected {GRADIENT_BOOSTED_TREES} or {RANDOM_FOREST}")
    semantic = tfdf.keras.FeatureSemantic
    features = [tfdf.keras.FeatureUsage(name=tf_name(name), semantic=semantic.CATEGORICAL
                                        if kind["kind"] == "categorical" else semantic.NUMERICAL)
                for name, kind in sorted(kinds.items())]
    common = {
        "task": tfdf.keras.Task.REGRESSION if task == "regression" else tfdf.keras.Task.CLASSIFICATION,
        "features": features, "exclude_non_specified_features": True,
        "num_trees": int(hp["num_trees"]), "max_depth": int(hp["max_depth"]),
        "min_examples": int(hp["min_examples"]), "random_seed": int(seed),
        "num_threads": num_threads or _cpus(), "verbose": 0,
        # shuffled data is deterministic too (its seed is fixed); the metrics and the predict
        # function are not traced by TF-DF's fit (fit_tree computes the validation metrics)
        "check_dataset": False,
        "advanced_arguments": tfdf.keras.AdvancedArguments(populate_history_with_yggdrasil_logs=True,
                                                           infer_prediction_signature=False),
    }
    with _quiet():
        if model_type == GRADIENT_BOOSTED_TREES:
            model = tfdf.keras.GradientBoostedTreesModel(shrinkage=float(hp["shrinkage"]), **common)
        else:
            # averaged class distributions rather than one vote per tree: smoother probabilities
            model = tfdf.keras.RandomForestModel(compute_oob_performances=False, winner_take_all=False, **common)
    # read by fit_tree (plain values: Keras does not track them, nothing of them is saved)
    model.sluiceway_num_classes, model.sluiceway_max_trees = num_classes, int(hp["num_trees"])
    return model


def fit_tree(model, train, validation, task: str,
             progress: Callable[[str], None] = lambda _: None) -> dict[str, list[float]]:
    """Trains a ``build_tree_model`` model in one pass over ``train``; gradient boosting stops early
    on ``validation``.

    Args:
        train, validation: ``(inputs, label)`` batches (``dataset`` or ``keras_model.dataset``);
            labels: binary 0/1, multiclass class ids, regression values.

    Returns:
        A history shaped like Keras's (one-element lists: the trees train in one pass), with the
        validation metrics under the names the Keras models' histories use: binary ``val_auc``,
        ``val_loss`` (log loss), ``val_binary_accuracy`` (at 0.5); multiclass ``val_loss`` (log
        loss), ``val_accuracy``, ``val_auc`` (one-vs-rest, micro-averaged: every (example, class)
        pair is one binary case, as ``keras_model.SparseAUC``); regression ``val_rmse``, ``val_mae``,
        ``val_loss`` (mean squared error). Plus ``trees``: the trees kept (gradient boosting:
        iterations, each one tree per class for multiclass).
    """
    import numpy as np

    started = time.monotonic()
    with _quiet():
        model.fit(train, validation_data=validation)
        labels, outputs = [], []
        for inputs, label in validation:
            outputs.append(model(inputs, training=False).numpy())
            labels.append(label.numpy())
        inspector = model.make_inspector()
        trees = inspector.num_trees() // max(1, _trees_per_iteration(inspector))
    seconds = time.monotonic() - started
    num_classes = getattr(model, "sluiceway_num_classes", None)
    metrics = validation_metrics(task, np.concatenate(labels), np.concatenate(outputs), num_classes)
    kept = f"{trees} trees"
    if isinstance(model, _gbt_class()):
        kept = f"kept {trees} of up to {getattr(model, 'sluiceway_max_trees', '?')} trees"
    progress(f"trained in {seconds:.1f}s: {kept}; " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return {**{name: [value] for name, value in metrics.items()}, "trees": [trees]}


def validation_metrics(task: str, labels, outputs, num_classes: int | None = None) -> dict[str, float]:
    """The validation metrics of ``fit_tree`` from labels and model outputs (numpy arrays).

    Multiclass outputs narrower than ``num_classes`` (TF-DF's width follows the highest class id
    seen in training, so a cross-validation fold without the last classes gives fewer columns; with
    two classes seen it gives one, the probability of class 1) are widened with zeros. Examples
    whose label is not a class id (multiclass: -1, a class unseen in train) or not a number
    (regression: missing) are left out.
    """
    import numpy as np

    labels = np.asarray(labels).reshape(-1)
    outputs = np.asarray(outputs, dtype=np.float64)
    if task == "regression":
        predictions = outputs.reshape(-1)
        known = np.isfinite(labels)
        error = predictions[known] - labels[known].astype(np.float64)
        mse = float(np.mean(error ** 2))
        return {"val_rmse": float(np.sqrt(mse)), "val_mae": float(np.mean(np.abs(error))), "val_loss": mse}
    eps = 1e-7  # Keras's clipping of probabilities in its cross-entropies
    if task == "multiclass":
        probabilities = _class_columns(outputs, num_classes or max(outputs.shape[1], int(labels.max()) + 1))
        width = probabilities.shape[1]
        known = (labels >= 0) & (labels < width)
        ids, probabilities = labels[known].astype(np.int64), probabilities[known]
        picked = np.clip(probabilities[np.arange(ids.size), ids], eps, 1.0)
        one_hot = np.eye(width, dtype=bool)[ids]
        return {"val_loss": float(-np.mean(np.log(picked))),
                "val_accuracy": float(np.mean(probabilities.argmax(axis=1) == ids)),
                "val_auc": _auc(one_hot.reshape(-1), probabilities.reshape(-1))}
    scores = outputs.reshape(-1)
    positive = labels.astype(np.int64) == 1
    clipped = np.clip(scores, eps, 1 - eps)
    log_loss = -np.mean(np.where(positive, np.log(clipped), np.log(1 - clipped)))
    return {"val_auc": _auc(positive, scores), "val_loss": float(log_loss),
            "val_binary_accuracy": float(np.mean((scores > 0.5) == positive))}


def _class_columns(outputs, num_classes: int):
    import numpy as np

    if outputs.shape[1] == 1:  # TF-DF's binary output: P(class 1)
        outputs = np.concatenate([1 - outputs, outputs], axis=1)
    if outputs.shape[1] < num_classes:
        outputs = np.pad(outputs, ((0, 0), (0, num_classes - outputs.shape[1])))
    return outputs


def _auc(positive, scores) -> float:
    """The exact area under the ROC curve (ties count half); NaN without both classes."""
    import numpy as np
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _trees_per_iteration(inspector) -> int:
    """Gradient boosting's trees per iteration (one per class for multiclass); 1 for a forest."""
    return int(getattr(inspector, "num_trees_per_iter", 1) or 1)


def _gbt_class():
    import tensorflow_decision_forests as tfdf

    return tfdf.keras.GradientBoostedTreesModel


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _quiet():
    """Keeps TF-DF's logs out of the output: its C++ training log level, the lines its Python code
    prints, and what its C++ code writes to the process's stdout/stderr (captured with TF-DF's
    dependency ``wurlitzer``). Whatever was captured goes to stderr if the block fails."""
    from tensorflow_decision_forests.tensorflow import cc_logging

    printed, native_out, native_err = io.StringIO(), io.StringIO(), io.StringIO()
    cc_logging.set_yggdrasil_logging_level(0)
    try:
        with _native_output() as (native_out, native_err), contextlib.redirect_stdout(printed):
            yield
    except BaseException:
        sys.stderr.write(printed.getvalue() + native_out.read() + native_err.read())
        raise
    finally:
        cc_logging.set_yggdrasil_logging_level(_YDF_DEFAULT_LOG_LEVEL)


def _native_output():
    """A context capturing file descriptors 1 and 2 into two readable buffers (none without wurlitzer)."""
    try:
        from wurlitzer import pipes
    except ImportError:
        return contextlib.nullcontext((io.StringIO(), io.StringIO()))
    sys.stdout.flush()
    sys.stderr.flush()
    return pipes()
