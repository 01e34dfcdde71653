"""Transform: tensorflow-transform analyzes the train split and transforms every split.

The preprocessing function is generated from the YAML (``preprocessing.py``) unless
``transform.module_file`` names the user's own. Outputs: the transform graph (TFT's
``transform_fn`` plus the raw schema, which ``WriteTransformFn`` does not write and serving needs)
and the transformed examples as gzip TFRecords per split. Beam options come from the ``beam``
section, so the same step runs on Dataflow, Flink or Spark.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from typing import Any, Callable, Mapping

from components.common.artifacts import split_file
from pipeline.config import SPLITS, BeamConfig, FeaturesConfig, Section, TransformConfig
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.specs import FEATURE_KINDS_FILE, SCHEMA_FILE


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs Transform as a pipeline step; see ``run_transform``. Returns its figures."""
    kinds = run_transform(inputs["examples"], inputs["schema"], outputs["transform_graph"],
                          outputs["transformed_examples"], config["transform"], config["features"],
                          config["beam"], progress)
    return {"features": len(kinds),
            "categorical": sum(k["kind"] == "categorical" for k in kinds.values()),
            "custom_preprocessing": bool(config["transform"].module_file)}


def raw_schema_for(schema_path: str, features: FeaturesConfig):
    """The schema TFT parses raw examples with: declared features and the label only, every one
    optional (a missing value is the preprocessing's to fill, at training and at serving alike)."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(schema_path)
    keep = {*features.feature_names, features.label}
    missing = sorted(keep - {f.name for f in schema.feature})
    if missing:
        raise ConfigError(schema_path, [ConfigIssue("", f"the schema lacks the declared feature(s) {', '.join(missing)}")])
    for feature in list(schema.feature):
        if feature.name not in keep:
            schema.feature.remove(feature)
            continue
        feature.ClearField("shape")
        feature.presence.min_fraction = 0.0
    return schema


def load_preprocessing_fn(transform: TransformConfig, features: FeaturesConfig) -> tuple[Callable, dict | None]:
    """The preprocessing function, and the generated plan (``None`` for a user's module)."""
    from components.transform import preprocessing

    if not transform.module_file:
        plan = preprocessing.build_plan(transform, features)
        return functools.partial(preprocessing.preprocessing_fn, plan), plan
    path = transform.module_file
    if not os.path.isfile(path):
        raise ConfigError(path, [ConfigIssue("transform.module_file", "no such file; expected a Python module")])
    name = "sluiceway_user_preprocessing_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so Beam can pickle the function by reference
    spec.loader.exec_module(module)
    function = getattr(module, transform.preprocessing_fn, None)
    if not callable(function):
        raise ConfigError(path, [ConfigIssue("transform.preprocessing_fn",
                                             f"{path} defines no function '{transform.preprocessing_fn}'")])
    return function, None


def run_transform(examples_dir: str, schema_dir: str, graph_dir: str, transformed_dir: str,
                  transform: TransformConfig, features: FeaturesConfig, beam_config: BeamConfig,
                  progress: Callable[[str], None] = lambda _: None) -> dict[str, dict[str, Any]]:
    """Analyzes train with TFT and transforms every split.

    Args:
        examples_dir: An Examples artifact (gzip TFRecords per split).
        schema_dir: A Schema artifact.
        graph_dir: Output TransformGraph artifact: TFT's transform_fn, transformed_metadata,
            the raw schema (metadata) and ``feature_kinds.json`` for the Trainer.
        transformed_dir: Output Examples artifact of transformed tf.Examples per split.
        transform: The ``transform`` section.
        features: The ``features`` section.
        beam_config: Beam pipeline options.
        progress: Receives a line before the Beam pipeline starts.

    Returns:
        Each transformed feature's kind (``numeric``, or ``categorical`` with its id space size).

    Raises:
        ConfigError: The schema lacks a declared feature, or the user's module is missing.
    """
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.transform.beam_io import EncodeRecordBatches
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    raw_schema = raw_schema_for(os.path.join(schema_dir, SCHEMA_FILE), features)
    preprocessing_fn, plan = load_preprocessing_fn(transform, features)
    if os.path.isdir(graph_dir) and not os.listdir(graph_dir):
        os.rmdir(graph_dir)  # WriteTransformFn renames its result into place and wants no folder there
    temp_dir = os.path.join(transformed_dir, ".tft-temp")
    progress(f"analyzing {SPLITS[0]} and transforming {', '.join(SPLITS)} with Beam")
    with beam.Pipeline(options=PipelineOptions(list(beam_config.pipeline_options))) as pipeline, \
            tft_beam.Context(temp_dir=temp_dir):
        sources = {split: tfxio.TFExampleRecord(file_pattern=split_file(examples_dir, split), schema=raw_schema,
                                                telemetry_descriptors=["sluiceway", "Transform"])
                   for split in SPLITS}
        adapter = sources[SPLITS[0]].TensorAdapterConfig()
        raw = {split: pipeline | f"Read[{split}]" >> source.BeamSource() for split, source in sources.items()}
        (train_out, _), transform_fn = ((raw[SPLITS[0]], adapter)
                                        | "AnalyzeAndTransform" >> tft_beam.AnalyzeAndTransformDataset(
                                            preprocessing_fn, output_record_batches=True))
        transformed = {SPLITS[0]: train_out}
        for split in SPLITS[1:]:
            transformed[split], _ = (((raw[split], adapter), transform_fn)
                                     | f"Transform[{split}]" >> tft_beam.TransformDataset(output_record_batches=True))
        for split, batches in transformed.items():
            # one shard named exactly like ExampleGen's split files, so readers share split_file()
            prefix = os.path.join(os.path.dirname(split_file(transformed_dir, split)), "data")
            _ = (batches
                 | f"Encode[{split}]" >> beam.ParDo(EncodeRecordBatches())
                 | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                     prefix, file_name_suffix=".tfrecord.gz", num_shards=1, shard_name_template="-SSSSS-of-NNNNN",
                     compression_type=beam.io.filesystem.CompressionTypes.GZIP))
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(graph_dir)
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(raw_schema),
                               os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    _remove_tree(temp_dir)
    tft_output = tft.TFTransformOutput(graph_dir)
    kinds = _feature_kinds(plan, tft_output, features)
    transform_label = transform.label if features.task == "regression" else "none"
    with open(os.path.join(graph_dir, FEATURE_KINDS_FILE), "w", encoding="utf-8") as handle:
        json.dump({"label": features.label, "task": features.task, "label_transform": transform_label,
                   "classes": _classes(tft_output, features), "features": kinds}, handle, indent=2, sort_keys=True)
    return kinds


