"""Faults around a run: a damaged or deleted ML Metadata store, runs killed with kill -9, an unwritable
push destination. Each is found with a message naming what and where, and nothing already produced is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.cli import main
from pipeline.lineage import STORE_FILE, Lineage
from pipeline.loader import load_config
from pipeline.run_lock import RunLock
from pipeline.runner import check_preflight, pipeline_dir, run_pipeline
from pipeline.specs import COMPONENTS
from tests.conftest import REPO, pipeline_yaml

LOOSE_DRIFT = """\
validation:
  drift: {categorical_linf: 0.3, numeric_jsd: 0.3}
"""


@pytest.fixture
def config_file(write_pipeline, credit_csv, tmp_path):
    return write_pipeline(pipeline_yaml(credit_csv, extra=LOOSE_DRIFT + f"pusher:\n  destination: {tmp_path / 'serving'}\n"))


def _root(config_file: str) -> str:
    return pipeline_dir(load_config(config_file))


def _recorded_run(config_file: str, run_id: str = "20261201-000000-aaaa") -> str:
    """A store holding one finished run, with its run folder, as a real run leaves them."""
    root = _root(config_file)
    lineage = Lineage(root)
    run = lineage.start_run("test", run_id, config_file)
    lineage.finish_run(run, "SUCCEEDED", {"executed": 1})
    os.makedirs(os.path.join(root, run_id))
    with open(os.path.join(root, run_id, "run.json"), "w") as handle:
        json.dump({"run_id": run_id, "status": "SUCCEEDED", "components": []}, handle)
    return root


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_store_is_named_with_what_to_do_by_run_and_runs(config_file, capsys, damage):
    root = _recorded_run(config_file)
    store = os.path.join(root, STORE_FILE)
    size = os.path.getsize(store)
    with open(store, "r+b") as handle:
        if damage == "garbage":
            handle.write(b"not a database " * 64)
        else:
            handle.truncate(size // 3)
    damaged = open(store, "rb").read()
    for command in (["runs", config_file], ["run", config_file, "--until", "ExampleGen"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert f"the ML Metadata store {store} cannot be read" in err
        assert f"mv {store} {store}.damaged" in err
        assert "Traceback" not in err and "RuntimeError" not in err
    # nothing ran and nothing was rewritten: the damaged store and the earlier run folder are as they were
    assert open(store, "rb").read() == damaged
    assert sorted(os.listdir(root)) == ["20261201-000000-aaaa", STORE_FILE]


def test_a_deleted_store_is_reported_not_silently_recreated(config_file, capsys):
    root = _recorded_run(config_file)
    os.remove(os.path.join(root, STORE_FILE))
    assert main(["runs", config_file]) == 1
    err = capsys.readouterr().err
    assert "does not exist, though 1 earlier run folder exists (20261201-000000-aaaa)" in err
    assert "the run history was deleted" in err
    assert not os.path.exists(os.path.join(root, STORE_FILE))  # `runs` does not create one
    lines = []
    result = run_pipeline(load_config(config_file), config_file, until="ExampleGen", echo=lines.append)
    assert result.status == "SUCCEEDED"
    warning = next(line for line in lines if line.startswith("warning:"))
    assert "did not exist, though 1 earlier run folder exists (20261201-000000-aaaa)" in warning
    assert "nothing of them is reused from the cache" in warning
    assert os.path.isdir(os.path.join(root, "20261201-000000-aaaa"))  # the old run's folder is kept
    # the warning is said once: the new store now holds the history from here on
    again = []
    run_pipeline(load_config(config_file), config_file, until="ExampleGen", echo=again.append)
    assert not any(line.startswith("warning:") for line in again)


def test_an_unwritable_destination_stops_the_run_before_anything_executes(write_pipeline, credit_csv, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the serving folder's parent should be")
    config_file = write_pipeline(pipeline_yaml(credit_csv, extra=f"pusher:\n  destination: {blocker / 'credit'}\n"))
    assert main(["run", config_file]) == 2
    err = capsys.readouterr().err
    assert "pusher.destination" in err and "not-a-folder is a file, not a folder" in err
    assert "Traceback" not in err
    root = _root(config_file)
    assert not os.path.exists(root) or not any(os.path.isdir(os.path.join(root, n)) for n in os.listdir(root))
    # a run that stops before the Pusher does not need the destination, nor does a pipeline without one
    assert main(["run", config_file, "--until", "ExampleGen"]) == 0
    without = write_pipeline(pipeline_yaml(credit_csv), "no-destination.yaml")
    check_preflight(COMPONENTS, load_config(without), without)  # nothing to push to: nothing to check


def test_a_destination_that_is_a_file_is_refused_before_training(write_pipeline, credit_csv, tmp_path, capsys):
    destination = tmp_path / "serving"
    destination.write_text("")
    config_file = write_pipeline(pipeline_yaml(credit_csv, extra=f"pusher:\n  destination: {destination}\n"))
    assert main(["run", config_file]) == 2
    assert f"{destination} is a file, not a folder" in capsys.readouterr().err


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _temporaries(root: str) -> list[str]:
    return [os.path.join(dirpath, name) for dirpath, names, _ in os.walk(root) for name in names
            if name.startswith(".tmp-")]


@pytest.mark.slow
def test_a_run_killed_with_sigkill_is_marked_abandoned_and_its_temporaries_removed(config_file, capsys):
    root = _root(config_file)
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", config_file, "--no-cache",
                                "--until", "StatisticsGen"], env=env, cwd=os.path.dirname(config_file),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill -9 while StatisticsGen writes its output under a temporary name
        _wait_for(lambda: [t for t in _temporaries(root) if "StatisticsGen" in t], 240, "StatisticsGen's temporary output")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    [killed] = Lineage(root).runs("test")
    assert killed.status == "RUNNING"  # what kill -9 leaves: nobody could record the end
    # a live run beside it: recorded RUNNING, holding its lock, with a temporary output of its own
    lineage = Lineage(root)
    live_dir = os.path.join(root, "20991231-235959-live")
    os.makedirs(os.path.join(live_dir, "Trainer", ".tmp-model-123456"))
    lock = RunLock(live_dir)
    try:
        lineage.start_run("test", "20991231-235959-live", config_file)
        assert main(["runs", config_file]) == 0
        out = capsys.readouterr().out
        assert f"note: run {killed.run_id} was recorded as RUNNING but its process is gone" in out
        assert "marked ABANDONED; removed its temporary folders StatisticsGen/.tmp-statistics-" in out
        statuses = {r.run_id: r.status for r in Lineage(root).runs("test")}
        assert statuses == {killed.run_id: "ABANDONED", "20991231-235959-live": "RUNNING"}
        assert _temporaries(os.path.join(root, killed.run_id)) == []
        assert os.path.isdir(os.path.join(live_dir, "Trainer", ".tmp-model-123456"))  # the live run's is kept
        # what the killed run had completed is still there
        assert os.path.isdir(os.path.join(root, killed.run_id, "ExampleGen", "examples"))
        # said once: the next run does not report it again
        lines = []
        run_pipeline(load_config(config_file), config_file, until="ExampleGen", echo=lines.append)
        assert not any("ABANDONED" in line for line in lines)
    finally:
        lock.release()
