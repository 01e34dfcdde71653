"""The multiclass and regression examples end to end through the CLI, on generated data: each pushes
a model, then a strict gate blocks the next one with the check named; data made with a bias is
blocked by the example's fairness gate."""

from __future__ import annotations

import json
import os
import re

import pytest

from components.pusher.versions import versions
from pipeline.cli import main
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROWS = 10000
EXAMPLES = {
    # task: (folder, data file, label, strict gate, what the blocked check says)
    "multiclass": ("multiclass", "risk.csv.gz", "risk_tier", "{metric: macro_f1, min: 0.99}", "macro_f1 min 0.99"),
    "regression": ("regression", "rates.csv.gz", "interest_rate", "{metric: rmse, max: 0.01}", "rmse max 0.01"),
}
FAIRNESS_GATE = {"multiclass": "fairness false_negative_rate[low] across sex", "regression": "fairness mae across sex"}


def _example(tmp_path, task: str, bias: float = 0.0) -> str:
    folder, data, _, _, _ = EXAMPLES[task]
    text = open(os.path.join(REPO, "examples", folder, "pipeline.yaml")).read()
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    assert main(["generate-data", "--task", task, "-o", str(tmp_path / "data" / data), "--rows", str(ROWS),
                 "--seed", "7", "--bias", str(bias)]) == 0
    return str(path)


def _last_run(tmp_path, task: str):
    root = tmp_path / "pipelines" / EXAMPLES[task][0]
    return root / sorted(d for d in os.listdir(root) if d[0].isdigit())[-1]


@pytest.mark.parametrize("task", sorted(EXAMPLES))
def test_a_model_of_the_task_is_pushed_then_a_strict_gate_blocks_the_next(tmp_path, capsys, task):
    folder, _, label, strict, described = EXAMPLES[task]
    config = _example(tmp_path, task)
    assert main(["run", config]) == 0
    out = capsys.readouterr().out
    assert "pushed=true" in out
    destination = str(tmp_path / "serving" / os.path.basename(
        re.search(r"destination: (\S+)", open(config).read()).group(1)))
    [first] = versions(destination)
    run = _last_run(tmp_path, task)
    summary = json.load(open(run / "Trainer" / "model_run" / "training.json"))
    assert summary["task"] == task
    blessing = json.load(open(run / "Evaluator" / "blessing" / "blessing.json"))
    assert blessing["blessed"] and blessing["checks"]
    assert {c["status"] for c in blessing["checks"]} <= {"pass", "no baseline", "insufficient data"}

    text = open(config).read()
    text = re.sub(r"  gates:\n(    .*\n|  #.*\n)+", f"  gates:\n    - {strict}\n", text)
    open(config, "w").write(text)
    assert main(["run", config]) == 5
    captured = capsys.readouterr()
    assert "error: Evaluator: the model is not pushed: 1 of 1 gate checks failed" in captured.err
    assert described in captured.err and "overall" in captured.err
    assert versions(destination) == [first]  # the serving model stays


@pytest.mark.parametrize("task", sorted(EXAMPLES))
def test_biased_data_is_blocked_by_the_examples_fairness_gate(tmp_path, capsys, task):
    config = _example(tmp_path, task, bias=1.0)
    assert main(["run", config]) == 5
    err = capsys.readouterr().err
    [line] = [l for l in err.splitlines() if FAIRNESS_GATE[task] in l and "fail" in l]
    assert "sex=female" in line and "sex=male" in line
    blessing = json.load(open(_last_run(tmp_path, task) / "Evaluator" / "blessing" / "blessing.json"))
    assert not blessing["blessed"]
    assert all(FAIRNESS_GATE[task] in c["gate"] for c in blessing["blocking"])
