"""ExampleValidator: checks eval and test statistics against the schema and against train.

Schema checks are TFDV's (unexpected categorical values, missing features, wrong types ...). Drift
and skew between train and the other splits use TFDV's comparators: L-infinity distance for
categorical features and Jensen-Shannon divergence for numeric ones, at the thresholds of the
``validation`` section. With a curated schema the train split is validated against it too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

from components.common.artifacts import is_curated, load_split_stats
from pipeline.config import SPLITS, ComparatorThresholds, FeaturesConfig, Section, ValidationConfig
from pipeline.errors import DataValidationError
from pipeline.specs import ANOMALIES_FILE, ANOMALIES_SUMMARY_FILE, SCHEMA_FILE
from pipeline.table import markdown_table, text_table

ANOMALY_HEADERS = ("split", "feature", "anomaly", "description")
DRIFT_HEADERS = ("split", "feature", "measure", "value", "threshold")


@dataclass(frozen=True)
class Anomaly:
    """One problem TFDV found in a split."""

    split: str
    feature: str
    anomaly: str
    description: str


@dataclass(frozen=True)
class DriftMeasure:
    """One comparator measurement between train and another split."""

    split: str
    feature: str
    measure: str
    value: float
    threshold: float


@dataclass(frozen=True)
class ValidationResult:
    anomalies: list[Anomaly]
    measures: list[DriftMeasure]

    def table(self) -> str:
        return text_table(ANOMALY_HEADERS, [(a.split, a.feature, a.anomaly, a.description) for a in self.anomalies],
                          max_width=90)


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs ExampleValidator as a pipeline step; see ``run_example_validator``. Returns its figures.

    Raises:
        DataValidationError: Anomalies were found and ``validation.on_anomaly`` is ``fail``; the
            outputs are complete when it is raised.
    """
    validation: ValidationConfig = config["validation"]
    result = run_example_validator(inputs["statistics"], inputs["schema"], outputs["anomalies"],
                                   outputs["anomalies_report"], validation, config["features"])
    if result.anomalies:
        count = len(result.anomalies)
        message = (f"{count} data anomal{'y' if count == 1 else 'ies'} found "
                   f"(validation.on_anomaly: {validation.on_anomaly}):\n{result.table()}")
        if validation.on_anomaly == "fail":
            raise DataValidationError(message + "\nThe run stops before training. Fix the data, curate the schema "
                                      "(validation.schema), loosen validation.drift, or set validation.on_anomaly: warn.")
        progress("WARNING: " + message)
    return {"anomalies": len(result.anomalies), "comparisons": len(result.measures)}


def run_example_validator(statistics_dir: str, schema_dir: str, anomalies_dir: str, report_path: str,
                          validation: ValidationConfig, features: FeaturesConfig) -> ValidationResult:
    """Validates the splits' statistics.

    Args:
        statistics_dir: An ExampleStatistics artifact.
        schema_dir: A Schema artifact.
        anomalies_dir: Output ExampleAnomalies artifact: ``Split-<name>/SchemaDiff.pb`` (TFDV's
            Anomalies proto) per validated split and ``anomalies.json`` (every anomaly and drift
            measurement).
        report_path: Output Markdown file: the same as readable tables.
        validation: The ``validation`` section (thresholds, curated schema).
        features: The ``features`` section (which features are numeric or categorical).

    Returns:
        The anomalies and drift/skew measurements.
    """
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    schema = tfdv.load_schema_text(os.path.join(schema_dir, SCHEMA_FILE))
    _add_comparators(schema, features, validation.drift, "drift_comparator")
    if validation.skew is not None:
        _add_comparators(schema, features, validation.skew, "skew_comparator")
    train = load_split_stats(statistics_dir, SPLITS[0])
    # Inferred from train, the schema trivially holds there; a curated one may not.
    splits = SPLITS if is_curated(schema_dir) else SPLITS[1:]
    anomalies: list[Anomaly] = []
    measures: list[DriftMeasure] = []
    for split in splits:
        compare = split != SPLITS[0]
        # L-infinity and JSD are symmetric, so the split may stand in for "serving" data as well
        result = tfdv.validate_statistics(
            load_split_stats(statistics_dir, split), schema,
            previous_statistics=train if compare else None,
            serving_statistics=train if compare and validation.skew is not None else None)
        os.makedirs(os.path.join(anomalies_dir, f"Split-{split}"), exist_ok=True)
        with open(os.path.join(anomalies_dir, f"Split-{split}", ANOMALIES_FILE), "wb") as handle:
            handle.write(result.SerializeToString())
        for feature, info in sorted(result.anomaly_info.items()):
            for reason in info.reason:
                anomalies.append(Anomaly(split, feature, anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                                         reason.description or reason.short_description))
        if result.HasField("dataset_anomaly_info"):
            for reason in result.dataset_anomaly_info.reason:
                anomalies.append(Anomaly(split, "(dataset)", anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                                         reason.description or reason.short_description))
        for info in result.drift_skew_info:
            name = ".".join(info.path.step)
            for kind, items in (("drift", info.drift_measurements), ("skew", info.skew_measurements)):
                for m in items:
                    measure = f"{kind} {m.Type.Name(m.type).lower().replace('_', ' ')}"
                    measures.append(DriftMeasure(split, name, measure, round(m.value, 6), m.threshold))
    result = ValidationResult(anomalies, measures)
    with open(os.path.join(anomalies_dir, ANOMALIES_SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump({"anomalies": [asdict(a) for a in anomalies], "measures": [asdict(m) for m in measures],
                   "validated_splits": list(splits)}, handle, indent=2)
    _write_report(result, report_path, splits)
    return result


def _add_comparators(schema, features: FeaturesConfig, thresholds: ComparatorThresholds, field: str) -> None:
    import tensorflow_data_validation as tfdv

    present = {f.name for f in schema.feature}
    if thresholds.categorical_linf is not None:
        for name in features.categorical:
            if name in present:
                getattr(tfdv.get_feature(schema, name), field).infinity_norm.threshold = thresholds.categorical_linf
    if thresholds.numeric_jsd is not None:
        for name in features.numeric:
            if name in present:
                getattr(tfdv.get_feature(schema, name), field).jensen_shannon_divergence.threshold = thresholds.numeric_jsd


def _write_report(result: ValidationResult, report_path: str, splits: tuple[str, ...]) -> None:
    lines = ["# Data validation", "", f"Validated splits: {', '.join(splits)}.", ""]
    if result.anomalies:
        lines += [f"## {len(result.anomalies)} anomalies", "",
                  markdown_table(ANOMALY_HEADERS, [(a.split, a.feature, a.anomaly, a.description)
                                                   for a in result.anomalies]), ""]
    else:
        lines += ["No anomalies.", ""]
    if result.measures:
        lines += ["## Distribution comparisons with train", "",
                  markdown_table(DRIFT_HEADERS, [(m.split, m.feature, m.measure, f"{m.value:.4f}", f"{m.threshold:g}")
                                                 for m in result.measures]), ""]
    os.makedirs(os.path.dirname(report_path) or ".", exist_ok=True)
    with open(report_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
