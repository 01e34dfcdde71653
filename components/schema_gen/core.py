"""SchemaGen: the data schema, inferred from the train split or read from a curated file.

A curated ``schema.pbtxt`` (named by ``validation.schema``) is how a team pins what valid data looks
like: domains of categorical values, required features, value ranges. ``sluiceway infer-schema``
writes the inferred one as a starting point to curate.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Mapping

from components.common.artifacts import load_split_stats
from components.schema_gen import data_checks
from components.schema_gen.data_checks import DataChecks
from pipeline.config import SPLITS, EvaluatorConfig, FeaturesConfig, Section, ValidationConfig
from pipeline.errors import ConfigError, ConfigIssue, DataError
from pipeline.files import atomic_write_text
from pipeline.specs import SCHEMA_FILE, SCHEMA_SOURCE_FILE

#: What the data checks found, beside ``schema.pbtxt`` in the Schema artifact.
DATA_CHECKS_FILE = "data_checks.json"


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs SchemaGen as a pipeline step; see ``run_schema_gen`` and ``run_data_checks``. Returns its figures.

    Raises:
        ConfigError: A gate or slice of the ``evaluator`` section names a group or feature the data
            does not hold (found here, before anything is trained).
        DataError: A constant or all-missing feature and ``validation.on_constant: fail``.
    """
    validation: ValidationConfig = config["validation"]
    checks = run_data_checks(inputs["statistics"], config["evaluator"], config["features"])
    if checks.all_missing and not validation.schema_path:
        # TFDV infers a type from no values at all (a numeric column becomes STRING)
        raise DataError("the train split: " + "; ".join(checks.missing_warnings())
                        + "; an inferred schema cannot type such a feature (curate one with validation.schema, "
                        "or fix the data)")
    if checks.feature_warnings() and validation.on_constant == "fail":
        raise DataError("the train split: " + "; ".join(checks.feature_warnings())
                        + " (validation.on_constant: fail; set it to warn to go on)")
    schema = run_schema_gen(inputs["statistics"], outputs["schema"], validation)
    atomic_write_text(os.path.join(outputs["schema"], DATA_CHECKS_FILE), json.dumps(checks.as_dict(), indent=2))
    for line in checks.warnings():
        progress("WARNING: " + line)
    return {"features": len(schema.feature), "curated": bool(validation.schema_path),
            "constant_features": len(checks.constant), "all_missing_features": len(checks.all_missing),
            "absent_groups": sum(len(g) for g in checks.absent_groups.values())}


def run_data_checks(statistics_dir: str, evaluator: EvaluatorConfig, features: FeaturesConfig) -> DataChecks:
    """The checks of ``data_checks.py`` on the train split and the split the Evaluator evaluates."""
    return data_checks.check(load_split_stats(statistics_dir, SPLITS[0]).datasets[0],
                             load_split_stats(statistics_dir, evaluator.split).datasets[0], evaluator, features)


def infer_schema(statistics_dir: str):
    """Infers a schema from the train split's statistics (TFDV's ``infer_schema``)."""
    import tensorflow_data_validation as tfdv

    return tfdv.infer_schema(load_split_stats(statistics_dir, SPLITS[0]))


def check_curated_schema(path: str) -> None:
    """Checks a curated schema parses, without TFDV (the compiler calls this before embedding it).

    Raises:
        ConfigError: The file cannot be read or is not a text-format TFMD Schema.
    """
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    try:
        with open(path, encoding="utf-8") as handle:
            text_format.Parse(handle.read(), schema_pb2.Schema())
    except OSError as exc:
        raise ConfigError(path, [ConfigIssue("validation.schema", f"cannot read the curated schema: {exc}")]) from None
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigIssue("validation.schema", f"not a text-format TFMD Schema: {exc}")]) from None


def load_curated_schema(path: str):
    """Reads a curated ``schema.pbtxt``.

    Raises:
        DataError: The file is missing or is not a text-format TFMD Schema.
    """
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format

    if not os.path.isfile(path):
        raise DataError(f"validation.schema: {path}: no such file; expected a schema.pbtxt "
                        "(write one to curate with `sluiceway infer-schema PIPELINE.yaml`)")
    try:
        return tfdv.load_schema_text(path)
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise DataError(f"validation.schema: {path}: not a text-format TensorFlow Metadata Schema: {exc}") from None


def run_schema_gen(statistics_dir: str, schema_dir: str, validation: ValidationConfig):
    """Writes the pipeline's schema to ``<schema_dir>/schema.pbtxt``.

    Args:
        statistics_dir: An ExampleStatistics artifact.
        schema_dir: Output Schema artifact folder.
        validation: The ``validation`` section; its ``schema`` names a curated file, if any.

    Returns:
        The schema written (a ``tensorflow_metadata`` Schema proto).

    Raises:
        DataError: The curated schema is missing or malformed.
    """
    import tensorflow_data_validation as tfdv

    schema = (load_curated_schema(validation.schema_path) if validation.schema_path
              else infer_schema(statistics_dir))
    os.makedirs(schema_dir, exist_ok=True)
    tfdv.write_schema_text(schema, os.path.join(schema_dir, SCHEMA_FILE))
    with open(os.path.join(schema_dir, SCHEMA_SOURCE_FILE), "w", encoding="utf-8") as handle:
        json.dump({"curated": bool(validation.schema_path),
                   "source": validation.schema_path or "inferred from the train split's statistics"}, handle)
    return schema

