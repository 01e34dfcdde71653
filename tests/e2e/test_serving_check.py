"""The serving check end to end: a model whose serving path raises on a new category passes every gate
and is still not pushed."""

from __future__ import annotations

import os

import pytest

from pipeline.cli import main
from tests.e2e.test_quickstart import _quickstart_copy

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

GATES = "evaluator:\n  gates:\n    - {metric: auc, min: 0.7}\n"


def test_a_model_whose_serving_path_raises_is_blocked_and_nothing_is_pushed(tmp_path, capsys):
    config = _quickstart_copy(tmp_path, rows=6000, gates=GATES)
    module = os.path.join(os.path.dirname(__file__), "fragile_preprocessing.py")
    with open(config, "a", encoding="utf-8") as handle:
        handle.write(f"\ntransform:\n  module_file: {module}\n")
    assert main(["run", config]) == 5
    captured = capsys.readouterr()
    assert "blessed=true" in captured.out                     # every gate passed
    assert "Pusher skipped: InfraValidator.serves is false" in captured.out
    err = captured.err
    assert "error: InfraValidator: the model is not pushed: 1 of 10 serving checks failed:" in err
    failed = next(line for line in err.splitlines() if "answers a category train never had" in line)
    assert "6 of 7 features" in failed and failed.rstrip().endswith("FAIL")
    assert "\n  answers a category train never had: purpose: InvalidArgumentError at node " in err
    assert "assertion failed: [purpose holds a value train never had]" in err
    assert not os.path.exists(tmp_path / "serving" / "credit") or not os.listdir(tmp_path / "serving" / "credit")
