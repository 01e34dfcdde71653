"""A version pushed before the Pusher kept ``monitoring_reference/`` is traced through its run's
``run.json`` to what it was trained on; when that run is gone, the error says what to do."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from components.monitor.reference import REFERENCE_DIR, load_reference, serving_version
from pipeline.errors import SluicewayError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def old_push(trained_model, tmp_path_factory):
    """The tiny model pushed the way sluiceway pushed before the reference was kept, with the run
    record the local runner wrote beside it."""
    from components.common.model_fingerprint import model_fingerprint
    from components.evaluator.core import write_blessing
    from components.evaluator.gates import TfmaValidation
    from components.pusher.core import push

    root = tmp_path_factory.mktemp("old-push")
    run_dir = root / "pipelines" / "20261101-030000-abcd"
    model = run_dir / "Trainer" / "model"
    shutil.copytree(trained_model.model, model)
    blessing, evaluation = str(run_dir / "Evaluator" / "blessing"), str(run_dir / "Evaluator" / "evaluation")
    write_blessing(blessing, [], [], TfmaValidation(), model_fingerprint(str(model)))
    os.makedirs(evaluation)
    with open(os.path.join(evaluation, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump({"slices": [{"slice": "overall", "size": 90, "metrics": {"auc": 0.8}}]}, handle)
    record = push(str(model), blessing, evaluation, str(root / "serving"))   # no reference
    assert not os.path.exists(os.path.join(record["path"], REFERENCE_DIR)) and not record["manifest"]["reference"]
    half = os.path.dirname(os.path.dirname(trained_model.pipeline.examples))
    outputs = [("ExampleGen", {"examples": trained_model.pipeline.examples}),
               ("StatisticsGen", {"statistics": os.path.join(half, "StatisticsGen", "statistics")}),
               ("SchemaGen", {"schema": os.path.join(half, "SchemaGen", "schema")}),
               ("Evaluator", {"evaluation": evaluation})]
    with open(run_dir / "run.json", "w", encoding="utf-8") as handle:
        json.dump({"components": [{"name": name, "outputs": out} for name, out in outputs]}, handle)
    return root, record


def test_the_run_record_leads_to_what_the_model_was_trained_on(old_push):
    root, record = old_push
    serving = serving_version(str(root / "serving"))
    assert serving.version == record["version"] and serving.manifest["run"] == "20261101-030000-abcd"
    reference = load_reference(serving, str(root / "pipelines"))
    assert reference.where == "the outputs of run 20261101-030000-abcd"
    assert reference.train_statistics.datasets[0].num_examples > 0
    assert {f.name for f in reference.schema.feature} >= {"age", "sex", "approved"}
    assert reference.evaluation["slices"][0]["metrics"]["auc"] == 0.8
    assert reference.split_info["splits"]["train"]["rows"] > 0


def test_without_the_run_the_error_says_to_push_again(old_push, tmp_path):
    root, _ = old_push
    serving = serving_version(str(root / "serving"))
    with pytest.raises(SluicewayError, match=r"pushed without the record of what it was trained on .* its run "
                                             r"20261101-030000-abcd is not under .* Rerun the pipeline"):
        load_reference(serving, str(tmp_path))
