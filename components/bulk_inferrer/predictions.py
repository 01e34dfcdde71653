"""The prediction columns of a scoring run, per task, from the model's ``serving_default``.

The model contract is ``components.common.tasks``: ``serving_default`` takes serialized raw
tf.Examples and returns the task's outputs. The columns, after the columns kept:

- binary: ``probability`` (float32), the model's ``scores``: the probability that the label is
  ``features.positive``; ``predicted`` (bool), ``probability >= decision_threshold``. A bool rather
  than a label value: the model knows only the positive class's value, not what the others were
  called, and a bool filters and counts as it reads (the positive value and the threshold are in the
  lineage file).
- multiclass: ``probability_<class>`` (float32) per class, in the model's class order (its label
  vocabulary, ``tasks.model_classes``); ``predicted`` (string), the most probable class (on a tie the
  first, as an argmax).
- regression: ``predicted`` (float32), the model's ``predictions``, in the label's units.

The values are the model's own float32 numbers, not recomputed: a score equals what ``serving_default``
returns for the row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from components.common import tasks
from components.common.tree_model import ensure_tree_ops
from pipeline.config import FeaturesConfig
from pipeline.errors import SluicewayError

PROBABILITY, PREDICTED = "probability", "predicted"
SIGNATURE = "serving_default"


class ModelMismatch(SluicewayError):
    """The model is not one of ``features.task`` (its outputs, or its classes, are another task's);
    the message names the model folder and what it returns. A configuration error (exit code 2)."""

    exit_code = 2


def model_classes(model_dir: str, features: FeaturesConfig) -> list[str] | None:
    """A multiclass model's class names (``None`` for the other tasks).

    Raises:
        ModelMismatch: The task is multiclass and the model has no label vocabulary for ``features.label``.
    """
    if features.task != tasks.MULTICLASS:
        return None
    try:
        return tasks.model_classes(model_dir, features.label)
    except FileNotFoundError:
        raise ModelMismatch(f"{model_dir}: has no label vocabulary (assets/{tasks.label_vocabulary_file(features.label)}"
                            f"); expected a multiclass model of the label '{features.label}' (features.task: "
                            "multiclass)") from None


def prediction_fields(task: str, classes: list[str] | None) -> list[pa.Field]:
    """The prediction columns of ``task`` (see the module's docstring), in order."""
    if task == tasks.BINARY:
        return [pa.field(PROBABILITY, pa.float32()), pa.field(PREDICTED, pa.bool_())]
    if task == tasks.MULTICLASS:
        return [*(pa.field(f"{PROBABILITY}_{name}", pa.float32()) for name in classes),
                pa.field(PREDICTED, pa.string())]
    return [pa.field(PREDICTED, pa.float32())]


_OUTPUTS = {tasks.BINARY: {tasks.SCORES}, tasks.MULTICLASS: {tasks.SCORES, tasks.CLASSES},
            tasks.REGRESSION: {tasks.PREDICTIONS}}


class Scorer:
    """A SavedModel's ``serving_default``, turned into the task's prediction columns.

    Args:
        model_dir: The SavedModel (a tree model's TF-DF ops are registered first).
        features: The ``features`` section: the task.
        decision_threshold: Binary: the probability from which a row is predicted positive.
        classes: Multiclass: ``model_classes``.

    Raises:
        ModelMismatch: ``serving_default`` does not return the task's outputs.
    """

    def __init__(self, model_dir: str, features: FeaturesConfig, decision_threshold: float,
                 classes: list[str] | None):
        import tensorflow as tf

        ensure_tree_ops(model_dir)
        self._tf = tf
        self._model = tf.saved_model.load(model_dir)  # held: the signature needs the loaded object alive
        if SIGNATURE not in self._model.signatures:
            raise ModelMismatch(f"{model_dir}: has no {SIGNATURE} signature; expected a model the sluiceway "
                                "Trainer exported")
        self._serve = self._model.signatures[SIGNATURE]
        self.task, self.threshold, self.classes = features.task, decision_threshold, classes
        returned = set(self._serve.structured_outputs)
        if returned != _OUTPUTS[self.task]:
            raise ModelMismatch(f"{model_dir}: {SIGNATURE} returns {', '.join(sorted(returned))}; expected "
                                f"{', '.join(sorted(_OUTPUTS[self.task]))}, the outputs of a {self.task} model "
                                f"(features.task: {self.task})")
        self.model_dir = model_dir
        self.fields = prediction_fields(self.task, classes)

    def __call__(self, records: list[bytes]) -> list[pa.Array]:
        """The prediction columns of the serialized tf.Examples ``records``, one value per record."""
        outputs = self._serve(examples=self._tf.constant(records, dtype=self._tf.string))
        if self.task == tasks.REGRESSION:
            return [pa.array(outputs[tasks.PREDICTIONS].numpy()[:, 0])]
        scores = outputs[tasks.SCORES].numpy()
        if self.task == tasks.BINARY:
            probability = scores[:, 0]
            return [pa.array(probability), pa.array(probability >= self.threshold)]
        if len(records):
            returned = [name.decode() for name in outputs[tasks.CLASSES].numpy()[0]]
            if returned != self.classes:
                raise ModelMismatch(f"{self.model_dir}: {SIGNATURE} returns the classes {returned}; expected "
                                    f"those of its label vocabulary, {self.classes}")
        names = np.array(self.classes, dtype=object)
        return [*(pa.array(np.ascontiguousarray(scores[:, index])) for index in range(len(self.classes))),
                pa.array(names[np.argmax(scores, axis=1)] if len(records) else [], pa.string())]
