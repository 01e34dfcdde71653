"""The local runner: dependency order, caching, lineage in ML Metadata, failures and atomic outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.errors import ComponentFailed, DataError
from pipeline.lineage import Lineage
from pipeline.loader import load_config
from pipeline.runner import RUN_FILE, pipeline_dir, run_pipeline
from pipeline.specs import upstream_of
from tests.conftest import pipeline_yaml

pytestmark = pytest.mark.slow

# The runner's mechanics are tested on the data-validation half of the pipeline: it is quick, and the
# model components add nothing these tests look at (their own tests and the e2e tests run them).
UNTIL = "ExampleValidator"
NAMES = [spec.name for spec in upstream_of(UNTIL)]
LOOSE_DRIFT = """\
validation:
  drift: {categorical_linf: 0.3, numeric_jsd: 0.3}
"""


def _quiet(_line: str) -> None:
    pass


@pytest.fixture
def config_file(write_pipeline, credit_csv):
    return write_pipeline(pipeline_yaml(credit_csv, extra=LOOSE_DRIFT))


def _states(result) -> dict[str, str]:
    return {c.name: c.state for c in result.components}


def test_first_run_executes_every_component_in_order_and_writes_outputs(config_file):
    lines = []
    result = run_pipeline(load_config(config_file), config_file, until=UNTIL, echo=lines.append)
    assert result.status == "SUCCEEDED"
    assert [c.name for c in result.components] == NAMES
    assert set(_states(result).values()) == {"executed"}
    running = [line for line in lines if line.rstrip().endswith("running")]
    assert [next(n for n in NAMES if n in line) for line in running] == NAMES
    outputs = {f"{c.name}.{k}": v for c in result.components for k, v in c.outputs.items()}
    for key, path in outputs.items():
        component, output = key.split(".")
        assert path == os.path.join(result.run_dir, component, output)
    examples = outputs["ExampleGen.examples"]
    for split in ("train", "eval", "test"):
        assert os.path.getsize(os.path.join(examples, f"Split-{split}", "data-00000-of-00001.tfrecord.gz")) > 0
        assert os.path.exists(os.path.join(outputs["StatisticsGen.statistics"], f"Split-{split}", "FeatureStats.pb"))
    assert "facets" in open(os.path.join(outputs["StatisticsGen.statistics_view"], "statistics.html")).read()
    assert os.path.exists(os.path.join(outputs["SchemaGen.schema"], "schema.pbtxt"))
    assert json.load(open(os.path.join(outputs["ExampleValidator.anomalies"], "anomalies.json")))["anomalies"] == []
    figures = result.outcome("ExampleGen").figures
    assert figures["rows"] == 4000 == figures["rows_train"] + figures["rows_eval"] + figures["rows_test"]
    run_file = json.load(open(os.path.join(result.run_dir, RUN_FILE)))
    assert run_file["status"] == "SUCCEEDED" and [c["name"] for c in run_file["components"]] == NAMES


def test_rerun_with_nothing_changed_executes_no_component_and_says_so(config_file, capsys):
    first = run_pipeline(load_config(config_file), config_file, until=UNTIL, echo=_quiet)
    assert main(["run", config_file, "--until", UNTIL]) == 0
    out = capsys.readouterr().out
    assert "Nothing changed" in out and "no component executed" in out
    assert out.count("cached") >= len(NAMES)
    second = Lineage(pipeline_dir(load_config(config_file))).runs("test")[-1]
    assert second.figures["executed"] == 0 and second.figures["cached"] == len(NAMES)
    # the cached run points at the first run's outputs, and still reports their figures
    third = run_pipeline(load_config(config_file), config_file, until=UNTIL, echo=_quiet)
    assert set(_states(third).values()) == {"cached"}
    assert third.outcome("ExampleGen").outputs == first.outcome("ExampleGen").outputs
    assert third.outcome("ExampleGen").figures["rows"] == 4000


def test_no_cache_executes_everything(config_file):
    run_pipeline(load_config(config_file), config_file, until=UNTIL, echo=_quiet)
    result = run_pipeline(load_config(config_file), config_file, use_cache=False, until=UNTIL, echo=_quiet)
    assert set(_states(result).values()) == {"executed"}


def test_changing_a_config_section_reruns_only_the_components_that_read_it(config_file, write_pipeline, credit_csv):
    run_pipeline(load_config(config_file), config_file, until=UNTIL, echo=_quiet)
    changed = write_pipeline(pipeline_yaml(credit_csv, extra=LOOSE_DRIFT.replace("0.3}", "0.25}")))
    result = run_pipeline(load_config(changed), changed, until=UNTIL, echo=_quiet)
    assert _states(result) == {"ExampleGen": "cached", "StatisticsGen": "cached",
                               "SchemaGen": "executed", "ExampleValidator": "executed"}


def test_changed_data_invalidates_the_cache_from_example_gen_on(tmp_path, write_pipeline):
    from pipeline.datagen import generate

    data = str(tmp_path / "credit.csv")
    generate(data, rows=1500, seed=1)
    path = write_pipeline(pipeline_yaml(data, extra=LOOSE_DRIFT))
    run_pipeline(load_config(path), path, until=UNTIL, echo=_quiet)
    generate(data, rows=1500, seed=2)
    result = run_pipeline(load_config(path), path, until=UNTIL, echo=_quiet)
    assert _states(result)["ExampleGen"] == "executed"
    assert _states(result)["StatisticsGen"] == "executed"


def test_lineage_records_runs_executions_and_artifacts(config_file, capsys):
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    config = load_config(config_file)
    first = run_pipeline(config, config_file, until=UNTIL, echo=_quiet)
    second = run_pipeline(config, config_file, until=UNTIL, echo=_quiet)
    lineage = Lineage(pipeline_dir(config))
    runs = lineage.runs("test")
    assert [r.run_id for r in runs] == [first.run_id, second.run_id]
    assert all(r.status == "SUCCEEDED" for r in runs)
    assert runs[0].figures["ExampleGen.rows"] == 4000
    store = lineage.store
    for run, expected_state in ((first, mlmd.Execution.COMPLETE), (second, mlmd.Execution.CACHED)):
        context = lineage.run_context("test", run.run_id)
        executions = lineage.executions_of_run(context)
        assert len(executions) == len(NAMES)
        assert {e.last_known_state for e in executions} == {expected_state}
    # the validator's inputs are the statistics and schema artifacts the first run wrote
    validator = [e for e in lineage.executions_of_run(lineage.run_context("test", first.run_id))
                 if e.custom_properties["cache_key"].string_value and
                 store.get_execution_types_by_id([e.type_id])[0].name == "sluiceway.ExampleValidator"][0]
    events = store.get_events_by_execution_ids([validator.id])
    inputs = {e.path.steps[0].key: e.artifact_id for e in events if e.type == mlmd.Event.INPUT}
    uris = {a.id: a.uri for a in store.get_artifacts_by_id(list(inputs.values()))}
    assert uris[inputs["statistics"]] == first.outcome("StatisticsGen").outputs["statistics"]
    assert uris[inputs["schema"]] == first.outcome("SchemaGen").outputs["schema"]
    assert main(["runs", config_file]) == 0
    listing = capsys.readouterr().out
    assert first.run_id in listing and second.run_id in listing and "SUCCEEDED" in listing and "rows=4000" in listing


def test_a_failure_stops_downstream_names_the_component_and_is_recorded(tmp_path, write_pipeline, capsys):
    data = tmp_path / "header_only.csv"
    data.write_text("applicant_id,approved\n")
    path = write_pipeline(pipeline_yaml(str(data)))
    with pytest.raises(ComponentFailed) as failed:
        run_pipeline(load_config(path), path, until=UNTIL, echo=_quiet)
    assert failed.value.component == "ExampleGen"
    assert isinstance(failed.value.cause, DataError)
    run = Lineage(pipeline_dir(load_config(path))).runs("test")[-1]
    assert run.status == "FAILED"
    run_dir = os.path.join(pipeline_dir(load_config(path)), run.run_id)
    assert not os.path.exists(os.path.join(run_dir, "StatisticsGen"))
    assert json.load(open(os.path.join(run_dir, RUN_FILE)))["components"][1]["state"] == "not run"
    assert main(["run", path, "--until", UNTIL]) == 3
    err = capsys.readouterr().err
    assert "ExampleGen failed" in err and "header_only.csv" in err


_CRASH = """
import os, sys
import components.statistics_gen.core as core
def crash(inputs, outputs, config, progress):
    with open(os.path.join(outputs["statistics"], "partial.pb"), "wb") as handle:
        handle.write(b"half")
    os._exit(9)  # a hard crash: no exception handler, no cleanup
