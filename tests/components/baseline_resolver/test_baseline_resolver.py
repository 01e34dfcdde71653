"""BaselineResolver: which model serves now, as a record whose content decides the Evaluator's cache."""

from __future__ import annotations

import json

from components.baseline_resolver.core import execute, read_baseline
from components.pusher.versions import MANIFEST_FILE, model_sha256
from pipeline.config import EvaluatorConfig, PusherConfig
from pipeline.files import file_sha256

REGRESSION_GATE = {"no_regression": "auc", "max_drop": 0.01}


def _model(path, content: bytes = b"candidate"):
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(content)
    return str(path)


def _serve(destination, version: int, sha: str) -> None:
    (destination / str(version)).mkdir(parents=True)
    (destination / str(version) / MANIFEST_FILE).write_text(json.dumps({"version": version, "model_sha256": sha}))


def _resolve(tmp_path, model: str, destination, gates=(REGRESSION_GATE,), name: str = "out"):
    out = tmp_path / name / "baseline.json"
    config = {"pusher": PusherConfig(destination=str(destination) if destination else None),
              "evaluator": EvaluatorConfig.model_validate({"gates": list(gates)})}
    figures = execute({"model": model}, {"baseline": str(out)}, config)
    return figures, json.loads(out.read_text()), str(out)


def test_the_serving_model_is_resolved_with_its_version_and_fingerprint(tmp_path):
    model = _model(tmp_path / "model")
    destination = tmp_path / "serving"
    _serve(destination, 5, "an older model")
    _serve(destination, 7, "the model serving now")
    figures, record, path = _resolve(tmp_path, model, destination)
    assert figures == {"baseline": "7"}
    assert record == {"serving": True, "version": 7, "uri": str(destination / "7"),
                      "model_sha256": "the model serving now"}
    assert read_baseline(path) == str(destination / "7")


def test_no_baseline_says_why_in_its_figures_and_is_always_the_same_record(tmp_path):
    model = _model(tmp_path / "model")
    destination = tmp_path / "serving"
    figures, record, path = _resolve(tmp_path, model, destination, name="empty")
    assert figures == {"baseline": "none", "no_baseline_because": f"no model serves in {destination} yet"}
    assert record == {"serving": False}
    assert read_baseline(path) is None and read_baseline(None) is None
    figures, _, unset = _resolve(tmp_path, model, None, name="unset")
    assert figures["no_baseline_because"] == "pusher.destination is not set"
    _serve(destination, 3, "another model")
    figures, _, ungated = _resolve(tmp_path, model, destination, gates=({"metric": "auc", "min": 0.5},),
                                   name="ungated")
    assert figures["no_baseline_because"] == "no no_regression gate needs a baseline"
    # what the Evaluator's cache sees is the same, whatever the reason
    assert file_sha256(path) == file_sha256(unset) == file_sha256(ungated)


def test_the_candidate_is_never_its_own_baseline_so_a_rerun_after_its_push_stays_cached(tmp_path):
    model = _model(tmp_path / "model")
    destination = tmp_path / "serving"
    _, before, before_path = _resolve(tmp_path, model, destination, name="before")
    _serve(destination, 1, model_sha256(model))   # the last run pushed this very model
    figures, after, after_path = _resolve(tmp_path, model, destination, name="after")
    assert after == {"serving": False} and "the candidate itself serves" in figures["no_baseline_because"]
    # a rerun after the push sees what the run before it saw: the Evaluator stays cached
    assert file_sha256(after_path) == file_sha256(before_path)
    # another model serving changes the record, and so the Evaluator's cache key (its input's content)
    _serve(destination, 2, "another model")
    _, other, other_path = _resolve(tmp_path, model, destination, name="other")
    assert other["version"] == 2
    assert file_sha256(other_path) != file_sha256(before_path)
    _, again, again_path = _resolve(tmp_path, model, destination, name="again")
    assert file_sha256(again_path) == file_sha256(other_path)   # the same model again: the same content


def test_a_version_pushed_without_a_manifest_is_fingerprinted_by_its_content(tmp_path):
    model = _model(tmp_path / "model")
    destination = tmp_path / "serving"
    foreign = _model(destination / "9", b"pushed by another tool")
    _, record, _ = _resolve(tmp_path, model, destination)
    assert record["version"] == 9 and record["model_sha256"] == model_sha256(foreign)
