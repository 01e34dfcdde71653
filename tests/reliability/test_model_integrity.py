"""Issue 10: a model that is not the evaluated one is never pushed, and a damaged serving version never
breaks later runs.

The fast tests use tiny real SavedModels (``tests.components.pusher.models``); the slow ones the
Trainer's and the Evaluator's cores on the tiny pipeline of ``tests.components.conftest``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from components.baseline_resolver.core import execute as resolve_baseline
from components.common.model_fingerprint import ModelUnreadable, model_fingerprint
from components.pusher.core import ModelNotPushed, push
from components.pusher.versions import MANIFEST_FILE, latest, versions
from pipeline.config import EvaluatorConfig, PusherConfig
from pipeline.errors import SluicewayError
from pipeline.files import file_sha256, tree_sha256
from pipeline.specs import SPLIT_INFO_FILE
from tests.components.conftest import (features_config, make_outputs, read_json, run_trainer_core,  # noqa: F401
                                       tiny_pipeline, trained_model)
from tests.components.pusher.models import DATA_FILE, bless, save_model, truncate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _evaluation(folder) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump({"slices": [{"slice": "overall", "metrics": {"auc": 0.8}}]}, handle)
    return str(folder)


def _files(folder) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


def _serving(tmp_path) -> tuple[str, int, dict]:
    """A destination where a first model serves: its path, version and files."""
    destination = str(tmp_path / "serving")
    model = save_model(tmp_path / "first" / "Trainer" / "model", (0.9, 0.1))
    version = push(model, bless(tmp_path / "first" / "blessing", model), _evaluation(tmp_path / "first" / "eval"),
                   destination)["version"]
    return destination, version, _files(os.path.join(destination, str(version)))


def _unchanged(destination: str, version: int, files: dict) -> None:
    """Nothing was pushed: the one version is as it was, and no temporary copy or lock is left."""
    assert versions(destination) == [version] and os.listdir(destination) == [str(version)]
    assert _files(os.path.join(destination, str(version))) == files


# --- (a) a model damaged or replaced after its evaluation


def test_a_model_truncated_after_evaluation_is_refused_and_the_serving_version_stays(tmp_path):
    destination, serving, files = _serving(tmp_path)
    model = save_model(tmp_path / "run" / "Trainer" / "model")
    blessing = bless(tmp_path / "run" / "blessing", model)
    judged = read_json(os.path.join(blessing, "blessing.json"))["model_fingerprint"]
    (tmp_path / "read-only").write_text("a file where the destination's folder should be")
    with pytest.raises(SluicewayError, match="cannot write to pusher.destination"):  # the first push fails
        push(model, blessing, _evaluation(tmp_path / "eval"), str(tmp_path / "read-only" / "serving"))
    truncate(os.path.join(model, DATA_FILE))  # then the model is damaged; its blessing is reused

    with pytest.raises(ModelNotPushed) as refused:
        push(model, blessing, _evaluation(tmp_path / "eval"), destination)
    message = str(refused.value)
    assert message.startswith(f"Pusher: cannot read the model in {model}: its variables (variables/variables.*) "
                              "cannot be read: ")
    assert f"it is not the model the Evaluator blessed (fingerprint {judged})" in message
    assert f"Nothing was pushed and the serving version ({destination}/{serving}) is unchanged" in message
    assert "rerun the pipeline" in message
    _unchanged(destination, serving, files)


def test_a_model_replaced_after_evaluation_is_refused_naming_both_fingerprints(tmp_path):
    destination, serving, files = _serving(tmp_path)
    model = save_model(tmp_path / "run" / "Trainer" / "model")
    blessing = bless(tmp_path / "run" / "blessing", model)
    judged = model_fingerprint(model)
    shutil.rmtree(model)
    save_model(model, (0.5, -0.99))  # another model in its place, readable and loadable
    with pytest.raises(ModelNotPushed) as refused:
        push(model, blessing, _evaluation(tmp_path / "eval"), destination)
    assert str(refused.value) == (
        f"Pusher: the model in {model} is not the model the Evaluator blessed: its fingerprint is "
        f"{model_fingerprint(model)}, the blessing ({blessing}/blessing.json) judged {judged}. The model changed "
        f"after evaluation; nothing was pushed and the serving version ({destination}/{serving}) is unchanged. "
        "Rerun the pipeline so that the model is evaluated as it is now")
    _unchanged(destination, serving, files)


def test_a_blessing_that_names_no_model_is_refused(tmp_path):
    destination, serving, files = _serving(tmp_path)
    model = save_model(tmp_path / "run" / "Trainer" / "model")
    blessing = bless(tmp_path / "run" / "blessing", model)
    record = read_json(os.path.join(blessing, "blessing.json"))
    del record["model_fingerprint"]  # as the Evaluator wrote it before this check
    (tmp_path / "run" / "blessing" / "blessing.json").write_text(json.dumps(record))
    with pytest.raises(ModelNotPushed, match="does not say which model it judged .*Rerun the pipeline"):
        push(model, blessing, _evaluation(tmp_path / "eval"), destination)
    _unchanged(destination, serving, files)


def test_the_pusher_component_refuses_too_and_writes_no_push_record(tmp_path):
    """Through ``execute``, as the runners call it: the error, not a push record saying it pushed."""
    from components.pusher.core import execute
    from pipeline.config import DataConfig, EvaluatorConfig, TrainerConfig, TransformConfig, TunerConfig

    destination, serving, files = _serving(tmp_path)
    model = save_model(tmp_path / "run" / "Trainer" / "model")
    blessing = bless(tmp_path / "run" / "blessing", model)
    truncate(os.path.join(model, DATA_FILE), 0)
    outputs = make_outputs(str(tmp_path / "Pusher"), ("pushed_model",))
    examples = tmp_path / "ExampleGen" / "examples"
    examples.mkdir(parents=True)
    (examples / SPLIT_INFO_FILE).write_text(json.dumps({"source_sha256": {"credit.csv": "abc"}}))
    statistics, schema = tmp_path / "StatisticsGen" / "statistics", tmp_path / "SchemaGen" / "schema"
    statistics.mkdir(parents=True)
    schema.mkdir(parents=True)
    config = {"pusher": PusherConfig(destination=destination), "features": features_config(),
              "data": DataConfig.model_validate({"source": "x.csv"}), "transform": TransformConfig(),
              "tuner": TunerConfig(), "trainer": TrainerConfig(), "evaluator": EvaluatorConfig()}
    with pytest.raises(ModelNotPushed, match="cannot read the model in .*nothing was pushed|Nothing was pushed"):
        execute({"model": model, "blessing": blessing, "evaluation": _evaluation(tmp_path / "eval"),
                 "examples": str(examples), "statistics": str(statistics), "schema": str(schema)},
                outputs, config)
    assert not os.path.exists(os.path.join(outputs["pushed_model"], "push.json"))
    _unchanged(destination, serving, files)


# --- (b) a copy that does not load


def _mismatched_model(tmp_path) -> str:
    """A model whose graph wants two units and whose variables have three: every file reads, the
    fingerprint is computable, but TensorFlow cannot restore it."""
    model = save_model(tmp_path / "run" / "Trainer" / "model", units=2)
    other = save_model(tmp_path / "other", units=3)
    shutil.rmtree(os.path.join(model, "variables"))
    shutil.copytree(os.path.join(other, "variables"), os.path.join(model, "variables"))
    return model


def test_a_model_that_cannot_load_is_not_pushed_and_its_copy_is_removed(tmp_path):
    destination, serving, files = _serving(tmp_path)
    model = _mismatched_model(tmp_path)
    blessing = bless(tmp_path / "run" / "blessing", model)  # its fingerprint matches: only loading tells
    lines: list[str] = []
    with pytest.raises(ModelNotPushed) as refused:
        push(model, blessing, _evaluation(tmp_path / "eval"), destination, lines.append)
    message = str(refused.value)
    assert message.startswith(f"Pusher: the copy of the model in {destination}/.tmp-")
    assert "cannot be served: tf.saved_model.load fails: " in message
    assert message.endswith(f"The copy was removed; nothing was pushed and the serving version "
                            f"({destination}/{serving}) is unchanged")
    _unchanged(destination, serving, files)


def test_a_model_without_a_serving_default_signature_is_not_pushed(tmp_path):
    destination, serving, files = _serving(tmp_path)
    model = save_model(tmp_path / "run" / "Trainer" / "model", signature="predict")
    with pytest.raises(ModelNotPushed, match=r"cannot be served: it has no serving_default signature \(it has "
                                             r"predict\)\. The copy was removed"):
        push(model, bless(tmp_path / "run" / "blessing", model), _evaluation(tmp_path / "eval"), destination)
    _unchanged(destination, serving, files)


def test_an_unreadable_model_is_a_clear_error_for_each_damage(tmp_path):
    model = save_model(tmp_path / "model")
    data = os.path.join(model, DATA_FILE)
    content = open(data, "rb").read()
    flipped = bytearray(content)
    flipped[len(flipped) // 2] ^= 0xFF
    open(data, "wb").write(bytes(flipped))  # same size, one byte changed: TensorFlow's checksum catches it
    with pytest.raises(ModelUnreadable, match=r"cannot read the model in .*: its variables \(variables/variables\.\*\) "
                                              "cannot be read: .*"):
        model_fingerprint(model)
    open(data, "wb").write(content)
    os.rename(os.path.join(model, "saved_model.pb"), os.path.join(tmp_path, "saved_model.pb"))
    with pytest.raises(ModelUnreadable, match=f"cannot read the model in {model}: saved_model.pb is missing"):
        model_fingerprint(model)
    open(os.path.join(model, "saved_model.pb"), "wb").write(b"not a protocol buffer")
    with pytest.raises(ModelUnreadable, match="saved_model.pb is not a valid SavedModel file"):
        model_fingerprint(model)
    os.remove(os.path.join(model, "variables", "variables.index"))
    with pytest.raises(ModelUnreadable, match="variables/variables.index is missing"):
        model_fingerprint(model)


# --- (c) the same weights exported twice: one fingerprint, pushed once


def test_two_exports_of_the_same_weights_share_a_fingerprint_and_are_pushed_once(tmp_path):
    first = save_model(tmp_path / "a" / "Trainer" / "model")
    again = save_model(tmp_path / "b" / "Trainer" / "model")  # a re-executed Trainer: the same weights
    assert file_sha256(os.path.join(first, "saved_model.pb")) != file_sha256(os.path.join(again, "saved_model.pb"))
    assert tree_sha256(first) != tree_sha256(again)
    assert model_fingerprint(first) == model_fingerprint(again)
    assert model_fingerprint(save_model(tmp_path / "c", (0.5, -0.999))) != model_fingerprint(first)
    assert model_fingerprint(save_model(tmp_path / "d", vocabulary=("employed", "retired"))) != \
        model_fingerprint(first)

    destination = str(tmp_path / "serving")
    pushed = push(first, bless(tmp_path / "a" / "blessing", first), _evaluation(tmp_path / "eval"), destination)
    lines: list[str] = []
    second = push(again, bless(tmp_path / "b" / "blessing", again), _evaluation(tmp_path / "eval"), destination,
                  lines.append)
    assert second == {"pushed": False, "reason": f"the same model already serves as version {pushed['version']}",
                      "version": pushed["version"], "path": os.path.join(destination, str(pushed["version"]))}
    assert versions(destination) == [pushed["version"]]
    assert lines == [f"this model is already serving as {destination}/{pushed['version']}; nothing pushed"]


def test_a_version_pushed_before_fingerprints_is_still_recognised(tmp_path):
    """An older manifest has only ``model_sha256`` (its files' content): the same weights exported again
    differ there, and are recognised by the fingerprint read from the version's files."""
    destination = tmp_path / "serving"
    old = save_model(destination / "1700000000")
    legacy = {"version": 1700000000, "model_sha256": tree_sha256(old)}
    (destination / "1700000000" / MANIFEST_FILE).write_text(json.dumps(legacy))
    model = save_model(tmp_path / "run" / "Trainer" / "model")
    result = push(model, bless(tmp_path / "run" / "blessing", model), _evaluation(tmp_path / "eval"), str(destination))
    assert result["pushed"] is False and result["version"] == 1700000000
    assert versions(str(destination)) == [1700000000]


@pytest.mark.slow
def test_the_trainer_run_twice_exports_one_fingerprint_in_different_files(trained_model, tmp_path):
    outputs, _, _ = run_trainer_core(trained_model.pipeline, trained_model.hyperparameters, str(tmp_path / "again"))
    first, again = trained_model.model, outputs["model"]
    assert file_sha256(os.path.join(first, "saved_model.pb")) != file_sha256(os.path.join(again, "saved_model.pb"))
    assert model_fingerprint(first) == model_fingerprint(again)
    started = time.perf_counter()
    model_fingerprint(first)
    print(f"fingerprint of the tiny Trainer model: {time.perf_counter() - started:.3f} s")


# --- (d) a serving version that cannot be loaded


def test_a_damaged_serving_version_is_named_by_the_resolver_and_replaced_by_the_next_push(tmp_path):
    destination, serving, _ = _serving(tmp_path)
    broken = os.path.join(destination, str(serving))
    truncate(os.path.join(broken, DATA_FILE), 100)
    model = save_model(tmp_path / "run" / "Trainer" / "model", (0.9, 0.1))  # the very model that was pushed

    lines: list[str] = []
    config = {"pusher": PusherConfig(destination=destination),
              "evaluator": EvaluatorConfig.model_validate({"gates": [{"no_regression": "auc", "max_drop": 0.01}]})}
    out = tmp_path / "resolver" / "baseline.json"
    figures = resolve_baseline({"model": model}, {"baseline": str(out)}, config, lines.append)
    assert figures["baseline"] == "none" and figures["unusable_versions"] == str(serving)
    assert lines[0].startswith(f"version {serving} in pusher.destination ({broken}) cannot serve: "
                               "variables/variables.data-00000-of-00001 is 100 bytes, was ")
    assert "remove that folder" in lines[0]
    assert json.loads(out.read_text())["serving"] is False

    # the same model again is not "already serving": the damaged version is replaced by a new one
    pushed = push(model, bless(tmp_path / "run" / "blessing", model), _evaluation(tmp_path / "eval"), destination)
    assert pushed["pushed"] is True and latest(destination) == pushed["path"] and pushed["version"] > serving
    figures = resolve_baseline({"model": model}, {"baseline": str(out)}, config, lines.append)
    assert figures == {"baseline": "none", "no_baseline_because": f"the candidate itself serves as {pushed['path']}"}


def test_a_damaged_version_at_a_url_is_named_too(tmp_path):
    """On an object store (here TensorFlow's in-memory one, the code path of gs://) the version is read
    through TensorFlow's file systems and compared with the fingerprint its manifest records."""
    import tensorflow as tf

    destination = "ram://integrity/models/credit"
    model = save_model(tmp_path / "run" / "Trainer" / "model")
    try:
        pushed = push(model, bless(tmp_path / "run" / "blessing", model), _evaluation(tmp_path / "eval"), destination)
        data = f"{pushed['path']}/{DATA_FILE}"
        with tf.io.gfile.GFile(data, "rb") as handle:
            content = handle.read()
        tf.io.gfile.remove(data)  # ram:// appends to a file opened for writing: write it anew
        with tf.io.gfile.GFile(data, "wb") as handle:
            handle.write(content[:len(content) // 2])
        lines: list[str] = []
        config = {"pusher": PusherConfig(destination=destination), "evaluator": EvaluatorConfig.model_validate(
            {"gates": [{"no_regression": "auc", "max_drop": 0.01}]})}
        figures = resolve_baseline({"model": model}, {"baseline": str(tmp_path / "out" / "baseline.json")}, config,
                                   lines.append)
        assert figures["unusable_versions"] == str(pushed["version"])
        assert lines[0].startswith(f"version {pushed['version']} in pusher.destination ({pushed['path']}) cannot "
                                   "serve: its variables (variables/variables.*) cannot be read: ")
    finally:
        tf.io.gfile.rmtree("ram://integrity")


@pytest.mark.slow
def test_a_damaged_serving_version_does_not_break_the_evaluator(trained_model, tmp_path):
    """The run after the damage: the resolver skips the version, and the Evaluator completes with
    the no-regression gate saying it had no baseline (it failed in TFMA with a traceback before)."""
    from components.evaluator.core import execute as evaluate
    from pipeline.config import BeamConfig

    destination = tmp_path / "serving"
    shutil.copytree(trained_model.model, destination / "1700000000")
    (destination / "1700000000" / MANIFEST_FILE).write_text(json.dumps(
        {"version": 1700000000, "model_sha256": tree_sha256(trained_model.model)}))  # an older sluiceway's push
    truncate(str(destination / "1700000000" / DATA_FILE))
    candidate = str(tmp_path / "run" / "Trainer" / "model")
    shutil.copytree(trained_model.model, candidate)
    gates = {"gates": [{"no_regression": "auc", "max_drop": 0.01}, {"metric": "auc", "min": 0.05}]}
    config = {"pusher": PusherConfig(destination=str(destination)), "evaluator": EvaluatorConfig.model_validate(gates),
              "features": features_config(), "beam": BeamConfig()}
    baseline = make_outputs(str(tmp_path / "BaselineResolver"), files={"baseline": "baseline.json"})
    lines: list[str] = []
    figures = resolve_baseline({"model": candidate}, baseline, config, lines.append)
    assert figures["unusable_versions"] == "1700000000" and "cannot serve: its variables" in lines[0]

    outputs = make_outputs(str(tmp_path / "Evaluator"), ("evaluation", "blessing"),
                           {"evaluation_report": "evaluation.md", "fairness_report": "fairness_report.html"})
    result = evaluate({"examples": trained_model.pipeline.examples, "model": candidate,
                       "baseline": baseline["baseline"]}, outputs, config)
    blessing = read_json(os.path.join(outputs["blessing"], "blessing.json"))
    assert result["baseline"] == "none" and blessing["model_fingerprint"] == model_fingerprint(candidate)
    regression = [c for c in blessing["checks"] if c["gate"].startswith("gates[0]")]
    assert {c["status"] for c in regression} == {"no baseline"}
    # the check says the serving version is damaged, not that nothing was ever pushed
    assert {c["detail"] for c in regression} == {
        "no serving version can be compared with: version(s) 1700000000 are damaged (see the BaselineResolver)"}


@pytest.mark.slow
def test_the_evaluated_model_truncated_before_its_push_is_refused(trained_model, tmp_path):
    """The issue's case with the real cores: the Evaluator blesses the model and records its
    fingerprint; the model is truncated; the Pusher refuses it with the blessing's fingerprint."""
    from components.evaluator.core import execute as evaluate
    from pipeline.config import BeamConfig

    destination, serving, files = _serving(tmp_path)
    model = str(tmp_path / "run" / "Trainer" / "model")
    shutil.copytree(trained_model.model, model)
    outputs = make_outputs(str(tmp_path / "run" / "Evaluator"), ("evaluation", "blessing"),
                           {"evaluation_report": "evaluation.md", "fairness_report": "fairness_report.html"})
    config = {"evaluator": EvaluatorConfig.model_validate({"gates": [{"metric": "auc", "min": 0.05}]}),
              "features": features_config(), "beam": BeamConfig()}
    assert evaluate({"examples": trained_model.pipeline.examples, "model": model}, outputs, config)["blessed"]
    judged = read_json(os.path.join(outputs["blessing"], "blessing.json"))["model_fingerprint"]
    assert judged == model_fingerprint(trained_model.model)
    truncate(os.path.join(model, DATA_FILE))
    with pytest.raises(ModelNotPushed, match=f"cannot read the model in {model}: .*fingerprint {judged}"):
        push(model, outputs["blessing"], outputs["evaluation"], destination)
    _unchanged(destination, serving, files)


# --- (e) temporary copies of a killed push are removed by the next push, a live push's never


_PAUSED_PUSH = """
import os, shutil, sys, time
from components.pusher import core
real_copy = shutil.copyfile  # copytree copies each file through copy2 -> copyfile
copied = []
def copy_then_pause(src, dst, *args, **kwargs):
    copied.append(src)
    if len(copied) == 2:  # midway through copying the model
        open(sys.argv[5], "w").close()
        while not os.path.exists(sys.argv[6]):
            time.sleep(0.05)
    return real_copy(src, dst, *args, **kwargs)
shutil.copyfile = copy_then_pause
core.push(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
"""


def _start_push(tmp_path, name: str, destination: str, weights) -> tuple[subprocess.Popen, str]:
    model = save_model(tmp_path / name / "Trainer" / "model", weights)
    blessing = bless(tmp_path / name / "blessing", model)
    paused, release = str(tmp_path / f"{name}.paused"), str(tmp_path / f"{name}.release")
    process = subprocess.Popen([sys.executable, "-c", _PAUSED_PUSH, model, blessing, _evaluation(tmp_path / "eval"),
                                destination, paused, release], cwd=REPO)
    deadline = time.monotonic() + 300
    while not os.path.exists(paused):
        assert process.poll() is None and time.monotonic() < deadline, "the push did not reach its copy"
        time.sleep(0.1)
    return process, release


def _temporaries(destination: str) -> list[str]:
    return sorted(name for name in os.listdir(destination) if name.startswith(".tmp-"))


def test_the_next_push_removes_unlocked_copies_and_keeps_locked_and_unlockable_ones(tmp_path):
    """The same rule without processes: a lock nobody holds is a dead push's; one held (here by this
    process, as a live push holds it) is a live push's; a copy with no lock file is an older sluiceway's."""
    from components.pusher.versions import held_lock

    destination, serving, _ = _serving(tmp_path)
    dead = f".tmp-{serving + 1}-otherhost-4242-aaaaaa"
    os.makedirs(os.path.join(destination, dead, "variables"))
    open(os.path.join(destination, dead + ".lock"), "w").close()
    live = f".tmp-{serving + 2}-otherhost-4343-bbbbbb"
    older = f".tmp-{serving + 3}-cccccc"
    os.makedirs(os.path.join(destination, older))
    model = save_model(tmp_path / "run" / "Trainer" / "model", (0.3, 0.3))
    lines: list[str] = []
    with held_lock(os.path.join(destination, live + ".lock")):
        os.makedirs(os.path.join(destination, live))
        pushed = push(model, bless(tmp_path / "run" / "blessing", model), _evaluation(tmp_path / "eval"),
                      destination, lines.append)
        assert _temporaries(destination) == sorted([live, live + ".lock", older])
    assert lines[:2] == [f"removed 1 temporary copies that killed pushes left in {destination}: {dead}",
                         f"kept {older} in {destination}: no lock file says whether its push still runs (remove it "
                         "by hand once no push runs)"]
    assert pushed["version"] > serving + 3  # no number in use in any form is taken


@pytest.mark.slow
def test_a_killed_push_leaves_a_copy_the_next_push_removes_and_a_live_push_keeps_its_own(tmp_path):
    destination, serving, _ = _serving(tmp_path)
    live, release = _start_push(tmp_path, "live", destination, (0.2, 0.2))  # paused midway through its copy
    try:
        live_entries = _temporaries(destination)
        killed, _ = _start_push(tmp_path, "killed", destination, (0.1, 0.1))
        [dead_copy, dead_lock] = [name for name in _temporaries(destination) if name not in live_entries]
        killed.kill()  # kill -9 midway through its copy
        assert killed.wait() == -9
        assert dead_lock == dead_copy + ".lock" and f"-{killed.pid}-" in dead_copy  # the name says who wrote it
        assert _temporaries(destination) == sorted([*live_entries, dead_copy, dead_lock])

        model = save_model(tmp_path / "run" / "Trainer" / "model", (0.3, 0.3))
        lines: list[str] = []
        pushed = push(model, bless(tmp_path / "run" / "blessing", model), _evaluation(tmp_path / "eval"),
                      destination, lines.append)
        assert _temporaries(destination) == live_entries  # the dead push's copy and lock are gone, the live one's kept
        assert lines[0] == f"removed 1 temporary copies that killed pushes left in {destination}: {dead_copy}"
    finally:
        open(release, "w").close()
    assert live.wait(timeout=300) == 0  # the live push completes with its own copy
    assert _temporaries(destination) == []
    assert len(versions(destination)) == 3 and serving in versions(destination)
    assert pushed["version"] in versions(destination)


# --- the "every later run fails": whole runs through the CLI


@pytest.mark.e2e
@pytest.mark.slow
def test_runs_after_the_serving_version_is_damaged_complete_and_replace_it(tmp_path, capsys):
    from pipeline.cli import main
    from tests.e2e.test_gates import ONLY_REGRESSION_GATE, _pipeline

    config = _pipeline(tmp_path, rows=8000, gates=ONLY_REGRESSION_GATE)
    assert main(["run", config]) == 0
    capsys.readouterr()
    destination = str(tmp_path / "serving" / "credit")
    [first] = versions(destination)
    truncate(os.path.join(destination, str(first), DATA_FILE))  # the serving version is damaged on disk

    assert main(["run", config]) == 0  # was: the Evaluator failed in TFMA with a traceback, run after run
    captured = capsys.readouterr()
    assert (f"BaselineResolver: version {first} in pusher.destination ({destination}/{first}) cannot serve: "
            f"{DATA_FILE} is ") in captured.out
    assert "Traceback" not in captured.out + captured.err
    [_, second] = versions(destination)  # the same model, pushed again as an intact version
    assert model_fingerprint(os.path.join(destination, str(second))) == json.load(open(os.path.join(
        destination, str(second), MANIFEST_FILE)))["model_fingerprint"]

    assert main(["run", config]) == 0  # and then it is the candidate itself: nothing more is pushed
    out = capsys.readouterr().out
    assert f"BaselineResolver: no baseline: the candidate itself serves as {destination}/{second}" in out
    assert versions(destination) == [first, second]
