"""The quickstart with gradient-boosted trees (examples/quickstart/trees.yaml) end to end: the tree
model is pushed, and the pushed SavedModel, loaded in a fresh process as a serving user would,
scores raw examples the way the pipeline's evaluation saw them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from components.pusher.versions import versions
from pipeline.cli import main
from tests.conftest import QUICKSTART_SCHEMA, REPO

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SCORE_IN_A_FRESH_PROCESS = r"""
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow_decision_forests  # noqa: F401 - the tree ops, as the README tells serving users
import tensorflow as tf
from components.common.artifacts import split_file
from components.common.tfrecord import read_records
records = list(read_records(split_file(sys.argv[2], "eval")))
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
scores = serve(examples=tf.constant(records))["scores"].numpy().ravel().tolist()
labels = [tf.train.Example.FromString(r).features.feature["approved"].bytes_list.value[0].decode() for r in records]
print(json.dumps({"scores": scores, "labels": labels}))
"""


def test_a_tree_model_is_pushed_and_its_savedmodel_scores_as_the_evaluator_measured(tmp_path, capsys):
    from sklearn.metrics import roc_auc_score

    text = open(os.path.join(REPO, "examples", "quickstart", "trees.yaml")).read()
    text = text.replace("../../schemas/quickstart/schema.pbtxt", QUICKSTART_SCHEMA)
    assert QUICKSTART_SCHEMA in text
    config = tmp_path / "trees.yaml"
    config.write_text(text)
    assert main(["generate-data", "-o", str(tmp_path / "data" / "credit.csv.gz"), "--rows", "8000", "--seed", "7"]) == 0
    assert main(["run", str(config)]) == 0
    out = capsys.readouterr().out
    assert "gradient_boosted_trees, eval AUC" in out and "pushed=true" in out
    destination = str(tmp_path / "serving" / "credit")
    [version] = versions(destination)
    pushed = os.path.join(destination, str(version))
    [run] = [d for d in os.listdir(tmp_path / "pipelines" / "quickstart") if d[0].isdigit()]
    run_dir = tmp_path / "pipelines" / "quickstart" / run
    summary = json.load(open(run_dir / "Trainer" / "model_run" / "training.json"))
    assert summary["model"] == "gradient_boosted_trees" and 0 < summary["figures"]["trees"] <= 200
    evaluated = json.load(open(run_dir / "Evaluator" / "evaluation" / "metrics.json"))
    overall = next(s for s in evaluated["slices"] if s["slice"] == "overall")
    result = subprocess.run([sys.executable, "-c", SCORE_IN_A_FRESH_PROCESS, pushed, str(run_dir / "ExampleGen" /
                                                                                       "examples")],
                            capture_output=True, text=True, cwd=REPO, check=True)
    scored = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(scored["scores"]) == overall["size"]
    assert all(0.0 <= s <= 1.0 for s in scored["scores"])
    served_auc = roc_auc_score([label == "yes" for label in scored["labels"]], scored["scores"])
    assert served_auc > 0.75
    assert overall["metrics"]["auc"] == pytest.approx(served_auc, abs=2e-3)
