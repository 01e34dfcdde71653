"""The BulkInferrer as a component: which model scores (the version the Pusher just pushed, or the one
``bulk_inference.model`` names), the predictions in its artifact and at ``bulk_inference.output``, and
the clear errors when there is no such model."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from components.bulk_inferrer.core import choose_model, execute
from pipeline.errors import ConfigError, DataError
from tests.components.conftest import features_config, make_outputs

pytestmark = pytest.mark.slow


def _config(destination: str | None, **bulk):
    from pipeline.config import BulkInferenceConfig, DataConfig, EvaluatorConfig, PusherConfig

    return {"bulk_inference": BulkInferenceConfig(**bulk), "data": DataConfig.model_validate({"source": "x.csv"}),
            "features": features_config(), "evaluator": EvaluatorConfig(), "pusher": PusherConfig(destination=destination)}


@pytest.fixture(scope="module")
def served(trained_model, tmp_path_factory):
    """The tiny model pushed twice (two versions) and a CSV of its own data to score."""
    from components.pusher.core import push
    from tests.components.pusher.models import bless

    root = tmp_path_factory.mktemp("bulk-component")
    destination = str(root / "serving")
    blessing = bless(root / "blessing", trained_model.model)
    evaluation = root / "evaluation"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({"slices": []}))
    first = push(trained_model.model, blessing, str(evaluation), destination)
    return {"destination": destination, "version": first["version"], "path": first["path"], "root": root}


def _csv(trained_model) -> str:
    import glob

    return glob.glob(os.path.join(os.path.dirname(os.path.dirname(trained_model.pipeline.examples)), "*.csv.gz"))[0]


def test_in_the_pipeline_the_version_just_pushed_scores_into_the_artifact(served, trained_model, tmp_path):
    pushed = tmp_path / "Pusher" / "pushed_model"
    pushed.mkdir(parents=True)
    (pushed / "push.json").write_text(json.dumps({"pushed": True, "version": served["version"],
                                                  "path": served["path"]}))
    outputs = make_outputs(str(tmp_path / "BulkInferrer"), ("predictions",))
    figures = execute({"pushed_model": str(pushed)}, outputs,
                      _config(served["destination"], source=_csv(trained_model), keep=["applicant_id"]))
    assert figures["model"] == f"version {served['version']} of {served['destination']}"
    assert figures["model_version"] == str(served["version"]) and figures["output"] == ""
    table = pq.read_table(os.path.join(outputs["predictions"], "predictions.parquet"))
    assert table.num_rows == figures["rows_scored"] == 600
    assert table.column_names == ["applicant_id", "probability", "predicted"]
    lineage = json.loads(open(os.path.join(outputs["predictions"], "predictions.parquet.lineage.json")).read())
    assert lineage["annotations"]["version"] == served["version"]
    assert lineage["model"]["fingerprint"] == figures["model_fingerprint"]
    assert len(figures["data_sha256"]) == 64 and lineage["inputs"][0]["sha256"] != figures["data_sha256"]


def test_an_output_file_gets_the_predictions_and_the_artifact_a_copy(served, trained_model, tmp_path):
    outputs = make_outputs(str(tmp_path / "BulkInferrer"), ("predictions",))
    target = str(tmp_path / "out" / "scores.csv")
    figures = execute({}, outputs, _config(served["destination"], source=_csv(trained_model),
                                            output=target, model=str(served["version"])))
    assert figures["output"] == target and figures["file"] == "scores.csv"
    with open(target, "rb") as mine, open(os.path.join(outputs["predictions"], "scores.csv"), "rb") as copy:
        assert mine.read() == copy.read()
    assert os.path.exists(target + ".lineage.json")
    assert os.path.exists(os.path.join(outputs["predictions"], "scores.csv.lineage.json"))


def test_which_model_latest_a_version_or_a_folder(served, trained_model):
    path, record = choose_model(None, "latest", _config(served["destination"])["pusher"])
    assert path == served["path"] and record["version"] == served["version"]
    path, record = choose_model(None, trained_model.model, _config(None)["pusher"])
    assert path == trained_model.model and record == {"model": f"the SavedModel in {trained_model.model}"}


@pytest.mark.parametrize("choice, destination, message", [
    ("latest", "empty", "no model serves in .*empty yet; push one"),
    ("7", "served", "has no version 7 \\(it has: \\d+\\)"),
    ("latest", None, "a version in pusher.destination, which is not set"),
    ("not-a-model", None, "not-a-model is not a SavedModel folder \\(no saved_model.pb\\)"),
])
def test_a_model_that_is_not_there_is_a_clear_error(served, tmp_path, choice, destination, message):
    where = {"empty": str(tmp_path / "empty"), "served": served["destination"], None: None}[destination]
    with pytest.raises(DataError, match=message):
        choose_model(None, choice, _config(where)["pusher"])


def test_a_push_record_without_a_model_or_no_source_is_a_clear_error(tmp_path):
    pushed = tmp_path / "pushed_model"
    pushed.mkdir()
    (pushed / "push.json").write_text(json.dumps({"pushed": False, "reason": "pusher.destination is not set"}))
    with pytest.raises(DataError, match="the Pusher pushed no model \\(pusher.destination is not set\\)"):
        choose_model(str(pushed), "latest", _config(None)["pusher"])
    outputs = make_outputs(str(tmp_path / "BulkInferrer"), ("predictions",))
    with pytest.raises(ConfigError, match="bulk_inference.source"):
        execute({}, outputs, _config(None))


def test_data_that_is_not_there_is_named_by_its_field(served, tmp_path):
    outputs = make_outputs(str(tmp_path / "BulkInferrer"), ("predictions",))
    with pytest.raises(DataError, match=r"^bulk_inference.source \(sluiceway predict --data\): .*missing.csv: no such "
                                        "file"):
        execute({}, outputs, _config(served["destination"], source=str(tmp_path / "missing.csv")))
