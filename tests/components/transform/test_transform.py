"""Transform on tiny data: the generated preprocessing (vocabulary, OOV, scaling, gaps, label) and a
user's own preprocessing module. Real tensorflow-transform on Beam's DirectRunner."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

from pipeline.errors import ConfigError

pytestmark = pytest.mark.slow

ROWS = [  # (age, income, sex, region, approved): None is a missing value
    (25.0, 30000.0, "female", "north", "yes"),
    (35.0, 50000.0, "male", "south", "no"),
    (45.0, None, "female", "north", "yes"),
    (55.0, 70000.0, "male", None, "no"),
    (65.0, 90000.0, "male", "north", "no"),
    (None, 40000.0, "female", "east", "yes"),
] * 20


def _example(age, income, sex, region, approved) -> bytes:
    import tensorflow as tf

    feature = {"sex": tf.train.Feature(bytes_list=tf.train.BytesList(value=[sex.encode()])),
               "approved": tf.train.Feature(bytes_list=tf.train.BytesList(value=[approved.encode()]))}
    if age is not None:
        feature["age"] = tf.train.Feature(float_list=tf.train.FloatList(value=[age]))
    if income is not None:
        feature["income"] = tf.train.Feature(float_list=tf.train.FloatList(value=[income]))
    if region is not None:
        feature["region"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[region.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _pipeline_inputs(folder) -> tuple[str, str]:
    """An Examples artifact (the same rows in every split) and its inferred Schema artifact."""
    import tensorflow_data_validation as tfdv

    from components.common.artifacts import split_file
    from components.common.tfrecord import TFRecordWriter
    from pipeline.specs import SCHEMA_FILE

    examples = os.path.join(folder, "examples")
    for split in ("train", "eval", "test"):
        os.makedirs(os.path.dirname(split_file(examples, split)))
        with TFRecordWriter(split_file(examples, split)) as writer:
            writer.write_many([_example(*row) for row in ROWS])
    stats = tfdv.generate_statistics_from_tfrecord(split_file(examples, "train"))
    schema_dir = os.path.join(folder, "schema")
    os.makedirs(schema_dir)
    tfdv.write_schema_text(tfdv.infer_schema(stats), os.path.join(schema_dir, SCHEMA_FILE))
    return examples, schema_dir


def _config(extra: dict):
    from pipeline.config import BeamConfig, FeaturesConfig, TransformConfig

    features = FeaturesConfig(label="approved", positive="yes", numeric=["age", "income"],
                              categorical=["sex", "region"], sensitive=["sex"])
    return TransformConfig.model_validate(extra), features, BeamConfig()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return _pipeline_inputs(str(tmp_path_factory.mktemp("transform-inputs")))


def _transform(inputs, folder, extra: dict):
    from components.transform.core import run_transform

    transform, features, beam = _config(extra)
    graph, transformed = os.path.join(folder, "graph"), os.path.join(folder, "transformed")
    kinds = run_transform(inputs[0], inputs[1], graph, transformed, transform, features, beam)
    return graph, transformed, kinds


def _apply(graph: str, rows: list[tuple]) -> dict[str, np.ndarray]:
    """Runs the transform graph on raw examples the way serving will: serialized tf.Example in."""
    import tensorflow as tf
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(graph)
    spec = output.raw_feature_spec()
    spec.pop("approved")
    raw = tf.io.parse_example(tf.constant([_example(*r) for r in rows]), spec)
    transformed = output.transform_features_layer()(raw)
    return {name: value.numpy() for name, value in transformed.items()}


@pytest.fixture(scope="module")
def generated(inputs, tmp_path_factory):
    return _transform(inputs, str(tmp_path_factory.mktemp("generated")),
                      {"per_feature": {"income": "minmax"}, "hash_buckets": {"region": 7}})


def test_numeric_gaps_take_the_train_mean_and_scale(generated):
    graph, _, kinds = generated
    out = _apply(graph, [(None, 30000.0, "female", "north", "yes"), (45.0, None, "male", "north", "no"),
                         (25.0, 90000.0, "male", "north", "no")])
    # age: z-score; a missing age becomes the train mean, which scales to 0
    assert out["age"][0] == pytest.approx(0.0, abs=1e-5)
    # income: min-max over train (30k..90k); a gap is the mean 56k -> (56k-30k)/60k
    assert out["income"][0] == pytest.approx(0.0, abs=1e-6)
    assert out["income"][2] == pytest.approx(1.0, abs=1e-6)
    assert out["income"][1] == pytest.approx((56000.0 - 30000.0) / 60000.0, rel=1e-4)
    assert kinds["age"] == {"kind": "numeric"} and kinds["income"] == {"kind": "numeric"}


def test_categories_map_to_vocabulary_ids_and_unseen_ones_to_the_oov_bucket(generated):
    graph, _, kinds = generated
    out = _apply(graph, [(30.0, 1.0, "female", "north", "yes"), (30.0, 1.0, "male", "north", "no"),
                         (30.0, 1.0, "nonbinary", "north", "no")])
    vocabulary_size = kinds["sex"]["size"] - 1  # one OOV bucket by default
    assert vocabulary_size == 2
    assert {out["sex"][0], out["sex"][1]} == {0, 1}
    assert out["sex"][2] == vocabulary_size  # the unseen value lands in the OOV bucket, not an error
    # hashed feature: ids within its bucket count, a missing region is a value too
    region = _apply(graph, [(30.0, 1.0, "male", None, "no"), (30.0, 1.0, "male", "east", "no")])["region"]
    assert kinds["region"] == {"kind": "categorical", "size": 7} and all(0 <= r < 7 for r in region)


def test_the_label_maps_to_one_for_the_positive_value(generated):
    import tensorflow as tf

    from components.common.artifacts import split_file

    _, transformed, _ = generated
    labels = [tf.train.Example.FromString(r.numpy()).features.feature["approved"].int64_list.value[0]
              for r in tf.data.TFRecordDataset(split_file(transformed, "eval"), compression_type="GZIP")]
    assert labels == [1 if row[4] == "yes" else 0 for row in ROWS]


def test_transformed_splits_and_feature_kinds_are_written(generated):
    from components.common.artifacts import split_file

    graph, transformed, kinds = generated
    for split in ("train", "eval", "test"):
        assert os.path.getsize(split_file(transformed, split)) > 0
    written = json.load(open(os.path.join(graph, "feature_kinds.json")))
    assert written == {"label": "approved", "task": "binary", "label_transform": "none", "classes": None,
                       "features": kinds}
    assert not os.path.exists(os.path.join(transformed, ".tft-temp"))


def test_bucketize_and_missing_category_fill(inputs, tmp_path):
    graph, _, kinds = _transform(inputs, str(tmp_path), {"per_feature": {"age": "bucketize"}, "buckets": 3})
    out = _apply(graph, [(25.0, 1.0, "male", None, "no"), (65.0, 1.0, "male", "north", "no")])
    assert kinds["age"] == {"kind": "categorical", "size": 4}
    assert out["age"][0] < out["age"][1] <= 3
    # a missing region is filled with "__missing__", which train had, so it has its own id
    assert out["region"][0] != out["region"][1] and out["region"][0] < kinds["region"]["size"] - 1


def test_a_users_preprocessing_module_replaces_the_generated_one(inputs, tmp_path):
    module = tmp_path / "my_preprocessing.py"
    module.write_text(textwrap.dedent('''
        import tensorflow as tf
        import tensorflow_transform as tft

        def my_fn(inputs):
            sex = tf.reshape(tf.sparse.to_dense(inputs["sex"], default_value=""), [-1])
            label = tf.reshape(tf.sparse.to_dense(inputs["approved"], default_value=""), [-1])
            return {"sex": tft.compute_and_apply_vocabulary(sex, vocab_filename="sex"),
                    "approved": tf.cast(tf.equal(label, "yes"), tf.int64)}
    '''))
    graph, _, kinds = _transform(inputs, str(tmp_path), {"module_file": str(module), "preprocessing_fn": "my_fn"})
    # no OOV buckets: an unseen value is -1, so the Trainer shifts ids by one
    assert kinds == {"sex": {"kind": "categorical", "size": 3, "offset": 1}}
    # at serving there is no label, so only the features come out
    assert set(_apply(graph, [(30.0, 1.0, "male", "north", "no")])) == {"sex"}


def test_a_missing_module_or_function_is_a_config_error(inputs, tmp_path):
    with pytest.raises(ConfigError, match="transform.module_file: no such file"):
        _transform(inputs, str(tmp_path / "a"), {"module_file": str(tmp_path / "nope.py")})
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="defines no function 'preprocessing_fn'"):
        _transform(inputs, str(tmp_path / "b"), {"module_file": str(tmp_path / "empty.py")})
