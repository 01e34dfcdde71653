"""The Pusher on a tiny real SavedModel: versions, manifest, refusal, and a push killed midway."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from components.pusher.core import push
from tests.components.pusher.models import bless, save_model
from components.pusher.versions import MANIFEST_FILE, latest, versions
from pipeline.errors import GateFailed, SluicewayError


def _inputs(tmp_path, blessed: bool = True):
    model = save_model(tmp_path / "run" / "Trainer" / "model")
    blessing = bless(tmp_path / "blessing", model, blessed)
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({"slices": [{"slice": "overall", "metrics": {"auc": 0.8}}]}))
    return model, blessing, str(evaluation)


def _retrain(model: str, weights=(0.25, 1.5)) -> None:
    """The Trainer made another model in the same folder, and the Evaluator blessed it."""
    shutil.rmtree(model)
    save_model(model, weights)
    bless(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(model))), "blessing"), model)


def test_each_push_adds_a_version_with_a_manifest_and_keeps_the_others(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path)
    destination = str(tmp_path / "serving")
    first = push(model, blessing, evaluation, destination, fingerprints={"config_sha256": "abc"})
    _retrain(model)  # the next push is of another model
    second = push(model, blessing, evaluation, destination)
    assert versions(destination) == [first["version"], second["version"]] and second["version"] > first["version"]
    assert latest(destination) == os.path.join(destination, str(second["version"]))
    manifest = json.load(open(os.path.join(destination, str(first["version"]), MANIFEST_FILE)))
    assert manifest["version"] == first["version"] and manifest["metrics"] == {"auc": 0.8}
    assert manifest["gates"][0]["status"] == "pass" and manifest["config_sha256"] == "abc" and manifest["run"] == "run"
    latest_manifest = json.load(open(os.path.join(destination, str(second["version"]), MANIFEST_FILE)))
    blessed = json.load(open(os.path.join(blessing, "blessing.json")))["model_fingerprint"]
    assert latest_manifest["model_fingerprint"] == blessed != manifest["model_fingerprint"]
    assert latest_manifest["model_files"]["saved_model.pb"] == os.path.getsize(os.path.join(model, "saved_model.pb"))


def test_the_model_already_serving_is_not_pushed_again(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path)
    destination = str(tmp_path / "serving")
    first = push(model, blessing, evaluation, destination)
    again = push(model, blessing, evaluation, destination)
    assert again["pushed"] is False and again["version"] == first["version"]
    assert "already serves as version" in again["reason"] and versions(destination) == [first["version"]]
    manifest = json.load(open(os.path.join(destination, str(first["version"]), MANIFEST_FILE)))
    assert len(manifest["model_sha256"]) == 64


def test_a_model_that_is_not_blessed_is_never_pushed(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path, blessed=False)
    with pytest.raises(GateFailed, match="not blessed"):
        push(model, blessing, evaluation, str(tmp_path / "serving"))
    assert versions(str(tmp_path / "serving")) == []


def _infra_blessing(folder, model: str, serves: bool = True, fingerprint: str | None = None) -> str:
    """The InfraValidator's record of ``model`` (or of another model, by ``fingerprint``)."""
    from components.common.model_fingerprint import model_fingerprint
    from pipeline.specs import INFRA_BLESSING_FILE

    check = {"check": "loads in a clean process", "value": "3.0 s", "bound": "<= 120 s",
             "status": "pass" if serves else "FAIL", "detail": ""}
    os.makedirs(folder)
    with open(os.path.join(folder, INFRA_BLESSING_FILE), "w", encoding="utf-8") as handle:
        json.dump({"serves": serves, "model_fingerprint": fingerprint or model_fingerprint(model), "checks": [check],
                   "blocking": [] if serves else [check], "load_seconds": 3.0,
                   "latency": {"1": {"p50_ms": 1.0, "p99_ms": 2.0}}}, handle)
    return str(folder)


def test_a_model_that_failed_the_serving_check_is_never_pushed(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path)
    infra = _infra_blessing(tmp_path / "infra", model, serves=False)
    with pytest.raises(GateFailed, match=r"failed the serving check \(1 of 1 checks, .*infra_blessing.json\)"):
        push(model, blessing, evaluation, str(tmp_path / "serving"), infra_blessing_dir=infra)
    assert versions(str(tmp_path / "serving")) == []


