"""The Pusher on a stand-in model folder: versions, manifest, refusal, and a push killed midway."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from components.pusher.core import push
from components.pusher.versions import MANIFEST_FILE, latest, versions
from pipeline.errors import GateFailed, SluicewayError


def _inputs(tmp_path, blessed: bool = True):
    model = tmp_path / "run" / "Trainer" / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph" * 1000)
    (model / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(200_000))
    blessing = tmp_path / "blessing"
    blessing.mkdir()
    check = {"gate": "gates[0] auc min 0.7 overall", "slice": "overall", "metric": "auc", "value": 0.8,
             "bound": ">= 0.7", "baseline": None, "status": "pass" if blessed else "fail", "detail": ""}
    (blessing / "blessing.json").write_text(json.dumps(
        {"blessed": blessed, "checks": [check], "blocking": [] if blessed else [check]}))
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({"slices": [{"slice": "overall", "metrics": {"auc": 0.8}}]}))
    return str(model), str(blessing), str(evaluation)


def test_each_push_adds_a_version_with_a_manifest_and_keeps_the_others(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path)
    destination = str(tmp_path / "serving")
    first = push(model, blessing, evaluation, destination, fingerprints={"config_sha256": "abc"})
    second = push(model, blessing, evaluation, destination)
    assert versions(destination) == [first["version"], second["version"]] and second["version"] > first["version"]
    assert latest(destination) == os.path.join(destination, str(second["version"]))
    manifest = json.load(open(os.path.join(destination, str(first["version"]), MANIFEST_FILE)))
    assert manifest["version"] == first["version"] and manifest["metrics"] == {"auc": 0.8}
    assert manifest["gates"][0]["status"] == "pass" and manifest["config_sha256"] == "abc" and manifest["run"] == "run"
    for version in versions(destination):
        assert open(os.path.join(destination, str(version), "saved_model.pb"), "rb").read() == b"graph" * 1000


def test_a_model_that_is_not_blessed_is_never_pushed(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path, blessed=False)
    with pytest.raises(GateFailed, match="not blessed"):
        push(model, blessing, evaluation, str(tmp_path / "serving"))
    assert versions(str(tmp_path / "serving")) == []


def test_an_unwritable_destination_is_a_clear_error(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(SluicewayError, match="cannot write to pusher.destination .*a-file/serving"):
        push(model, blessing, evaluation, str(tmp_path / "a-file" / "serving"))


_KILLED = """
import os, shutil, sys
from components.pusher import core
real_copy = shutil.copyfile  # copytree copies each file through copy2 -> copyfile
copied = []
def copy_then_die(src, dst, *args, **kwargs):
    copied.append(src)
    if len(copied) == 2:
        os._exit(9)  # killed midway through copying the model
    return real_copy(src, dst, *args, **kwargs)
shutil.copyfile = copy_then_die
core.push(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
"""


def test_a_push_killed_midway_leaves_the_destination_as_it_was(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path)
    destination = str(tmp_path / "serving")
    existing = push(model, blessing, evaluation, destination)["version"]
    before = {name: sorted(os.listdir(os.path.join(destination, name))) for name in os.listdir(destination)}
    killed = subprocess.run([sys.executable, "-c", _KILLED, model, blessing, evaluation, destination])
    assert killed.returncode == 9
    assert versions(destination) == [existing]  # no new version appeared, the old one is untouched
    assert {name: sorted(os.listdir(os.path.join(destination, name))) for name in os.listdir(destination)
            if name.isdigit()} == before
    leftovers = [name for name in os.listdir(destination) if not name.isdigit()]
    assert all(name.startswith(".tmp-") for name in leftovers)  # hidden, and not a version TF Serving loads
