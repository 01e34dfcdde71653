"""StatisticsGen, SchemaGen and ExampleValidator on small generated data (real TFDV, real Beam)."""

from __future__ import annotations

import json
import os

import pytest

from components.example_gen.core import run_example_gen
from components.example_validator import core as validator
from components.schema_gen.core import run_schema_gen
from components.statistics_gen.core import run_statistics_gen
from pipeline.config import BeamConfig, DataConfig, FeaturesConfig, ValidationConfig
from pipeline.errors import DataError, DataValidationError
from tests.conftest import QUICKSTART_SCHEMA

pytestmark = pytest.mark.slow

FEATURES = FeaturesConfig(
    label="approved", positive="yes",
    numeric=["age", "income", "credit_score", "loan_amount", "loan_term_months", "debt_to_income", "years_employed"],
    categorical=["employment_type", "education", "housing", "purpose", "region", "sex", "race"],
    sensitive=["sex", "race"])
LOOSE = {"drift": {"categorical_linf": 0.3, "numeric_jsd": 0.3}}


def _statistics(tmp_path_factory, drift: float) -> str:
    from pipeline.datagen import generate

    folder = tmp_path_factory.mktemp(f"stats-drift{drift:g}")
    data = str(folder / "credit.csv.gz")
    generate(data, rows=3000, seed=5, drift=drift)
    run_example_gen(DataConfig(source=data, split={"key": "applicant_id"}), FEATURES, str(folder / "examples"))
    run_statistics_gen(str(folder / "examples"), str(folder / "statistics"), str(folder / "view.html"), BeamConfig())
    return str(folder)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> str:
    return _statistics(tmp_path_factory, drift=0.0)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory) -> str:
    return _statistics(tmp_path_factory, drift=1.0)


def _validate(folder: str, tmp_path, validation: ValidationConfig):
    schema_dir = str(tmp_path / "schema")
    run_schema_gen(os.path.join(folder, "statistics"), schema_dir, validation)
    outputs = {"anomalies": str(tmp_path / "anomalies"), "anomalies_report": str(tmp_path / "report" / "anomalies.md")}
    inputs = {"statistics": os.path.join(folder, "statistics"), "schema": schema_dir}
    return inputs, outputs


def test_statistics_cover_every_split_and_the_html_view_compares_them(clean):
    import tensorflow_data_validation as tfdv

    from components.common.artifacts import stats_path

    counts = {}
    for split in ("train", "eval", "test"):
        stats = tfdv.load_stats_binary(stats_path(os.path.join(clean, "statistics"), split))
        counts[split] = stats.datasets[0].num_examples
        names = {".".join(f.path.step) for f in stats.datasets[0].features}
        assert {"age", "sex", "approved"} <= names
    assert sum(counts.values()) == 3000 and counts["train"] > counts["eval"] > 0
    page = open(os.path.join(clean, "view.html")).read()
    assert page.count("<facets-overview") == 2 and "train vs eval" in page and "train vs test" in page
    assert "<td>sex</td>" in page and "distinct, top" in page and "missing; mean" in page


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
    tight = ValidationConfig.model_validate({"drift": {"categorical_linf": 0.0001, "numeric_jsd": None}})
    inputs, outputs = _validate(clean, tmp_path, tight)
    result = validator.run_example_validator(inputs["statistics"], inputs["schema"], outputs["anomalies"],
                                             outputs["anomalies_report"], tight, FEATURES)
    drift = [a for a in result.anomalies if a.anomaly == "COMPARATOR_L_INFTY_HIGH"]
    assert {a.feature for a in drift} <= set(FEATURES.categorical) and len(drift) >= 2
    assert all(m.threshold == pytest.approx(0.0001) for m in result.measures)
    assert {m.feature for m in result.measures} <= set(FEATURES.categorical)  # numeric_jsd: null disables


def test_skew_comparators_are_applied_when_configured(clean, tmp_path):
    skew = ValidationConfig.model_validate({**LOOSE, "skew": {"categorical_linf": 0.0001, "numeric_jsd": None}})
    inputs, outputs = _validate(clean, tmp_path, skew)
    result = validator.run_example_validator(inputs["statistics"], inputs["schema"], outputs["anomalies"],
                                             outputs["anomalies_report"], skew, FEATURES)
    assert any(m.measure.startswith("skew") for m in result.measures)
    assert any(a.anomaly == "COMPARATOR_L_INFTY_HIGH" and "serving" in a.description for a in result.anomalies)


def test_a_missing_curated_schema_says_how_to_make_one(clean, tmp_path):
    validation = ValidationConfig.model_validate({"schema": str(tmp_path / "nope.pbtxt")})
    with pytest.raises(DataError, match="nope.pbtxt: no such file.*sluiceway infer-schema"):
        run_schema_gen(os.path.join(clean, "statistics"), str(tmp_path / "schema"), validation)
    (tmp_path / "bad.pbtxt").write_text("feature { nme: 'x' }")
    with pytest.raises(DataError, match="bad.pbtxt: not a text-format"):
        run_schema_gen(os.path.join(clean, "statistics"), str(tmp_path / "schema"),
                       ValidationConfig.model_validate({"schema": str(tmp_path / "bad.pbtxt")}))
