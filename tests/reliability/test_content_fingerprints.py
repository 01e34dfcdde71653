"""Artifact fingerprints are content fingerprints: a Trainer that re-executed and made the same model
(new files: TensorFlow names its traced functions anew on every export) records the same Model
fingerprint, so lineage says the two runs produced one model and the Evaluator stays cached."""

from __future__ import annotations

import os

import pytest

from pipeline.lineage import Lineage
from pipeline.loader import load_config
from pipeline.runner import pipeline_dir, run_pipeline
from tests.conftest import pipeline_yaml

pytestmark = pytest.mark.slow

SMALL_MODEL = """\
validation:
  drift: {categorical_linf: 0.3, numeric_jsd: 0.3}
trainer: {epochs: 2, hidden_units: [8], batch_size: 256}
evaluator:
  gates:
    - {metric: auc, min: 0.05}
"""


def test_a_re_executed_trainer_that_made_the_same_model_leaves_the_evaluator_cached(write_pipeline, credit_csv):
    config_file = write_pipeline(pipeline_yaml(credit_csv, extra=SMALL_MODEL))
    config = load_config(config_file)
    first = run_pipeline(config, config_file, until="Evaluator", echo=lambda _: None)
    assert first.outcome("Evaluator").state == "executed"
    first_model = first.outcome("Trainer").outputs["model"]
    # damage the Trainer's other output, so its execution is not reused and the Trainer runs again
    model_run = first.outcome("Trainer").outputs["model_run"]
    victim = next(os.path.join(d, f) for d, _, files in os.walk(model_run) for f in files)
    with open(victim, "ab") as handle:
        handle.write(b"\n")
    lines: list[str] = []
    second = run_pipeline(config, config_file, until="Evaluator", echo=lines.append)
    assert any("Trainer" in line and "not reused: output 'model_run'" in line for line in lines)
    assert second.outcome("Trainer").state == "executed"
    second_model = second.outcome("Trainer").outputs["model"]
    # the premise: the files differ (the graph's generated names), though the model is the same
    assert (open(os.path.join(first_model, "saved_model.pb"), "rb").read()
            != open(os.path.join(second_model, "saved_model.pb"), "rb").read())
    assert second.outcome("Evaluator").state == "cached"
    assert second.outcome("Evaluator").reused_from == first.run_id

    lineage = Lineage(pipeline_dir(config))
    models = {}
    for run in (first, second):
        context = lineage.run_context("test", run.run_id)
        executions = {e.id: e for e in lineage.executions_of_run(context)}
        events = lineage.store.get_events_by_execution_ids(list(executions))
        ids = [e.artifact_id for e in events if e.path.steps[0].key == "model" and e.type == e.OUTPUT]
        [artifact] = [a for a in lineage.store.get_artifacts_by_id(ids) if a.uri.endswith(os.path.join("Trainer", "model"))]
        models[run.run_id] = artifact
    one, two = models[first.run_id], models[second.run_id]
    assert one.uri != two.uri
    assert one.custom_properties["fingerprint"].string_value == two.custom_properties["fingerprint"].string_value
    # the files' own hash is kept beside it, and is what a cache hit checks the folder against
    assert (one.custom_properties["content_sha256"].string_value
            != two.custom_properties["content_sha256"].string_value)