def test_a_serving_check_of_another_model_does_not_let_this_one_through(tmp_path):
    from components.pusher.core import ModelNotPushed

    model, blessing, evaluation = _inputs(tmp_path)
    infra = _infra_blessing(tmp_path / "infra", model, fingerprint="0" * 64)
    with pytest.raises(ModelNotPushed, match="judged the model 0{64}, not this one"):
        push(model, blessing, evaluation, str(tmp_path / "serving"), infra_blessing_dir=infra)
    assert versions(str(tmp_path / "serving")) == []


def test_the_serving_check_goes_into_the_manifest(tmp_path):
    model, blessing, evaluation = _inputs(tmp_path)
    infra = _infra_blessing(tmp_path / "infra", model)
    pushed = push(model, blessing, evaluation, str(tmp_path / "serving"), infra_blessing_dir=infra)
    manifest = json.load(open(os.path.join(pushed["path"], MANIFEST_FILE)))
    assert manifest["serving_check"]["load_seconds"] == 3.0
    assert manifest["serving_check"]["latency"]["1"]["p99_ms"] == 2.0
    assert manifest["serving_check"]["checks"][0]["check"] == "loads in a clean process"


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
    _retrain(model)  # the next push is of another model
    before = {name: sorted(os.listdir(os.path.join(destination, name))) for name in os.listdir(destination)}
    killed = subprocess.run([sys.executable, "-c", _KILLED, model, blessing, evaluation, destination])
    assert killed.returncode == 9
    assert versions(destination) == [existing]  # no new version appeared, the old one is untouched
    assert {name: sorted(os.listdir(os.path.join(destination, name))) for name in os.listdir(destination)
            if name.isdigit()} == before
    leftovers = [name for name in os.listdir(destination) if not name.isdigit()]
    assert all(name.startswith(".tmp-") for name in leftovers)  # hidden, and not a version TF Serving loads



# --- a URL destination, on TensorFlow's in-memory file system: the code path gs:// takes, with no network


class Killed(Exception):
    """Stands for the process dying: nothing in the Pusher catches it, so nothing after it runs."""


@pytest.fixture
def ram_destination(request):
    """A fresh ``ram://`` destination (the in-memory file system lives as long as the test process)."""
    import tensorflow as tf

    root = f"ram://{request.node.name}"
    yield f"{root}/models/credit"
    if tf.io.gfile.exists(root):
        tf.io.gfile.rmtree(root)


def _files(url: str) -> dict[str, bytes]:
    """Every file under ``url`` by relative path, with its content."""
    import tensorflow as tf

    found = {}
    for folder, _, names in tf.io.gfile.walk(url):
        for name in names:
            with tf.io.gfile.GFile(f"{folder}/{name}", "rb") as handle:
                found[f"{folder}/{name}"[len(url) + 1:]] = handle.read()
    return found


def _local_files(folder: str) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


def test_a_url_destination_gets_numbered_versions_with_manifests(tmp_path, ram_destination):
    import tensorflow as tf

    model, blessing, evaluation = _inputs(tmp_path)
    first = push(model, blessing, evaluation, ram_destination, fingerprints={"config_sha256": "abc"})
    pushed_files = [_local_files(model)]
    _retrain(model)  # the next push is of another model
    second = push(model, blessing, evaluation, ram_destination + "/")  # a trailing slash changes nothing
    pushed_files.append(_local_files(model))

    assert versions(ram_destination) == [first["version"], second["version"]] and second["version"] > first["version"]
    assert latest(ram_destination) == f"{ram_destination}/{second['version']}" == second["path"]
    for version, local in zip(versions(ram_destination), pushed_files):
        files = _files(f"{ram_destination}/{version}")
        manifest = json.loads(files.pop(MANIFEST_FILE))
        assert files == local and manifest["version"] == version
    with tf.io.gfile.GFile(f"{first['path']}/{MANIFEST_FILE}") as handle:
        manifest = json.load(handle)
    assert manifest["config_sha256"] == "abc" and manifest["metrics"] == {"auc": 0.8}
    assert manifest["gates"][0]["status"] == "pass" and manifest["run"] == "run"
    # the temporary copies are gone once moved: TF Serving finds only the versions
    assert sorted(tf.io.gfile.listdir(ram_destination)) == sorted(str(v) for v in versions(ram_destination))


