"""The Monitor's core on the tiny model, pushed by the Pusher's core: logged requests without labels are
judged on drift alone, too few rows and nothing serving are clear errors, a damaged record of what the
model was trained on is refused, and every judgement is recorded beside the versions."""

from __future__ import annotations

import csv
import gzip
import json
import os

import pytest

from components.monitor.core import execute
from components.monitor.history import read as read_history
from components.monitor.reference import REFERENCE_DIR, NothingServes
from pipeline.errors import DataError, SluicewayError
from tests.components.conftest import ROWS, make_outputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(trained_model, tmp_path_factory):
    """The tiny model pushed to a destination, as the Pusher's core pushes it."""
    from components.common.model_fingerprint import model_fingerprint
    from components.evaluator.core import write_blessing
    from components.evaluator.gates import TfmaValidation
    from components.pusher.core import push, reference_files

    root = tmp_path_factory.mktemp("served")
    pipeline_root = os.path.dirname(os.path.dirname(trained_model.pipeline.examples))
    blessing, evaluation = str(root / "blessing"), str(root / "evaluation")
    write_blessing(blessing, [], [], TfmaValidation(), model_fingerprint(trained_model.model))
    os.makedirs(evaluation)
    with open(os.path.join(evaluation, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump({"slices": []}, handle)
    destination = str(root / "serving")
    reference = reference_files(evaluation, trained_model.pipeline.examples,
                                os.path.join(pipeline_root, "StatisticsGen", "statistics"),
                                os.path.join(pipeline_root, "SchemaGen", "schema"))
    record = push(trained_model.model, blessing, evaluation, destination, reference=reference)
    assert set(record["manifest"]["reference"]) == set(reference) and len(reference) == 4
    return destination, record


def _config(source: str, destination: str, **monitoring):
    from pipeline.config import (BeamConfig, DataConfig, EvaluatorConfig, MonitoringConfig, PusherConfig,
                                 ValidationConfig)
    from tests.components.conftest import features_config

    return {"monitoring": MonitoringConfig.model_validate({"source": source, "min_rows": 100, **monitoring}),
            "data": DataConfig.model_validate({"source": source}), "features": features_config(),
            "validation": ValidationConfig(), "evaluator": EvaluatorConfig(), "pusher": PusherConfig(
                destination=destination), "beam": BeamConfig()}


def _requests(path, rows: int, seed: int, drift: float = 0.0, keep_label: bool = False) -> str:
    """Generated rows as logged requests: the label column dropped unless ``keep_label``."""
    from pipeline.datagen import generate

    full = str(path) + ".full.csv.gz"
    generate(full, rows=rows, seed=seed, drift=drift)
    with gzip.open(full, "rt", newline="") as source, open(path, "w", newline="") as target:
        reader = csv.DictReader(source)
        names = [n for n in reader.fieldnames if keep_label or n != "approved"]
        writer = csv.DictWriter(target, names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(reader)
    return str(path)


def test_logged_requests_without_labels_are_judged_on_drift_only(served, tmp_path):
    destination, record = served
    source = _requests(tmp_path / "requests.csv", rows=ROWS, seed=40, drift=1.0)
    outputs = make_outputs(str(tmp_path / "run-1" / "Monitor"), ("findings",),
                           {"monitoring_report": "monitoring_report.html"})
    lines: list[str] = []
    figures = execute({}, outputs, _config(source, destination), lines.append)
    summary = json.load(open(os.path.join(outputs["findings"], "summary.json")))
    assert summary["data"]["labelled"] is False and summary["evaluation"] is None
    assert figures["verdict"] == "drifted" and figures["retrain"] is True and figures["fits"] is False
    assert "no approved column: drift only" in " ".join(lines)
    assert not any(a["feature"] == "approved" for a in summary["anomalies"])   # the absent label is no anomaly
    assert {m["feature"] for m in summary["drift"]} == {"age", "income", "credit_score", "debt_to_income",
                                                         "employment_type", "sex", "race"}
    drifted = {r["what"] for r in summary["reasons"] if r["kind"] in ("data_drift", "schema")}
    assert "employment_type" in drifted and "employment_type" in figures["reasons"]
    assert summary["serving"]["version"] == record["version"]
    page = open(outputs["monitoring_report"], encoding="utf-8").read()
    assert "employment_type" in page and "only drift was judged" in page
    [judged] = read_history(destination, version=record["version"])
    assert judged["run"] == "run-1" and judged["verdict"] == "drifted"


def test_data_like_the_training_data_with_labels_is_healthy_and_evaluated(served, tmp_path):
    destination, _ = served
    source = _requests(tmp_path / "labelled.csv", rows=ROWS, seed=41, keep_label=True)
    outputs = make_outputs(str(tmp_path / "run-2" / "Monitor"), ("findings",),
                           {"monitoring_report": "monitoring_report.html"})
    config = _config(source, destination, degradation=[{"max_drop": 0.5}])
    figures = execute({}, outputs, config, lambda _: None)
    summary = json.load(open(os.path.join(outputs["findings"], "summary.json")))
    assert summary["data"]["labelled"] is True and summary["evaluation"]["examples"] == ROWS
    assert figures["verdict"] == "healthy" and figures["fits"] is True and figures["reasons"] == ""
    # no figure was recorded at push for any slice here: the check says so rather than passing silently
    [check] = [c for c in summary["evaluation"]["checks"] if c["gate"].startswith("monitoring.degradation")]
    assert check["status"] == "no baseline" and "no figure at push" in check["detail"]


def test_too_few_rows_is_a_data_error_naming_the_count(served, tmp_path):
    destination, _ = served
    source = _requests(tmp_path / "few.csv", rows=40, seed=42)
    outputs = make_outputs(str(tmp_path / "run-3" / "Monitor"), ("findings",),
                           {"monitoring_report": "monitoring_report.html"})
    with pytest.raises(DataError, match=r"has 40 rows; monitoring.min_rows is 100"):
        execute({}, outputs, _config(source, destination), lambda _: None)


def test_nothing_serving_says_to_run_the_pipeline_first(tmp_path):
    source = _requests(tmp_path / "some.csv", rows=200, seed=43)
    outputs = make_outputs(str(tmp_path / "run-4" / "Monitor"), ("findings",),
                           {"monitoring_report": "monitoring_report.html"})
    with pytest.raises(NothingServes, match="no model serves in .* yet; run the pipeline"):
        execute({}, outputs, _config(source, str(tmp_path / "empty")), lambda _: None)


def test_a_damaged_training_record_is_refused(served, tmp_path):
    import shutil

    destination, record = served
    copy = str(tmp_path / "serving")
    shutil.copytree(destination, copy)
    with open(os.path.join(copy, str(record["version"]), REFERENCE_DIR, "schema.pbtxt"), "a") as handle:
        handle.write("\n# edited\n")
    source = _requests(tmp_path / "requests.csv", rows=200, seed=44)
    outputs = make_outputs(str(tmp_path / "run-5" / "Monitor"), ("findings",),
                           {"monitoring_report": "monitoring_report.html"})
    with pytest.raises(SluicewayError, match=r"schema.pbtxt of serving version \d+ has SHA-256 .* its manifest "
                                             "recorded"):
        execute({}, outputs, _config(source, copy), lambda _: None)