def _classes(tft_output, features: FeaturesConfig) -> list[str] | None:
    """The multiclass label's classes in class-id order (TFT's vocabulary over train), else ``None``.

    Raises:
        ConfigError: A custom preprocessing module made no label vocabulary.
    """
    from components.common import tasks

    if features.task != tasks.MULTICLASS:
        return None
    name = tasks.label_vocabulary_file(features.label)
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in tft_output.vocabulary_by_name(name)]
    except (ValueError, OSError, KeyError):
        raise ConfigError("transform.module_file", [ConfigIssue(
            "transform.module_file", f"the multiclass label needs its classes as a TFT vocabulary named '{name}': "
            f"map the label with tft.compute_and_apply_vocabulary(label, num_oov_buckets=0, default_value=-1, "
            f"vocab_filename='{name}')")]) from None


def _feature_kinds(plan: dict | None, tft_output, features: FeaturesConfig) -> dict[str, dict[str, Any]]:
    import tensorflow as tf

    from components.transform import preprocessing

    if plan is not None:
        return preprocessing.feature_kinds(plan, tft_output)
    kinds: dict[str, dict[str, Any]] = {}
    domains = tft_output.transformed_domains()
    for name, spec in tft_output.transformed_feature_spec().items():
        if name == features.label:
            continue
        if spec.dtype == tf.float32:
            kinds[name] = {"kind": "numeric"}
        elif spec.dtype == tf.int64:
            domain = domains.get(name)
            if domain is None or not hasattr(domain, "is_categorical"):
                raise ConfigError("transform.module_file", [ConfigIssue(
                    "transform.module_file", f"integer output '{name}' has no known range; produce it with "
                    "tft.compute_and_apply_vocabulary, tft.bucketize or tft.apply_buckets, or cast it to float")])
            # ids run from domain.min (-1 for unseen values when there are no OOV buckets) to domain.max
            kinds[name] = {"kind": "categorical", "size": int(domain.max - min(domain.min, 0) + 1)}
            if domain.min < 0:
                kinds[name]["offset"] = int(-domain.min)
        else:
            raise ConfigError("transform.module_file", [ConfigIssue(
                "transform.module_file", f"output '{name}' is {spec.dtype.name}; the Trainer takes float32 or int64")])
    return kinds


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