core.execute = crash
from pipeline.cli import main
main(["run", sys.argv[1], "--until", "ExampleValidator"])
"""


def test_a_hard_crash_leaves_no_output_that_looks_complete(config_file):
    crashed = subprocess.run([sys.executable, "-c", _CRASH, config_file], capture_output=True, text=True)
    assert crashed.returncode == 9
    config = load_config(config_file)
    run_dirs = [d for d in os.listdir(pipeline_dir(config)) if d[0].isdigit()]
    assert len(run_dirs) == 1
    component_dir = os.path.join(pipeline_dir(config), run_dirs[0], "StatisticsGen")
    assert not os.path.exists(os.path.join(component_dir, "statistics"))
    assert any(name.startswith(".tmp-statistics") for name in os.listdir(component_dir))
    result = run_pipeline(config, config_file, until=UNTIL, echo=_quiet)
    assert _states(result)["ExampleGen"] == "cached"
    assert _states(result)["StatisticsGen"] == "executed"
    assert not os.path.exists(os.path.join(result.outcome("StatisticsGen").outputs["statistics"], "partial.pb"))


def test_infer_schema_writes_a_schema_to_curate_and_never_overwrites_silently(config_file, tmp_path, capsys):
    target = tmp_path / "schemas" / "test" / "schema.pbtxt"
    assert main(["infer-schema", config_file, "-o", str(target)]) == 0
    text = target.read_text()
    assert 'name: "employment_type"' in text and 'string_domain' in text
    assert "Curate it" in capsys.readouterr().out
    target.write_text("# curated by hand\n" + text)
    assert main(["infer-schema", config_file, "-o", str(target)]) == 1
    assert "--force" in capsys.readouterr().err
    assert target.read_text().startswith("# curated by hand")
    assert main(["infer-schema", config_file, "-o", str(target), "--force"]) == 0
    assert not target.read_text().startswith("# curated by hand")


_SLOW = """
import signal, sys, time
# Ctrl-C's own handler, whatever this process inherited (a job started in the background has SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
import components.statistics_gen.core as core
def slow(inputs, outputs, config, progress):
    print("STATISTICS-STARTED", flush=True)
    time.sleep(300)
