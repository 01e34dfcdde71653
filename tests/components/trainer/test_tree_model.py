"""Tree models (components.common.tree_model): each task's output contract and validation metrics on
synthetic data with signal, a SavedModel that a fresh process loads once ``ensure_tree_ops`` ran
(and the Pusher's load check passes), and, on a few hundred real transformed rows, a GBT and a
random forest exported like the Trainer's model scoring raw examples as they score in training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import REPO

KINDS = {"x1": {"kind": "numeric"}, "x2": {"kind": "numeric"}, "colour": {"kind": "categorical", "size": 4}}
FEW_TREES = {"num_trees": 30, "max_depth": 4, "shrinkage": 0.3, "min_examples": 5}
MODELS = ("gradient_boosted_trees", "random_forest")


def _synthetic(task: str, rows: int, seed: int) -> tuple[dict, np.ndarray]:
    """Model inputs and a label that depends on both numbers and the category."""
    rng = np.random.default_rng(seed)
    inputs = {"x1": rng.normal(size=rows).astype(np.float32), "x2": rng.normal(size=rows).astype(np.float32),
              "colour": rng.integers(0, 4, rows).astype(np.int64)}
    signal = 1.5 * inputs["x1"] - inputs["x2"] + 0.8 * (inputs["colour"] == 2) + rng.normal(scale=0.5, size=rows)
    if task == "binary":
        return inputs, (signal > 0).astype(np.int64)
    if task == "multiclass":
        return inputs, np.digitize(signal, [-0.8, 0.8]).astype(np.int64)
    return inputs, (3.0 * signal + 10).astype(np.float32)


def _batches(inputs: dict, label: np.ndarray, batch: int = 256):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((inputs, label)).batch(batch)


def _trained(task: str, model_type: str, num_classes: int | None = None):
    from components.common import tree_model

    train, validation = _synthetic(task, 1500, seed=1), _synthetic(task, 500, seed=2)
    model = tree_model.build_tree_model(KINDS, FEW_TREES, model_type, task, num_classes=num_classes, seed=3)
    lines: list[str] = []
    history = tree_model.fit_tree(model, _batches(*train), _batches(*validation), task, progress=lines.append)
    return model, history, validation, lines


@pytest.mark.parametrize("model_type", MODELS)
def test_binary_output_is_the_probability_of_class_1(model_type):
    model, history, (inputs, label), lines = _trained("binary", model_type)
    scores = model(inputs).numpy()
    assert scores.shape == (label.size, 1)
    assert np.all((scores >= 0) & (scores <= 1))
    assert set(history) == {"val_auc", "val_loss", "val_binary_accuracy", "trees"}
    assert all(len(series) == 1 for series in history.values())
    assert history["val_auc"][0] > 0.85  # class 1 scores high: P(class 1), not P(class 0)
    assert history["val_binary_accuracy"][0] == pytest.approx(np.mean((scores[:, 0] > 0.5) == (label == 1)))
    assert 1 <= history["trees"][0] <= FEW_TREES["num_trees"]
    assert len(lines) == 1 and "trees" in lines[0] and "val_auc=" in lines[0]


@pytest.mark.parametrize("model_type", MODELS)
def test_multiclass_output_is_each_classs_probability_in_class_id_order(model_type):
    model, history, (inputs, label), _ = _trained("multiclass", model_type, num_classes=3)
    probabilities = model(inputs).numpy()
    assert probabilities.shape == (label.size, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert set(history) == {"val_loss", "val_accuracy", "val_auc", "trees"}
    assert 1 <= history["trees"][0] <= FEW_TREES["num_trees"]  # boosting's iterations, not 3 trees each
    # well above the largest class's share, and the argmax is the class id
    assert history["val_accuracy"][0] > np.bincount(label).max() / label.size + 0.15
    assert history["val_accuracy"][0] == pytest.approx(np.mean(probabilities.argmax(axis=1) == label))
    assert history["val_auc"][0] > 0.85


@pytest.mark.parametrize("model_type", MODELS)
def test_regression_output_is_the_prediction(model_type):
    model, history, (inputs, label), _ = _trained("regression", model_type)
    predictions = model(inputs).numpy()
    assert predictions.shape == (label.size, 1)
    assert set(history) == {"val_rmse", "val_mae", "val_loss", "trees"}
    assert history["val_rmse"][0] < 0.6 * label.std()
    assert history["val_loss"][0] == pytest.approx(history["val_rmse"][0] ** 2)
    assert history["val_mae"][0] == pytest.approx(np.mean(np.abs(predictions[:, 0] - label)), rel=1e-5)


def test_the_same_seed_trains_the_same_model():
    first, _, (inputs, _), _ = _trained("binary", "gradient_boosted_trees")
    second, _, _, _ = _trained("binary", "gradient_boosted_trees")
    np.testing.assert_array_equal(first(inputs).numpy(), second(inputs).numpy())


def test_training_prints_nothing(capfd):
    _trained("binary", "gradient_boosted_trees")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_validation_metrics_are_exact():
    from components.common.tree_model import validation_metrics

    binary = validation_metrics("binary", np.array([0, 0, 1, 1]), np.array([[0.1], [0.4], [0.35], [0.8]]))
    assert binary["val_auc"] == pytest.approx(0.75)
    assert binary["val_binary_accuracy"] == pytest.approx(0.75)
    assert binary["val_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    assert validation_metrics("binary", np.array([0, 1]), np.array([[0.5], [0.5]]))["val_auc"] == 0.5  # ties
    regression = validation_metrics("regression", np.array([1.0, 2.0, np.nan]), np.array([[2.0], [0.0], [5.0]]))
    assert regression == pytest.approx({"val_rmse": np.sqrt(2.5), "val_mae": 1.5, "val_loss": 2.5})


def test_multiclass_metrics_widen_an_output_that_lacks_the_last_classes():
    """TF-DF's output has as many columns as the highest class id seen in training (one column,
    P(class 1), with two): a cross-validation fold without the last class still scores every class."""
    from components.common.tree_model import validation_metrics

    labels = np.array([0, 1, 2, 1, -1])  # -1: a class unseen in train, left out
    narrow = validation_metrics("multiclass", labels, np.array([[0.2], [0.9], [0.6], [0.7], [0.5]]), num_classes=3)
    wide = validation_metrics("multiclass", labels, np.array([[0.8, 0.2, 0], [0.1, 0.9, 0], [0.4, 0.6, 0],
                                                              [0.3, 0.7, 0], [0.5, 0.5, 0]]), num_classes=3)
    assert narrow == pytest.approx(wide)
    assert wide["val_accuracy"] == pytest.approx(3 / 4)
    assert wide["val_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.9, 1e-7, 0.7])))


_FRESH_PROCESS = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    sys.path.insert(0, {repo!r})
    import tensorflow as tf
    from components.common import tree_model
    from components.common.model_fingerprint import model_fingerprint
    tree_dir, keras_dir, records = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result = {{"keras_is_tree": tree_model.ensure_tree_ops(keras_dir),
              "tfdf_imported_for_keras": "tensorflow_decision_forests" in sys.modules,
              "fingerprint": model_fingerprint(tree_dir)}}
    try:
        tf.saved_model.load(tree_dir)
        result["plain_load"] = "loaded"
    except Exception as exc:
        result["plain_load"] = str(exc).splitlines()[0]
    result["tree_is_tree"] = tree_model.ensure_tree_ops(tree_dir)
    serve = tf.saved_model.load(tree_dir).signatures["serving_default"]
    examples = tf.constant([bytes.fromhex(r) for r in records])
    result["scores"] = serve(examples=examples)["scores"].numpy().tolist()
    from components.pusher.core import _check_copy
    result["pusher_check"] = _check_copy(tree_dir, result["fingerprint"])
    print("RESULT" + json.dumps(result))
""")


