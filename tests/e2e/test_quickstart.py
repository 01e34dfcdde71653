"""The quickstart end to end through the CLI, as a newcomer runs it (on a copy in a tmp folder)."""

from __future__ import annotations

import glob
import json
import os
import re

import pytest

from pipeline.cli import main
from pipeline.specs import COMPONENTS
from tests.conftest import QUICKSTART_SCHEMA, REPO

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _quickstart_copy(tmp_path, rows: int = 20000, drift: float = 0.0, gates: str | None = None) -> str:
    text = open(os.path.join(REPO, "examples", "quickstart", "pipeline.yaml")).read()
    text = text.replace("../../schemas/quickstart/schema.pbtxt", QUICKSTART_SCHEMA)
    if gates is not None:  # small data: per-group rates are too noisy for the example's fairness bounds
        text = re.sub(r"evaluator:\n(  .*\n)+", gates, text)
    assert QUICKSTART_SCHEMA in text, "the quickstart no longer names the curated schema"
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    args = ["generate-data", "-o", str(tmp_path / "data" / "credit.csv.gz"), "--rows", str(rows), "--seed", "7"]
    assert main(args + ["--drift", str(drift)]) == 0
    return str(path)


def test_quickstart_runs_then_a_rerun_executes_nothing(tmp_path, capsys):
    config = _quickstart_copy(tmp_path)
    assert main(["run", config]) == 0
    out = capsys.readouterr().out
    count = len(COMPONENTS)
    assert out.count(" done ") == count and f"{count} executed, 0 cached" in out
    assert "Outputs: " + str(tmp_path / "pipelines" / "quickstart") in out
    # the model was proven servable before the push, with its latency figures shown
    serving = next(line for line in out.splitlines() if line.startswith("Serving check: "))
    assert serving.startswith("Serving check: passed (10 checks); loaded in ")
    assert "1 example: p50 " in serving and "100 examples: p50 " in serving and " ms, p99 " in serving
    assert "Pusher            done" in out and "pushed=true" in out
    assert main(["run", config]) == 0
    again = capsys.readouterr().out
    never_cached = [spec.name for spec in COMPONENTS if not spec.cache]
    assert never_cached == ["BaselineResolver"]
    assert (f"Nothing changed: all {count - 1} cacheable components reused cached outputs; BaselineResolver "
            "(never cached) ran again.") in again
    assert again.count(" done ") == 1 and "BaselineResolver  done" in again
    _predict_gives_the_evaluators_scores(tmp_path, config, capsys)


def _predict_gives_the_evaluators_scores(tmp_path, config: str, capsys) -> None:
    """`sluiceway predict` with the model just pushed, on the eval split's own file: the same scores as
    the Evaluator's for the same rows, with the lineage recorded."""
    import base64

    import pyarrow.parquet as pq
    import tensorflow as tf

    samples = glob.glob(str(tmp_path / "pipelines" / "quickstart" / "*" / "Evaluator" / "evaluation"
                            / "serving_sample.json"))
    with open(samples[0], encoding="utf-8") as handle:
        sample = json.load(handle)
    eval_file = glob.glob(str(tmp_path / "pipelines" / "quickstart" / "*" / "ExampleGen" / "examples" / "Split-eval"
                              / "*.tfrecord.gz"))[0]
    output = tmp_path / "scored" / "eval.parquet"
    assert main(["predict", config, "--data", eval_file, "-o", str(output), "--keep", "applicant_id"]) == 0
    out = capsys.readouterr().out
    [version] = os.listdir(tmp_path / "serving" / "credit")
    assert f"Predictions: 2,978 rows scored with version {version} of " in out
    table = pq.read_table(output)
    assert table.column_names == ["applicant_id", "probability", "predicted"]
    ids = [tf.train.Example.FromString(base64.b64decode(text)).features.feature["applicant_id"].bytes_list.value[0]
           .decode() for text in sample["examples"]]
    assert table.column("applicant_id").to_pylist()[:len(ids)] == ids       # the same rows, in order
    scored = table.column("probability").to_pylist()[:len(ids)]
    assert max(abs(a - b[0]) for a, b in zip(scored, sample["outputs"]["scores"])) <= 1e-6
    lineage = json.loads((tmp_path / "scored" / "eval.parquet.lineage.json").read_text())
    assert lineage["annotations"]["version"] == int(version) and lineage["rows"]["scored"] == 2978
    assert lineage["model"]["fingerprint"] == json.loads(
        (tmp_path / "serving" / "credit" / version / "sluiceway_manifest.json").read_text())["model_fingerprint"]
    # the run is recorded like any other, with which model and which data
    run_id = re.search(r"run (\S+) in ML Metadata", out).group(1)
    run = json.loads((tmp_path / "pipelines" / "quickstart" / run_id / "run.json").read_text())
    [bulk] = run["components"]
    assert bulk["name"] == "BulkInferrer" and bulk["figures"]["model_version"] == version
    assert bulk["figures"]["model_fingerprint"] == lineage["model"]["fingerprint"]
    assert len(bulk["figures"]["data_sha256"]) == 64
    # as a kfp task, the same predictions
    again = tmp_path / "scored" / "eval-kfp.parquet"
    assert main(["predict", config, "--data", eval_file, "-o", str(again), "--keep", "applicant_id",
                 "--runner", "kfp-local"]) == 0
    assert f"Predictions: 2,978 rows scored with version {version} of " in capsys.readouterr().out
    assert pq.read_table(again).equals(table)


