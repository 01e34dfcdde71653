"""The preprocessing function sluiceway generates from the pipeline YAML.

It lives in an importable module (not built in ``__main__``) so Beam can pickle it, and takes its
settings as a plain dict (``functools.partial(preprocessing_fn, plan)``), so the same function runs
in the local runner, a Kubeflow task and a Dataflow worker.
"""

from __future__ import annotations

from typing import Any

from components.common import tasks
from components.common.keras_model import tf_name
from pipeline.config import FeaturesConfig, TransformConfig


def vocabulary_file(feature: str) -> str:
    """The name TFT stores ``feature``'s vocabulary under (TFT makes scope names of it, so a feature
    named in Unicode or with spaces gets a safe name, see ``tf_name``)."""
    return f"vocabulary_{tf_name(feature)}"


def build_plan(transform: TransformConfig, features: FeaturesConfig) -> dict[str, Any]:
    """The JSON-able settings ``preprocessing_fn`` reads: one entry per feature, plus the label."""
    numeric = {name: transform.per_feature.get(name, transform.numeric) for name in features.numeric}
    categorical = {}
    for name in features.categorical:
        if name in transform.hash_buckets:
            categorical[name] = {"method": "hash", "buckets": transform.hash_buckets[name]}
        else:
            categorical[name] = {"method": "vocabulary", "top_k": transform.vocabulary.top_k,
                                 "frequency_threshold": transform.vocabulary.frequency_threshold,
                                 "oov_buckets": transform.vocabulary.oov_buckets}
    return {
        "numeric": numeric,
        "buckets": transform.buckets,
        "categorical": categorical,
        "fill_numeric": transform.missing.numeric,
        "fill_categorical": transform.missing.categorical,
        "label": features.label,
        "task": features.task,
        "positive": features.positive_value if features.task == tasks.BINARY else None,
        "label_transform": transform.label,
    }


def _dense(tensor, default):
    """A [batch] tensor from a [batch, <=1] sparse/ragged/dense feature; missing values become ``default``."""
    import tensorflow as tf

    if isinstance(tensor, tf.sparse.SparseTensor):
        shape = tf.stack([tensor.dense_shape[0], 1])
        tensor = tf.sparse.to_dense(tf.sparse.SparseTensor(tensor.indices, tensor.values, shape), default_value=default)
    elif isinstance(tensor, tf.RaggedTensor):
        tensor = tensor.to_tensor(default_value=default, shape=[None, 1])
    return tf.reshape(tensor, [-1]) if tensor.shape.rank == 2 else tensor


def preprocessing_fn(plan: dict[str, Any], inputs: dict) -> dict:
    """TFT preprocessing: scale numerics, map categoricals to ids, fill gaps, and the label by task:
    binary 0/1, multiclass a class id from a vocabulary over train, regression a float (log1p of
    it with ``transform.label: log``).

    Args:
        plan: ``build_plan``'s output.
        inputs: Raw features (sparse: any may be missing) keyed by name.

    Returns:
        Transformed features under their raw names: float32 for numeric, int64 ids for
        categorical and bucketized ones; the label as int64 0/1 (binary), an int64 class id
        (multiclass; -1 for a class train never had) or float32 (regression).
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    outputs = {}
    for name, method in plan["numeric"].items():
        raw = inputs[name]
        if isinstance(raw, tf.sparse.SparseTensor):
            present = tf.cast(raw.values, tf.float32)
            raw = tf.sparse.SparseTensor(raw.indices, present, raw.dense_shape)
        else:
            raw = present = tf.cast(raw, tf.float32)
        fill = tft.mean(present) if plan["fill_numeric"] == "mean" else tf.constant(0.0)
        # NaN marks a gap until the fill value (an analyzer's result) is known
        x = _dense(raw, float("nan"))
        x = tf.where(tf.math.is_nan(x), fill, x)
        if method == "zscore":
            outputs[name] = tft.scale_to_z_score(x)
        elif method == "minmax":
            outputs[name] = tft.scale_to_0_1(x)
        elif method == "log":
            outputs[name] = tft.scale_to_z_score(tf.math.log1p(tf.maximum(x, 0.0)))
        elif method == "bucketize":
            outputs[name] = tft.bucketize(x, num_buckets=plan["buckets"])
        else:
            outputs[name] = x
    for name, spec in plan["categorical"].items():
        x = _dense(inputs[name], plan["fill_categorical"])
        if spec["method"] == "hash":
            outputs[name] = tf.strings.to_hash_bucket_fast(x, spec["buckets"])
        else:
            outputs[name] = tft.compute_and_apply_vocabulary(
                x, top_k=spec["top_k"], frequency_threshold=spec["frequency_threshold"],
                num_oov_buckets=spec["oov_buckets"], vocab_filename=vocabulary_file(name))
    outputs[plan["label"]] = transformed_label(plan, inputs[plan["label"]])
    return outputs


def transformed_label(plan: dict[str, Any], raw):
    """The label as the model trains on it (see ``preprocessing_fn``)."""
    import tensorflow as tf
    import tensorflow_transform as tft

    task = plan.get("task", tasks.BINARY)  # plans written before tasks existed are binary
    if task == tasks.REGRESSION:
        value = _dense(tf.sparse.map_values(tf.cast, raw, tf.float32) if isinstance(raw, tf.sparse.SparseTensor)
                       else tf.cast(raw, tf.float32), float("nan"))
        return tf.math.log1p(tf.maximum(value, 0.0)) if plan.get("label_transform") == "log" else value
    label = _dense(raw, "")
    if task == tasks.MULTICLASS:
        # classes in the vocabulary's order (most frequent first, ties by value), from train only
        return tft.compute_and_apply_vocabulary(label, num_oov_buckets=0, default_value=-1,
                                                vocab_filename=tasks.label_vocabulary_file(plan["label"]))
    return tf.cast(tf.equal(label, plan["positive"]), tf.int64)


def feature_kinds(plan: dict[str, Any], tft_output) -> dict[str, dict[str, Any]]:
    """What the Trainer needs to know of each transformed feature: dense numbers or ids (and how many)."""
    kinds: dict[str, dict[str, Any]] = {}
    for name, method in plan["numeric"].items():
        kinds[name] = ({"kind": "categorical", "size": plan["buckets"] + 1} if method == "bucketize"
                       else {"kind": "numeric"})
    for name, spec in plan["categorical"].items():
        if spec["method"] == "hash":
            size = spec["buckets"]
        else:
            size = tft_output.vocabulary_size_by_name(vocabulary_file(name)) + spec["oov_buckets"]
        kinds[name] = {"kind": "categorical", "size": int(size)}
    return kinds
