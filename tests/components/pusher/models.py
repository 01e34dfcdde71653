"""Tiny real SavedModels for the Pusher's and the BaselineResolver's tests, saved in well under a second.

Like the Trainer's export, each has variables, a vocabulary asset (a lookup table, as TF Transform's)
and a ``serving_default`` signature taking serialized examples; it is not trained.
"""

from __future__ import annotations

import json
import os
import tempfile

VOCABULARY = ("employed", "self_employed", "unemployed")
DATA_FILE = os.path.join("variables", "variables.data-00000-of-00001")


def save_model(path, weights=(0.5, -1.0), vocabulary=VOCABULARY, units: int = 2,
               signature: str = "serving_default") -> str:
    """Saves a SavedModel to ``path`` (a new folder) and returns it as a string. ``units`` changes the
    variables' shapes: a model of other shapes cannot restore these variables. ``signature`` names
    its one signature."""
    import tensorflow as tf

    path = str(path)
    with tempfile.TemporaryDirectory() as scratch:
        vocabulary_file = os.path.join(scratch, "vocabulary_employment_type")
        with open(vocabulary_file, "w", encoding="utf-8") as handle:
            handle.write("\n".join(vocabulary) + "\n")

        class Tiny(tf.Module):
            def __init__(self):
                super().__init__()
                self.kernel = tf.Variable(list(weights) + [0.0] * (units - len(weights)), dtype=tf.float32)
                self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                    vocabulary_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                    tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)

            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
            def serve(self, examples):
                ids = tf.cast(self.table.lookup(examples), tf.float32)
                return {"scores": tf.reshape(tf.sigmoid(ids * self.kernel[0] + self.kernel[1]), [-1, 1])}

        module = Tiny()
        tf.saved_model.save(module, path, signatures={signature: module.serve})
    return path


def bless(folder, model: str, blessed: bool = True) -> str:
    """Writes ``folder/blessing.json`` as the Evaluator does for ``model`` (its fingerprint, one check)."""
    from components.common.model_fingerprint import model_fingerprint

    os.makedirs(folder, exist_ok=True)
    check = {"gate": "gates[0] auc min 0.7 overall", "slice": "overall", "metric": "auc", "value": 0.8,
             "bound": ">= 0.7", "baseline": None, "status": "pass" if blessed else "fail", "detail": ""}
    with open(os.path.join(folder, "blessing.json"), "w", encoding="utf-8") as handle:
        json.dump({"blessed": blessed, "model_fingerprint": model_fingerprint(model), "checks": [check],
                   "blocking": [] if blessed else [check]}, handle)
    return str(folder)


def truncate(path: str, size: int | None = None) -> None:
    """Cuts a file to its first ``size`` bytes (half of it by default), as a full disk or an interrupted
    copy leaves it."""
    with open(path, "rb") as handle:
        content = handle.read()
    assert size is None or size < len(content), f"{path} has {len(content)} bytes only"
    with open(path, "wb") as handle:
        handle.write(content[:len(content) // 2 if size is None else size])