def test_on_a_url_saved_model_pb_then_the_manifest_appear_last(tmp_path, ram_destination, monkeypatch):
    import tensorflow as tf

    model, blessing, evaluation = _inputs(tmp_path)
    moved, real_rename = [], tf.io.gfile.rename

    def recording_rename(source, target, overwrite=False):
        moved.append((target.rsplit("/", 1)[-1], versions(ram_destination)))
        return real_rename(source, target, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", recording_rename)
    pushed = push(model, blessing, evaluation, ram_destination)

    assert [name for name, _ in moved][-1] == "saved_model.pb" and len(moved) == len(_local_files(model))
    assert all(seen == [] for _, seen in moved)  # not a version while its files are being moved in
    assert versions(ram_destination) == [pushed["version"]]


def test_a_url_push_killed_while_uploading_adds_no_version_and_keeps_the_others(tmp_path, ram_destination,
                                                                                monkeypatch):
    import tensorflow as tf

    model, blessing, evaluation = _inputs(tmp_path)
    existing = push(model, blessing, evaluation, ram_destination)["version"]
    _retrain(model)  # the next push is of another model
    before = _files(f"{ram_destination}/{existing}")
    copied, real_copy = [], tf.io.gfile.copy

    def copy_then_die(source, target, overwrite=False):
        copied.append(source)
        if len(copied) == 2:
            raise Killed()
        return real_copy(source, target, overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", copy_then_die)
    with pytest.raises(Killed):
        push(model, blessing, evaluation, ram_destination)
    monkeypatch.undo()

    assert versions(ram_destination) == [existing] and latest(ram_destination).endswith(f"/{existing}")
    assert _files(f"{ram_destination}/{existing}") == before
    leftovers = [name for name in tf.io.gfile.listdir(ram_destination) if name != str(existing)]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")  # hidden: not a folder TF Serving loads
    later = push(model, blessing, evaluation, ram_destination)["version"]
    assert versions(ram_destination) == [existing, later] and later > int(leftovers[0].split("-")[1])


def test_a_url_push_killed_while_moving_in_is_no_version_and_its_number_is_never_reused(tmp_path, ram_destination,
                                                                                        monkeypatch):
    import tensorflow as tf

    model, blessing, evaluation = _inputs(tmp_path)
    existing = push(model, blessing, evaluation, ram_destination)["version"]
    _retrain(model)  # the next push is of another model
    moved, real_rename = [], tf.io.gfile.rename

    def move_then_die(source, target, overwrite=False):
        moved.append(target)
        if len(moved) == 2:
            raise Killed()
        return real_rename(source, target, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", move_then_die)
    with pytest.raises(Killed):
        push(model, blessing, evaluation, ram_destination)
    monkeypatch.undo()
    [partial] = [name for name in tf.io.gfile.listdir(ram_destination) if name.isdigit() and name != str(existing)]
    left = _files(f"{ram_destination}/{partial}")
    assert len(left) == 1 and "saved_model.pb" not in left  # no saved_model.pb: not a SavedModel yet

    assert versions(ram_destination) == [existing] and latest(ram_destination).endswith(f"/{existing}")
    later = push(model, blessing, evaluation, ram_destination)["version"]
    assert later > int(partial) and versions(ram_destination) == [existing, later]
    assert _files(f"{ram_destination}/{partial}") == left  # the incomplete folder is neither reused nor deleted


def test_a_url_destination_that_cannot_be_written_is_a_clear_error(tmp_path, ram_destination, monkeypatch):
    import tensorflow as tf

    model, blessing, evaluation = _inputs(tmp_path)
    with pytest.raises(SluicewayError, match="cannot read pusher.destination nosuch://bucket/models: .*nosuch"):
        push(model, blessing, evaluation, "nosuch://bucket/models")  # a scheme no file system is registered for
    with pytest.raises(SluicewayError, match="cannot read pusher.destination nosuch://bucket/models"):
        versions("nosuch://bucket/models")

    def denied(*_, **__):
        raise tf.errors.PermissionDeniedError(None, None, "does not have storage.objects.create access")

    monkeypatch.setattr(tf.io.gfile, "copy", denied)  # what GCS answers a service account without write access
    with pytest.raises(SluicewayError, match=f"cannot write to pusher.destination {ram_destination}: "
                                             ".*storage.objects.create"):
        push(model, blessing, evaluation, ram_destination)
    assert versions(ram_destination) == []
