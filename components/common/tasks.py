"""What a trained model's SavedModel looks like for each task: the contract between the Trainer,
which exports it, and whatever reads it (Evaluator, Pusher, serving users).

Every model, whatever its family, has three signatures taking serialized *raw* tf.Examples
(``examples``, a [batch] string tensor):

- ``serving_default`` (no label needed):
  - binary: ``scores`` [batch, 1] float32, the probability of the positive class;
  - multiclass: ``scores`` [batch, n] float32, each class's probability, and ``classes``
    [batch, n] string, the class names in the same order (the label vocabulary's order);
  - regression: ``predictions`` [batch, 1] float32, in the label's units (a ``transform.label:
    log`` model has its output turned back already).
- ``transform_features``: raw -> the transformed features, label included.
- ``transform_label``: raw -> the label only, under ``label_key``: binary 0/1 (int64), multiclass
  the class id (int64, the index into ``classes``; -1 for a class not seen in train), regression
  the label's value (float32, in its units).

Pure Python (no TensorFlow), so the config and the reports can use it.
"""

from __future__ import annotations

import os

from components.common.keras_model import tf_name

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
SCORES, CLASSES, PREDICTIONS = "scores", "classes", "predictions"
LABEL_SIGNATURE = "transform_label"
TRANSFORM_SIGNATURE = "transform_features"


def label_key(label: str, task: str) -> str:
    """The name ``transform_label`` gives the label."""
    return {BINARY: f"{label}_binary", MULTICLASS: f"{label}_class_id", REGRESSION: f"{label}_value"}[task]


def prediction_key(task: str) -> str:
    """The ``serving_default`` output TFMA reads predictions from."""
    return PREDICTIONS if task == REGRESSION else SCORES


def label_vocabulary_file(label: str) -> str:
    """The name of the multiclass label's vocabulary (Transform's, over train): the classes, one per
    line, in class-id order. The SavedModel carries it in ``assets/`` under the same name."""
    return f"label_vocabulary_{tf_name(label)}"


def model_classes(model_dir: str, label: str) -> list[str]:
    """The class names of a multiclass SavedModel, in class-id order (from its assets).

    Raises:
        FileNotFoundError: The model has no label vocabulary (not a multiclass model).
    """
    path = os.path.join(model_dir, "assets", label_vocabulary_file(label))
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.rstrip("\n")]