def _fresh_process(tree_dir: str, keras_dir: str, records: list[bytes]) -> dict:
    """Loads ``tree_dir`` in a new Python process that has not imported TF-DF."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", _FRESH_PROCESS.format(repo=REPO), tree_dir, keras_dir,
                           json.dumps([r.hex() for r in records])],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT"):])


def _example(values: dict) -> bytes:
    import tensorflow as tf

    feature = {name: tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)])) if isinstance(value, float)
               else tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)])) for name, value in values.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_a_fresh_process_loads_a_tree_model_after_ensure_tree_ops(tmp_path):
    """Exported as the Trainer does (the model in a tf.function over serialized tf.Examples, saved by
    Keras with ``save_format="tf"``); TF-DF is imported for it and not for a Keras model."""
    import tensorflow as tf

    from components.common.model_fingerprint import model_fingerprint

    model, _, (inputs, _), _ = _trained("binary", "gradient_boosted_trees")
    spec = {"x1": tf.io.FixedLenFeature([], tf.float32), "x2": tf.io.FixedLenFeature([], tf.float32),
            "colour": tf.io.FixedLenFeature([], tf.int64)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        return {"scores": tf.reshape(model(tf.io.parse_example(examples, spec)), [-1, 1])}

    tree_dir, keras_dir = str(tmp_path / "tree"), str(tmp_path / "keras")
    model.save(tree_dir, save_format="tf", signatures={"serving_default": serve})
    keras = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    keras.save(keras_dir, save_format="tf")
    rows = [{name: values[i].item() for name, values in inputs.items()} for i in range(20)]
    result = _fresh_process(tree_dir, keras_dir, [_example(row) for row in rows])

    assert result["keras_is_tree"] is False and result["tfdf_imported_for_keras"] is False
    assert "Op type not registered 'SimpleML" in result["plain_load"]
    assert result["tree_is_tree"] is True
    expected = model({name: values[:20] for name, values in inputs.items()}).numpy()
    np.testing.assert_allclose(np.array(result["scores"]), expected, atol=1e-6)
    assert result["fingerprint"] == model_fingerprint(tree_dir)  # read without TF-DF's ops
    assert result["pusher_check"] is None


@pytest.mark.slow
@pytest.mark.parametrize("model_type", MODELS)
def test_on_real_transformed_data_the_exported_model_serves_its_training_scores(tiny_pipeline, model_type, tmp_path):
    import tensorflow_transform as tft

    from components.common import keras_model, tree_model
    from components.trainer.core import EVAL_BATCH, export_serving_model
    from tests.components.conftest import raw_records

    graph = tiny_pipeline.transform_graph
    label, kinds = keras_model.load_feature_kinds(graph)
    output = tft.TFTransformOutput(graph)
    spec = output.transformed_feature_spec()
    files = {split: keras_model.split_files(tiny_pipeline.transformed_examples, split) for split in ("train", "eval")}
    hp = {**FEW_TREES, "max_depth": 6 if model_type == "gradient_boosted_trees" else 16}
    model = tree_model.build_tree_model(kinds, hp, model_type, "binary", seed=7)
    evaluation = keras_model.dataset(files["eval"], spec, label, kinds, EVAL_BATCH)
    history = tree_model.fit_tree(model, tree_model.dataset(files["train"], spec, label, kinds), evaluation, "binary")
    assert history["val_auc"][0] > 0.7

    model_dir = str(tmp_path / "model")
    export_serving_model(model, output, label, kinds, model_dir)
    import tensorflow as tf

    tree_model.ensure_tree_ops(model_dir)
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    served = serve(examples=tf.constant(raw_records(tiny_pipeline.examples, "eval")))["scores"].numpy()
    trained = np.concatenate([model(inputs).numpy() for inputs, _ in evaluation])
    np.testing.assert_allclose(served, trained, atol=1e-6)
    labels = np.concatenate([y.numpy() for _, y in evaluation])
    assert tree_model.validation_metrics("binary", labels, served)["val_auc"] == pytest.approx(history["val_auc"][0])


def test_what_tf_df_wrote_is_shown_when_training_fails(capfd):
    from components.common.tree_model import _quiet

    with pytest.raises(ValueError), _quiet():
        print("from python")
        os.write(2, b"from native code\n")
        raise ValueError("training failed")
    _, err = capfd.readouterr()
    assert "from python" in err and "from native code" in err
