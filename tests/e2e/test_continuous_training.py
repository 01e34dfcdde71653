"""Continuous training end to end on generated spans: train and push on span 1; a span like it is
healthy; a drifted span is named feature by feature and ``--retrain`` pushes a model trained on spans
2-3; concept drift degrades the serving model; label bias makes it unfair; ``sluiceway lineage`` tells
the retrained version's story."""

from __future__ import annotations

import json
import os
import re

import pytest

from components.pusher.versions import MANIFEST_FILE, versions
from pipeline.cli import main
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROWS = 6000


def _span(root, number: int, seed: int, **knobs) -> str:
    path = root / "data" / f"span-{number}" / "credit.csv.gz"
    args = ["generate-data", "-o", str(path), "--rows", str(ROWS), "--seed", str(seed)]
    for name, value in knobs.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    assert main(args) == 0
    return str(path)


def _config(root) -> str:
    """The example the README walks through (spans, window 2, the fairness and no-regression gates)."""
    text = open(os.path.join(REPO, "examples", "continuous", "pipeline.yaml")).read()
    path = root / "pipeline.yaml"
    path.write_text(text)
    return str(path)


def _summary(root) -> dict:
    """The summary of the latest monitor run, in-process or as a kfp task."""
    found = [path for pattern in ("*/Monitor/findings/summary.json", "kfp-local/*/monitor/findings/summary.json")
             for path in (root / "pipelines" / "continuous").glob(pattern)]
    assert found, "no monitor run"
    return json.loads(max(found, key=os.path.getmtime).read_text())


def test_monitor_judges_spans_and_retrains_through_the_gates(tmp_path, capsys):
    config = _config(tmp_path)
    destination = str(tmp_path / "serving" / "credit")
    _span(tmp_path, 1, seed=1)
    assert main(["run", config]) == 0
    [first] = versions(destination)
    manifest = json.load(open(os.path.join(destination, str(first), MANIFEST_FILE)))
    assert [s["number"] for s in manifest["spans"]] == [1]
    capsys.readouterr()

    # span 2, drawn like span 1: healthy, nothing retrains even with --retrain (the Monitor as a kfp task, as
    # Kubeflow runs it)
    _span(tmp_path, 2, seed=2)
    assert main(["monitor", config, "--retrain", "--runner", "kfp-local"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: healthy; no retraining due" in out and "Retraining on" not in out
    healthy = _summary(tmp_path)
    assert healthy["data"]["span"] == 2 and healthy["serving"]["version"] == first
    assert len(healthy["drift"]) == 14 and all(m["decision"] != "drift" for m in healthy["drift"])
    assert versions(destination) == [first]

    # span 3 with feature drift: drifted, the features named with their distances; --retrain on spans 2-3
    _span(tmp_path, 3, seed=3, drift=1)
    assert main(["monitor", config, "--retrain"]) == 0   # retrained, and the new model was pushed
    out = capsys.readouterr().out
    drifted = _summary(tmp_path)
    assert drifted["verdict"] == "drifted" and drifted["retrain"]
    named = {m["feature"]: m for m in drifted["drift"] if m["decision"] == "drift"}
    assert {"employment_type", "purpose", "region"} <= set(named)
    for feature, measure in named.items():
        assert re.search(rf"{feature}\s+\w+\s+[\w -]+?\s+{measure['value']:.4f}\s+{measure['threshold']:g}.*drift",
                         out), feature
    assert "Verdict: drifted; retraining is due" in out
    assert "Retraining on spans 2-3 of" in out and "(data.window 2)" in out
    first_again, second = versions(destination)
    assert first_again == first and f"Retrained: version {second} now serves, replacing {first}" in out
    manifest = json.load(open(os.path.join(destination, str(second), MANIFEST_FILE)))
    assert [s["number"] for s in manifest["spans"]] == [2, 3]
    regression = [c for c in manifest["gates"] if c["gate"].startswith("gates[2]")]
    assert regression and all(c["status"] == "pass" and c["baseline"] is not None for c in regression)

    # lineage of the retrained version: spans 2-3, the verdict that triggered it, the version it replaced
    assert main(["lineage", config, "--version", str(second)]) == 0
    out = capsys.readouterr().out
    assert "spans 2-3:" in out and "(serving now)" in out
    assert f"triggered by:    monitor run {drifted['run']}: drifted" in out
    assert f"replaced:        {first}" in out
    assert main(["lineage", config, "--version", str(first), "--json"]) == 0
    older = json.loads(capsys.readouterr().out)
    assert older["replaced_by"] == second and [r["verdict"] for r in older["monitor_runs"]] == ["healthy", "drifted"]

    # logged requests with labels whose relationship to the features changed: degraded, the drop shown
    logs = tmp_path / "logs"
    assert main(["generate-data", "-o", str(logs / "concept.csv"), "--rows", str(ROWS), "--seed", "4",
                 "--concept-drift", "1"]) == 0
    assert main(["monitor", config, "--data", str(logs / "concept.csv")]) == 6
    out = capsys.readouterr().out
    degraded = _summary(tmp_path)
    assert degraded["verdict"] == "degraded" and degraded["serving"]["version"] == second
    [overall] = [m for m in degraded["evaluation"]["metrics"] if m["slice"] == "overall" and m["metric"] == "auc"]
    assert overall["at_push"] - overall["now"] > 0.2
    assert re.search(rf"overall\s+[\d,]+\s+{overall['at_push']:.4f}\s+{overall['now']:.4f}\s+{overall['change']:+.4f}",
                     out)
    assert "monitoring.degradation: auc max_drop 0.05" in out
    assert versions(destination) == [first, second]   # without --retrain nothing is trained

    # labels biased against women: the serving model is no longer fair by the fairness gate
    assert main(["generate-data", "-o", str(logs / "bias.csv"), "--rows", str(ROWS), "--seed", "5",
                 "--bias", "2"]) == 0
    assert main(["monitor", config, "--data", str(logs / "bias.csv")]) == 6
    out = capsys.readouterr().out
    unfair = _summary(tmp_path)
    failed = [r for r in unfair["reasons"] if r["kind"] == "fairness"]
    assert failed and all("false_positive_rate" in r["what"] and r["triggers_retrain"] for r in failed)
    [gate] = unfair["evaluation"]["fairness"]
    assert gate["status"] == "fail" and set(gate["groups"]) == {"female", "male"}
    assert gate["groups"]["female"]["now"] - gate["groups"]["male"]["now"] > 0.15
    assert "fairness" in out and "gates[1] fairness false_positive_rate across sex" in out
    report = os.path.join(tmp_path, "pipelines", "continuous", unfair["run"], "Monitor", "monitoring_report",
                          "monitoring_report.html")
    page = open(report, encoding="utf-8").read()
    assert "degraded" in page and "false_positive_rate" in page
    assert [h["verdict"] for h in unfair["history"]] == ["healthy", "drifted", "degraded", unfair["verdict"]]