def test_drifted_data_stops_the_run_at_validation_with_the_anomalies_listed(tmp_path, capsys):
    config = _quickstart_copy(tmp_path, rows=8000, drift=1.0)
    assert main(["run", config]) == 4
    captured = capsys.readouterr()
    assert f"[4/{len(COMPONENTS)}] ExampleValidator  FAILED" in captured.out
    assert "Transform" not in captured.out.split("FAILED")[1]  # nothing ran after the validator
    err = captured.err
    assert "ExampleValidator failed" in err and "The run stops before training" in err
    for value in ("gig_worker", "crypto", "overseas"):
        assert value in err
    # the evidence is kept: the anomalies report of the failed run is on disk
    reports = glob.glob(str(tmp_path / "pipelines" / "quickstart" / "*" / "ExampleValidator" / "anomalies_report"
                            / "anomalies.md"))
    assert len(reports) == 1 and "gig_worker" in open(reports[0]).read()


def test_kfp_local_runner_runs_the_compiled_components_with_the_same_results_and_states(tmp_path, capsys):
    # an impossible bound: both runners complete the Evaluator, skip the Pusher and exit 5
    config = _quickstart_copy(tmp_path, rows=4000, gates="evaluator:\n  gates:\n    - {metric: auc, min: 0.99}\n")
    assert main(["run", config]) == 5
    local_runs = glob.glob(str(tmp_path / "pipelines" / "quickstart" / "2*" / "run.json"))
    local = json.load(open(local_runs[0]))
    local_rows = local["components"][0]["figures"]
    capsys.readouterr()
    assert main(["run", config, "--runner", "kfp-local"]) == 5
    captured = capsys.readouterr()
    assert "kfp local run blocked: 10 executed, 1 skipped" in captured.out
    assert "error: Evaluator: the model is not pushed: 1 of 1 gate checks failed" in captured.err
    [run_dir] = glob.glob(str(tmp_path / "pipelines" / "quickstart" / "kfp-local" / "quickstart-*"))
    kfp_run = json.load(open(os.path.join(run_dir, "run.json")))
    states = {c["name"]: c["state"] for c in kfp_run["components"]}
    assert states == {c["name"]: c["state"] for c in local["components"]}
    assert states["Evaluator"] == "executed" and states["Pusher"] == "skipped"
    assert kfp_run["status"] == local["status"] == "BLOCKED"
    executor = json.load(open(os.path.join(run_dir, "example-gen", "executor_output.json")))
    kfp_rows = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    for split in ("train", "eval", "test"):
        assert kfp_rows[f"rows_{split}"] == local_rows[f"rows_{split}"]
    assert os.path.exists(os.path.join(run_dir, "example-validator", "anomalies_report"))
    local_schema = open(glob.glob(str(tmp_path / "pipelines" / "quickstart" / "2*" / "SchemaGen" / "schema"
                                      / "schema.pbtxt"))[0]).read()
    kfp_schema = open(os.path.join(run_dir, "schema-gen", "schema", "schema.pbtxt")).read()
    assert kfp_schema == local_schema
