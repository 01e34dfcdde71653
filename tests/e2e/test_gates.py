"""Gated pushes end to end on generated data: a fair model is pushed, a biased one is blocked by the
fairness gate, a worse second model is blocked by the no-regression gate."""

from __future__ import annotations

import json
import os
import re

import pytest

from components.pusher.versions import MANIFEST_FILE, versions
from pipeline.cli import main
from tests.conftest import QUICKSTART_SCHEMA, REPO

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ONLY_REGRESSION_GATE = """evaluator:
  gates:
    - {no_regression: auc, max_drop: 0.01}
"""


def _pipeline(tmp_path, rows: int, bias: float = 0.0, gates: str | None = None) -> str:
    text = open(os.path.join(REPO, "examples", "quickstart", "pipeline.yaml")).read()
    text = text.replace("../../schemas/quickstart/schema.pbtxt", QUICKSTART_SCHEMA)
    if gates is not None:
        text = re.sub(r"evaluator:\n(  .*\n)+", gates, text)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    assert main(["generate-data", "-o", str(tmp_path / "data" / "credit.csv.gz"), "--rows", str(rows), "--seed", "7",
                 "--bias", str(bias)]) == 0
    return str(path)


def test_a_fair_model_is_pushed_and_a_worse_one_is_blocked_by_no_regression(tmp_path, capsys):
    config = _pipeline(tmp_path, rows=8000, gates=ONLY_REGRESSION_GATE)
    assert main(["run", config]) == 0
    out = capsys.readouterr().out
    assert "baseline=none" in out and "pushed=true" in out
    destination = str(tmp_path / "serving" / "credit")
    [first] = versions(destination)
    manifest = json.load(open(os.path.join(destination, str(first), MANIFEST_FILE)))
    assert manifest["gates"][0]["status"] == "no baseline" and manifest["data_sha256"]
    # on fair data the model hardly relies on sex: an attribution gate passes
    run = sorted(d for d in os.listdir(tmp_path / "pipelines" / "quickstart") if d[0].isdigit())[-1]
    fair = _attributions(tmp_path, run)
    assert fair["sensitive"]["sex"]["share"] < 0.05
    assert _attribution_check(fair).status == "pass"
    # every pushed version holds its model card, valid against the published schema
    card = json.load(open(os.path.join(destination, str(first), "model_card.json")))
    _validate_card(card)
    assert card["model_details"]["version"]["number"] == first
    # a second model, trained far worse, against the one now serving
    text = open(config).read() + "trainer:\n  epochs: 1\n  learning_rate: 0.00001\n  hidden_units: [4]\n"
    open(config, "w").write(text)
    assert main(["run", config]) == 5
    captured = capsys.readouterr()
    assert "error: Evaluator: the model is not pushed" in captured.err
    assert "Pusher skipped: Evaluator.blessed is false" in captured.out
    assert "no_regression auc" in captured.err and "overall" in captured.err
    assert versions(destination) == [first]  # nothing pushed, the serving model untouched
    runs = sorted(d for d in os.listdir(tmp_path / "pipelines" / "quickstart") if d[0].isdigit())
    blessing = json.load(open(tmp_path / "pipelines" / "quickstart" / runs[-1] / "Evaluator" / "blessing" /
                              "blessing.json"))
    [check] = blessing["blocking"]
    assert check["baseline"] == pytest.approx(manifest["metrics"]["auc"], abs=1e-6)
    assert check["value"] < check["baseline"] - 0.01 and check["status"] == "fail"


