"""A component registered only in the tests (tests/pipeline/extra_components) runs in the local runner,
compiles and runs as kfp tasks, with no change to the runners, the compiler or the CLI: its verdict
is a value, and what depends on it is skipped."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from pipeline.cli import verdict_exit_code
from pipeline.compiler import compile_pipeline
from pipeline.kfp_local import run_with_kfp_local
from pipeline.loader import load_config
from pipeline.runner import RUN_FILE, run_pipeline
from tests.conftest import pipeline_yaml
from tests.pipeline.extra_components import PIPELINE
from tests.pipeline.extra_components.row_counter.core import MIN_ROWS_ENV

pytestmark = pytest.mark.slow


@pytest.fixture
def config_file(tmp_path, write_pipeline):
    from pipeline.datagen import generate

    data = str(tmp_path / "small.csv")
    generate(data, rows=600, seed=5)
    return write_pipeline(pipeline_yaml(data))


def _states(result) -> dict[str, str]:
    return {c.name: c.state for c in result.components}


def test_the_order_comes_from_the_inputs_and_a_bad_reference_is_refused_at_once():
    from pipeline.specs import Components, ComponentSpec, InputRef

    assert PIPELINE.names == ("ExampleGen", "RowCounter", "Announcer")
    typo = ComponentSpec(name="Broken", module="tests.pipeline.extra_components.announcer", doc="", sections=(),
                         inputs={"report": InputRef("RowCounter", "reprot")})
    with pytest.raises(ValueError, match="Broken.inputs.report: RowCounter has no output 'reprot'"):
        Components([*PIPELINE, typo])


def test_the_extra_component_runs_locally_and_its_negative_verdict_skips_what_depends_on_it(
        config_file, monkeypatch):
    config = load_config(config_file)
    lines: list[str] = []
    result = run_pipeline(config, config_file, components=PIPELINE, echo=lines.append)
    assert _states(result) == {"ExampleGen": "executed", "RowCounter": "executed", "Announcer": "executed"}
    assert result.status == "SUCCEEDED" and verdict_exit_code(result) == 0
    rows = result.outcome("RowCounter").figures["rows"]
    assert rows == result.outcome("ExampleGen").figures["rows_train"]
    announcement = os.path.join(result.outcome("Announcer").outputs["announcement"], "announcement.md")
    assert open(announcement).read() == f"{rows} rows: enough to train on\n"

    # the bound is not part of the config, so --no-cache makes the counter judge again
    monkeypatch.setenv(MIN_ROWS_ENV, str(rows + 1))
    blocked = run_pipeline(config, config_file, use_cache=False, components=PIPELINE, echo=lines.append)
    assert _states(blocked) == {"ExampleGen": "executed", "RowCounter": "executed", "Announcer": "skipped"}
    assert blocked.status == "BLOCKED"
    assert blocked.outcome("Announcer").skipped_because == "RowCounter.enough is false"
    assert [(b.component, b.reason) for b in blocked.blocked] == [
        ("RowCounter", f"{rows} training rows, fewer than {rows + 1}")]
    assert verdict_exit_code(blocked) == 7
    assert "[3/3] Announcer   skipped  (RowCounter.enough is false)" in lines

    # a verdict is cached like any result: the rerun reuses it and skips again
    again = run_pipeline(config, config_file, components=PIPELINE, echo=lines.append)
    assert _states(again) == {"ExampleGen": "cached", "RowCounter": "cached", "Announcer": "skipped"}
    assert again.outcome("RowCounter").figures["enough"] is False
    run_file = json.load(open(os.path.join(again.run_dir, RUN_FILE)))
    assert [c["state"] for c in run_file["components"]] == ["cached", "cached", "skipped"]
    assert run_file["blocked"][0]["exit_code"] == 7


def test_the_extra_component_compiles_with_its_condition(config_file, tmp_path):
    compiled = compile_pipeline(load_config(config_file), str(tmp_path / "extra.yaml"), components=PIPELINE)
    spec = next(yaml.safe_load_all(open(compiled)))
    counter = spec["components"]["comp-row-counter"]
    assert counter["outputDefinitions"]["parameters"]["enough"]["parameterType"] == "BOOLEAN"
    assert counter["outputDefinitions"]["artifacts"]["report"]["artifactType"]["schemaTitle"] == "system.Markdown"
    [condition] = [t for t in spec["root"]["dag"]["tasks"].values() if "triggerPolicy" in t]
    assert condition["taskInfo"]["name"] == "RowCounter-enough"
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert [t["taskInfo"]["name"] for t in inner.values()] == ["Announcer"]
    command = " ".join(spec["deploymentSpec"]["executors"]["exec-row-counter"]["container"]["command"])
    assert "run('RowCounter', locals(), 'tests.pipeline.extra_components')" in command


def test_the_extra_component_runs_as_kfp_tasks_with_the_same_states(config_file, monkeypatch):
    config = load_config(config_file)
    monkeypatch.setenv(MIN_ROWS_ENV, "1000000")   # the task subprocesses inherit it
    result = run_with_kfp_local(config, config_file, components=PIPELINE, echo=lambda _: None)
    assert _states(result) == {"ExampleGen": "executed", "RowCounter": "executed", "Announcer": "skipped"}
    assert result.outcome("RowCounter").figures["enough"] is False
    assert result.blocked[0].reason.endswith("fewer than 1000000")
    run_file = json.load(open(os.path.join(result.run_dir, RUN_FILE)))
    assert [c["state"] for c in run_file["components"]] == ["executed", "executed", "skipped"]
    report = os.path.join(result.outcome("RowCounter").outputs["report"])
    assert open(report).read().endswith(" training rows\n")
