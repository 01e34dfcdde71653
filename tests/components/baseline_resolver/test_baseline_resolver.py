"""BaselineResolver: which model serves now, as a record whose content decides the Evaluator's cache."""

from __future__ import annotations

import json
import os

from components.baseline_resolver.core import execute, read_baseline
from components.pusher.versions import MANIFEST_FILE, model_record, model_sha256
from pipeline.config import EvaluatorConfig, PusherConfig
from pipeline.files import file_sha256
from tests.components.pusher.models import DATA_FILE, save_model, truncate

REGRESSION_GATE = {"no_regression": "auc", "max_drop": 0.01}


def _serve(destination, version: int, weights=(0.1, 0.2)) -> str:
    """A version as the Pusher leaves it: the model, then its manifest."""
    folder = save_model(destination / str(version), weights)
    (destination / str(version) / MANIFEST_FILE).write_text(json.dumps({"version": version, **model_record(folder)}))
    return folder


def _resolve(tmp_path, model: str, destination, gates=(REGRESSION_GATE,), name: str = "out", lines=None):
    out = tmp_path / name / "baseline.json"
    config = {"pusher": PusherConfig(destination=str(destination) if destination else None),
              "evaluator": EvaluatorConfig.model_validate({"gates": list(gates)})}
    figures = execute({"model": model}, {"baseline": str(out)}, config, (lines if lines is not None else []).append)
    return figures, json.loads(out.read_text()), str(out)


def test_the_serving_model_is_resolved_with_its_version_and_fingerprint(tmp_path):
    model = save_model(tmp_path / "model")
    destination = tmp_path / "serving"
    _serve(destination, 5, (0.3, 0.3))
    serving = _serve(destination, 7)
    figures, record, path = _resolve(tmp_path, model, destination)
    assert figures == {"baseline": "7"}
    pushed = json.loads((destination / "7" / MANIFEST_FILE).read_text())["model_sha256"]
    assert record == {"serving": True, "version": 7, "uri": serving, "model_sha256": pushed}
    assert read_baseline(path) == str(destination / "7")


def test_no_baseline_says_why_in_its_figures_and_is_always_the_same_record(tmp_path):
    model = save_model(tmp_path / "model")
    destination = tmp_path / "serving"
    figures, record, path = _resolve(tmp_path, model, destination, name="empty")
    assert figures == {"baseline": "none", "no_baseline_because": f"no model serves in {destination} yet"}
    assert record == {"serving": False}
    assert read_baseline(path) is None and read_baseline(None) is None
    figures, _, unset = _resolve(tmp_path, model, None, name="unset")
    assert figures["no_baseline_because"] == "pusher.destination is not set"
    _serve(destination, 3)
    figures, _, ungated = _resolve(tmp_path, model, destination, gates=({"metric": "auc", "min": 0.5},),
                                   name="ungated")
    assert figures["no_baseline_because"] == "no no_regression gate needs a baseline"
    # what the Evaluator's cache sees is the same, whatever the reason
    assert file_sha256(path) == file_sha256(unset) == file_sha256(ungated)


def test_the_candidate_is_never_its_own_baseline_so_a_rerun_after_its_push_stays_cached(tmp_path):
    model = save_model(tmp_path / "model")
    destination = tmp_path / "serving"
    _, before, before_path = _resolve(tmp_path, model, destination, name="before")
    (destination / "1").mkdir(parents=True)   # the last run pushed this very model
    for name, _ in model_record(model)["model_files"].items():
        os.makedirs(os.path.dirname(destination / "1" / name), exist_ok=True)
        (destination / "1" / name).write_bytes(open(os.path.join(model, name), "rb").read())
    (destination / "1" / MANIFEST_FILE).write_text(json.dumps({"version": 1, **model_record(model)}))
    figures, after, after_path = _resolve(tmp_path, model, destination, name="after")
    assert after == {"serving": False} and "the candidate itself serves" in figures["no_baseline_because"]
    # a rerun after the push sees what the run before it saw: the Evaluator stays cached
    assert file_sha256(after_path) == file_sha256(before_path)
    # another model serving changes the record, and so the Evaluator's cache key (its input's content)
    _serve(destination, 2)
    _, other, other_path = _resolve(tmp_path, model, destination, name="other")
    assert other["version"] == 2
    assert file_sha256(other_path) != file_sha256(before_path)
    _, again, again_path = _resolve(tmp_path, model, destination, name="again")
    assert file_sha256(again_path) == file_sha256(other_path)   # the same model again: the same content


def test_a_version_pushed_without_a_manifest_is_fingerprinted_by_its_content(tmp_path):
    model = save_model(tmp_path / "model")
    destination = tmp_path / "serving"
    foreign = save_model(destination / "9", (0.7, 0.7))
    _, record, _ = _resolve(tmp_path, model, destination)
    assert record["version"] == 9 and record["model_sha256"] == model_sha256(foreign)


# --- a serving version that cannot be loaded (issue 10): named, skipped, never a traceback in later runs


def test_a_truncated_serving_version_is_named_and_the_intact_one_before_it_is_the_baseline(tmp_path):
    model = save_model(tmp_path / "model")
    destination = tmp_path / "serving"
    _serve(destination, 5, (0.3, 0.3))
    broken = _serve(destination, 7)
    size = os.path.getsize(os.path.join(broken, DATA_FILE))
    truncate(os.path.join(broken, DATA_FILE), 10)
    lines: list[str] = []
    figures, record, path = _resolve(tmp_path, model, destination, lines=lines)
    assert figures == {"baseline": "5", "unusable_versions": "7"}
    assert record["serving"] is True and record["version"] == 5 and read_baseline(path) == str(destination / "5")
    problem = f"{DATA_FILE.replace(os.sep, '/')} is 10 bytes, was {size:,}"
    assert record["unusable"] == [{"version": 7, "uri": str(destination / "7"), "problem": problem}]
    assert lines[0] == (f"version 7 in pusher.destination ({destination / '7'}) cannot serve: {problem}. It is not "
                        "used as the baseline; remove that folder (TF Serving cannot load it either), or let the "
                        "next push add a newer version")


def test_when_no_version_can_serve_there_is_no_baseline_and_the_figures_say_which_and_why(tmp_path):
    model = save_model(tmp_path / "model")
    destination = tmp_path / "serving"
    gone = _serve(destination, 4)
    os.remove(os.path.join(gone, "saved_model.pb"))
    legacy = save_model(destination / "6", (0.3, 0.3))   # pushed before manifests listed files: read by TensorFlow
    (destination / "6" / MANIFEST_FILE).write_text(json.dumps({"version": 6, "model_sha256": model_sha256(legacy)}))
    truncate(os.path.join(legacy, DATA_FILE), 10)
    lines: list[str] = []
    figures, record, path = _resolve(tmp_path, model, destination, lines=lines)
    assert figures["baseline"] == "none" and figures["unusable_versions"] == "6, 4"
    assert figures["no_baseline_because"] == (f"no version in {destination} can serve (2 damaged: 6, 4), so "
                                              "no-regression gates cannot compare")
    assert read_baseline(path) is None and record["serving"] is False
    assert [u["version"] for u in record["unusable"]] == [6, 4]
    assert record["unusable"][0]["problem"].startswith("its variables (variables/variables.*) cannot be read: ")
    assert record["unusable"][1]["problem"] == "saved_model.pb is missing"
    assert "version 6 in pusher.destination" in lines[0] and "remove that folder" in lines[0]