def test_a_biased_model_is_blocked_by_the_fairness_gate_and_the_report_shows_it(tmp_path, capsys):
    config = _pipeline(tmp_path, rows=8000, bias=1.0)
    assert main(["run", config]) == 5
    err = capsys.readouterr().err
    line = next(l for l in err.splitlines() if "fairness positive_rate across sex" in l)
    assert "sex=female vs sex=male" in line and ">= 0.8" in line and "fail" in line
    assert not os.path.exists(tmp_path / "serving" / "credit") or versions(str(tmp_path / "serving" / "credit")) == []
    runs = sorted(d for d in os.listdir(tmp_path / "pipelines" / "quickstart") if d[0].isdigit())
    blessing = json.load(open(tmp_path / "pipelines" / "quickstart" / runs[-1] / "Evaluator" / "blessing" /
                              "blessing.json"))
    ratio = next(c for c in blessing["blocking"] if c["metric"].startswith("positive_rate"))
    assert ratio["value"] < 0.8 and "sex=female" in ratio["detail"] and "sex=male" in ratio["detail"]
    # the verdict is a value: a rerun reuses the Evaluator's result, skips the Pusher again, and exits 5 again
    assert main(["run", config]) == 5
    rerun = capsys.readouterr()
    assert re.search(r"Evaluator +cached", rerun.out) and re.search(r"Pusher +skipped +\(Evaluator.blessed is false\)",
                                                                   rerun.out)
    assert "fairness positive_rate across sex" in rerun.err
    assert main(["runs", config]) == 0
    listing = capsys.readouterr().out
    blocked = [line for line in listing.splitlines() if "BLOCKED" in line]
    assert len(blocked) == 2 and all(" Pusher " in line and "blessed=False" in line for line in blocked)
    _check_the_report_shows_the_failing_gate(config, capsys)
    # the model relies on sex itself: its attribution share is visible and an attribution gate blocks it
    biased = _attributions(tmp_path, runs[-1])
    assert biased["sensitive"]["sex"]["share"] > 0.1 and biased["sensitive"]["sex"]["rank"] <= 3
    assert _attribution_check(biased).status == "fail"
    # a reviewer ships it anyway, on the record; a second approval does not push it twice
    destination = str(tmp_path / "serving" / "credit")
    capsys.readouterr()
    assert main(["approve", config, "--run", runs[-1], "--reason", "known gap, retraining scheduled",
                 "--by", "Dana Reviewer"]) == 0
    assert "approved by Dana Reviewer" in capsys.readouterr().out
    [version] = versions(destination)
    manifest = json.load(open(os.path.join(destination, str(version), MANIFEST_FILE)))
    assert manifest["approval"]["by"] == "Dana Reviewer" and manifest["approval"]["run"] == runs[-1]
    assert manifest["approval"]["failed_checks"] == blessing["blocking"]
    card = json.load(open(os.path.join(destination, str(version), "model_card.json")))
    _validate_card(card)
    assert card["model_details"]["approval"]["by"] == "Dana Reviewer"
    assert main(["approve", config, "--run", runs[-1], "--reason", "again"]) == 0
    assert "Nothing pushed" in capsys.readouterr().out and versions(destination) == [version]
    assert main(["card", config]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(destination, str(version), "model_card.html")


def _attributions(tmp_path, run: str) -> dict:
    return json.load(open(tmp_path / "pipelines" / "quickstart" / run / "Evaluator" / "evaluation" /
                          "attributions.json"))


def _attribution_check(attributions: dict):
    from components.evaluator import gates
    from pipeline.config import EvaluatorConfig

    evaluator = EvaluatorConfig.model_validate({"gates": [{"attribution": "sex", "max_share": 0.05}]})
    [check] = gates.evaluate(evaluator, [], None, gates.TfmaValidation(), attributions=attributions)
    return check


def _validate_card(card: dict) -> None:
    import jsonschema

    with open(os.path.join(REPO, "schemas", "model_card.schema.json")) as handle:
        jsonschema.validate(card, json.load(handle))


def _check_the_report_shows_the_failing_gate(config: str, capsys) -> None:
    from html.parser import HTMLParser

    capsys.readouterr()
    assert main(["report", config]) == 0
    path = capsys.readouterr().out.strip()
    assert path.endswith("fairness_report.html") and os.path.exists(path)
    page = open(path, encoding="utf-8").read()

    class Rows(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self._row, self._fail = [], None, False

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self._row, self._fail = [], dict(attrs).get("class") == "fail"

        def handle_data(self, data):
            if self._row is not None:
                self._row.append(data)

        def handle_endtag(self, tag):
            if tag == "tr" and self._row is not None:
                self.rows.append((self._fail, " ".join(self._row)))
                self._row = None

    parser = Rows()
    parser.feed(page)
    failing = [text for fail, text in parser.rows if fail]
    assert len(failing) == 1 and "positive_rate" in failing[0] and "sex=female vs sex=male" in failing[0]
    assert ">= 0.8" in failing[0]
    assert "Blocked: the model is not pushed" in page and "<svg" in page and "gate bound (min_ratio 0.8)" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "<script" not in page


BANDED_GATES = """evaluator:
  bands: {age: [30, 50]}
  slices: [[sex], [age]]
  gates:
    - {metric: auc, min: 0.99, per: [age]}
    - {fairness: positive_rate, feature: sex, max_gap: 0.5, reference: male}
"""


def test_gates_are_tfma_thresholds_and_age_bands_are_slices(tmp_path, capsys):
    import tensorflow_model_analysis as tfma

    config = _pipeline(tmp_path, rows=8000, gates=BANDED_GATES)
    assert main(["run", config]) == 5
    err = capsys.readouterr().err
    for band in ("age=<30", "age=[30,50)", "age=>=50"):
        assert band in err  # every band's AUC is under the impossible bound 0.99
    runs = sorted(d for d in os.listdir(tmp_path / "pipelines" / "quickstart") if d[0].isdigit())
    evaluator_dir = tmp_path / "pipelines" / "quickstart" / runs[-1] / "Evaluator"
    blessing = json.load(open(evaluator_dir / "blessing" / "blessing.json"))
    assert sorted(c["slice"] for c in blessing["blocking"]) == ["age=<30", "age=>=50", "age=[30,50)"]
    assert {c["decided_by"] for c in blessing["checks"]} == {"TFMA"}
    [pair] = [c for c in blessing["checks"] if c["gate"].startswith("gates[1]")]
    assert pair["slice"] == "sex=female vs sex=male" and pair["status"] == "pass"
    # TFMA's own validation result says the same, so it can be read without sluiceway
    validation = tfma.load_validation_result(str(evaluator_dir / "evaluation"))
    failed = {tuple(k.single_slice_keys[0].bytes_value.decode() for k in [v.slice_key])
              for v in validation.metric_validations_per_slice if v.HasField("slice_key")}
    assert failed == {("<30",), ("[30,50)",), (">=50",)}
    assert all(f.metric_key.name == "gate0_auc" for v in validation.metric_validations_per_slice for f in v.failures)