core.execute = slow
from pipeline.cli import main
sys.exit(main(["run", sys.argv[1], "--until", "ExampleValidator"]))
"""


@pytest.mark.parametrize("signal_name,exit_code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_run_is_recorded_as_cancelled_never_left_running(config_file, capsys, signal_name, exit_code):
    import signal

    from ml_metadata.proto import metadata_store_pb2 as mlmd

    process = subprocess.Popen([sys.executable, "-c", _SLOW, config_file], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "STATISTICS-STARTED" in line:
            break
    process.send_signal(getattr(signal, signal_name))
    out, err = process.communicate(timeout=120)
    assert process.returncode == exit_code
    assert f"StatisticsGen     CANCELLED" in out
    assert f"the run was cancelled ({signal_name}); a local run is recorded as failed (cancelled)" in err
    config = load_config(config_file)
    lineage = Lineage(pipeline_dir(config))
    [run] = lineage.runs("test")
    assert run.status == "FAILED" and run.figures["cancelled"] == signal_name
    executions = lineage.executions_of_run(lineage.run_context("test", run.run_id))
    statistics = [e for e in executions if e.custom_properties["error"].string_value]
    assert len(statistics) == 1 and statistics[0].last_known_state == mlmd.Execution.FAILED
    assert statistics[0].custom_properties["error"].string_value == f"cancelled ({signal_name})"
    run_file = json.load(open(os.path.join(pipeline_dir(config), run.run_id, RUN_FILE)))
    assert run_file["status"] == "FAILED" and run_file["components"][1]["state"] == "failed"
    assert main(["runs", config_file]) == 0
    assert f"FAILED (cancelled, {signal_name})" in capsys.readouterr().out


def test_a_damaged_cached_output_is_reported_and_its_component_re_executes(config_file):
    config = load_config(config_file)
    first = run_pipeline(config, config_file, until=UNTIL, echo=_quiet)
    stats = os.path.join(first.outcome("StatisticsGen").outputs["statistics"], "Split-eval", "FeatureStats.pb")
    size = os.path.getsize(stats)
    with open(stats, "r+b") as handle:   # truncated, as a full disk or a killed copy leaves it
        handle.truncate(size // 2)
    lines: list[str] = []
    second = run_pipeline(config, config_file, until=UNTIL, echo=lines.append)
    assert _states(second)["ExampleGen"] == "cached" and _states(second)["StatisticsGen"] == "executed"
    assert any(f"not reused: output 'statistics' of run {first.run_id} changed on disk "
               f"(Split-eval/FeatureStats.pb is {size // 2:,} bytes, was {size:,})" in line for line in lines)
    # the damaged execution is never offered again; the next run reuses the repaired outputs
    third = run_pipeline(config, config_file, until=UNTIL, echo=_quiet)
    assert set(_states(third).values()) == {"cached"}
    assert third.outcome("StatisticsGen").reused_from == second.run_id

    # a change that keeps every size is caught by the content hash
    schema = os.path.join(third.outcome("SchemaGen").outputs["schema"], "schema.pbtxt")
    text = open(schema).read()
    open(schema, "w").write(text.replace("feature", "featurE", 1))
    lines.clear()
    fourth = run_pipeline(config, config_file, until=UNTIL, echo=lines.append)
    assert _states(fourth)["StatisticsGen"] == "cached" and _states(fourth)["SchemaGen"] == "executed"
    assert any("output 'schema'" in line and "content differs" in line for line in lines)
    assert open(os.path.join(fourth.outcome("SchemaGen").outputs["schema"], "schema.pbtxt")).read() == text
    # and a deleted split by the file list
    examples = first.outcome("ExampleGen").outputs["examples"]
    os.remove(os.path.join(examples, "Split-eval", "data-00000-of-00001.tfrecord.gz"))
    lines.clear()
    fifth = run_pipeline(config, config_file, until=UNTIL, echo=lines.append)
    assert _states(fifth)["ExampleGen"] == "executed"
    assert any("Split-eval/data-00000-of-00001.tfrecord.gz is missing" in line for line in lines)
