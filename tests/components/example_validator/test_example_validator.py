"""ExampleValidator on the statistics of small generated data, clean and drifted (real TFDV)."""

from __future__ import annotations

import json
import os

import pytest

from components.example_validator import core as validator
from components.schema_gen.core import run_schema_gen
from pipeline.config import ValidationConfig
from pipeline.errors import DataValidationError
from tests.components.statistics_gen.generated import FEATURES, generated_statistics
from tests.conftest import QUICKSTART_SCHEMA

pytestmark = pytest.mark.slow

LOOSE = {"drift": {"categorical_linf": 0.3, "numeric_jsd": 0.3}}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> str:
    return generated_statistics(tmp_path_factory, drift=0.0)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory) -> str:
    return generated_statistics(tmp_path_factory, drift=1.0)


def _validate(folder: str, tmp_path, validation: ValidationConfig):
    schema_dir = str(tmp_path / "schema")
    run_schema_gen(os.path.join(folder, "statistics"), schema_dir, validation)
    outputs = {"anomalies": str(tmp_path / "anomalies"), "anomalies_report": str(tmp_path / "report" / "anomalies.md")}
    inputs = {"statistics": os.path.join(folder, "statistics"), "schema": schema_dir}
    return inputs, outputs


def test_clean_data_has_no_anomalies_and_every_feature_is_compared(clean, tmp_path):
    inputs, outputs = _validate(clean, tmp_path, ValidationConfig.model_validate(LOOSE))
    figures = validator.execute(inputs, outputs, {"validation": ValidationConfig.model_validate(LOOSE),
                                                  "features": FEATURES})
    assert figures["anomalies"] == 0
    summary = json.load(open(os.path.join(outputs["anomalies"], "anomalies.json")))
    assert summary["validated_splits"] == ["eval", "test"]  # inferred from train: train is not re-checked
    measured = {(m["split"], m["feature"]) for m in summary["measures"]}
    assert measured == {(s, f) for s in ("eval", "test") for f in FEATURES.feature_names}
    assert "No anomalies." in open(outputs["anomalies_report"]).read()


def test_unseen_categories_against_a_curated_schema_fail_with_a_readable_table(drifted, tmp_path):
    validation = ValidationConfig.model_validate({**LOOSE, "schema": QUICKSTART_SCHEMA})
    inputs, outputs = _validate(drifted, tmp_path, validation)
    with pytest.raises(DataValidationError) as failed:
        validator.execute(inputs, outputs, {"validation": validation, "features": FEATURES})
    message = str(failed.value)
    assert "split  feature" in message and "anomaly" in message and "description" in message
    for feature, value in (("employment_type", "gig_worker"), ("purpose", "crypto"), ("region", "overseas")):
        assert feature in message and value in message
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in message
    summary = json.load(open(os.path.join(outputs["anomalies"], "anomalies.json")))
    assert summary["validated_splits"] == ["train", "eval", "test"]  # a curated schema checks train too
    assert {a["split"] for a in summary["anomalies"]} == {"train", "eval", "test"}
    report = open(outputs["anomalies_report"]).read()
    assert "| eval | employment_type | ENUM_TYPE_UNEXPECTED_STRING_VALUES |" in report


def test_on_anomaly_warn_reports_and_continues(drifted, tmp_path):
    validation = ValidationConfig.model_validate({**LOOSE, "schema": QUICKSTART_SCHEMA, "on_anomaly": "warn"})
    inputs, outputs = _validate(drifted, tmp_path, validation)
    lines = []
    figures = validator.execute(inputs, outputs, {"validation": validation, "features": FEATURES}, lines.append)
    assert figures["anomalies"] >= 9
    assert lines and lines[0].startswith("WARNING:") and "gig_worker" in lines[0]


def test_drift_thresholds_come_from_the_yaml(clean, tmp_path):
    # false_alarm_rate: null is TFDV's plain verdict: any distance above the threshold is drift
    tight = ValidationConfig.model_validate({"drift": {"categorical_linf": 0.0001, "numeric_jsd": None,
                                                       "false_alarm_rate": None}})
    inputs, outputs = _validate(clean, tmp_path, tight)
    result = validator.run_example_validator(inputs["statistics"], inputs["schema"], outputs["anomalies"],
                                             outputs["anomalies_report"], tight, FEATURES)
    drift = [a for a in result.anomalies if a.anomaly == "COMPARATOR_L_INFTY_HIGH"]
    assert {a.feature for a in drift} <= set(FEATURES.categorical) and len(drift) >= 2
    assert all(m.threshold == pytest.approx(0.0001) for m in result.measures)
    assert {m.feature for m in result.measures} <= set(FEATURES.categorical)  # numeric_jsd: null disables


def test_a_tight_threshold_on_clean_data_is_sampling_noise_not_drift(clean, tmp_path):
    tight = ValidationConfig.model_validate({"drift": {"categorical_linf": 0.0001, "numeric_jsd": 0.0001}})
    inputs, outputs = _validate(clean, tmp_path, tight)
    lines = []
    figures = validator.execute(inputs, outputs, {"validation": tight, "features": FEATURES}, lines.append)
    assert figures["anomalies"] == 0
    summary = json.load(open(os.path.join(outputs["anomalies"], "anomalies.json")))
    assert {m["decision"] for m in summary["measures"]} == {"sampling noise"}
    assert {m["test"] for m in summary["measures"]} == {"KS", "chi-square"}
    assert all(m["holm_p_value"] > 0.01 for m in summary["measures"])
    assert lines and "within sampling noise" in lines[0] and "loan_amount (eval" in lines[0]


def test_skew_comparators_are_applied_when_configured(clean, tmp_path):
    skew = ValidationConfig.model_validate({**LOOSE, "skew": {"categorical_linf": 0.0001, "numeric_jsd": None,
                                                              "false_alarm_rate": None}})
    inputs, outputs = _validate(clean, tmp_path, skew)
    result = validator.run_example_validator(inputs["statistics"], inputs["schema"], outputs["anomalies"],
                                             outputs["anomalies_report"], skew, FEATURES)
    assert any(m.measure.startswith("skew") for m in result.measures)
    assert any(a.anomaly == "COMPARATOR_L_INFTY_HIGH" and "serving" in a.description for a in result.anomalies)
