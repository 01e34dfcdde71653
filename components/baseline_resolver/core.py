"""BaselineResolver: which model serves now at ``pusher.destination``, as an artifact.

TFX's ``LatestBlessedModelStrategy`` resolver, for sluiceway's push layout: the newest complete
version in the destination is the model serving now. The Evaluator takes it as the baseline of its
no-regression gates, so the Evaluator's result depends on its inputs alone and is cached like any
other component's; this component runs every time, and the Evaluator re-executes only when what it
found (the version and its content fingerprint) changed.

The artifact is one JSON file (``baseline.json``): ``{"serving": true, "version", "uri",
"model_sha256"}``, or ``{"serving": false}`` when there is no baseline: no destination, no
no-regression gate to need one, nothing pushed yet, or the candidate itself is what serves (a rerun
after its push compares with nothing, as the run before the push did). The file holds only what the
Evaluator's result depends on, so every "no baseline" is the same content and keeps the Evaluator
cached; why there is none is in the figures (``no_baseline_because``) and the progress line.

A version that cannot serve as it was pushed (a file deleted or truncated, ``saved_model.pb`` missing,
variables TensorFlow cannot read: ``components.pusher.versions.version_problem``) is never the
baseline, as TFMA would fail on it in every later run. It is skipped and reported by version and path
with what to do, and the newest intact version before it is the baseline: that is the one TF Serving
keeps serving when the newest fails to load. The record then also lists the skipped versions
(``unusable``: version, uri, problem), so the Evaluator re-executes when that changes. When no
version is intact there is no baseline, the figures say why, and the no-regression checks say "no
baseline". The Pusher replaces a damaged newest version with its next push, even of the same model.

"The candidate itself serves" compares files (``model_sha256``), not the Pusher's ``model_fingerprint``:
this component runs every time, and that fingerprint needs TensorFlow (seconds to import), whereas
files need none. A re-executed Trainer that made the same weights in new files is therefore compared
with its serving twin (the no-regression gate passes; TFMA evaluates the model twice), and the Pusher,
which compares fingerprints, then finds that it already serves. Only versions whose manifest has no
file list (pushed before it was recorded, by another tool, or at a URL) are read with TensorFlow here.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Mapping

from components.pusher.versions import is_url, join, model_sha256, read_manifest, version_problem, versions
from pipeline.config import EvaluatorConfig, PusherConfig, RegressionGate, Section
from pipeline.files import atomic_write_json
from pipeline.specs import BASELINE_MODEL


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Resolves the baseline and writes ``baseline.json``. Returns its figures.

    Args:
        inputs: ``model``: the candidate SavedModel (never its own baseline).
        outputs: ``baseline``: the path of ``baseline.json``.
        config: The ``pusher`` and ``evaluator`` sections.

    Raises:
        SluicewayError: A URL destination cannot be read.
    """
    record = resolve(config["pusher"], config["evaluator"], inputs["model"])
    reason = record.pop("reason", None)
    os.makedirs(os.path.dirname(outputs["baseline"]) or ".", exist_ok=True)
    atomic_write_json(outputs["baseline"], record, indent=2, sort_keys=True)
    figures = {}
    if record.get("unusable"):
        for skipped in record["unusable"]:
            progress(unusable_message(skipped))
        figures["unusable_versions"] = ", ".join(str(skipped["version"]) for skipped in record["unusable"])
    if record["serving"]:
        progress(f"the model serving now is version {record['version']} ({record['uri']})")
        return {"baseline": str(record["version"]), **figures}
    progress(f"no baseline: {reason}")
    return {"baseline": "none", "no_baseline_because": reason, **figures}


def unusable_message(skipped: dict) -> str:
    """What the user reads about a version that cannot be the baseline, and what to do."""
    return (f"version {skipped['version']} in pusher.destination ({skipped['uri']}) cannot serve: "
            f"{skipped['problem']}. It is not used as the baseline; remove that folder (TF Serving cannot load "
            "it either), or let the next push add a newer version")


def resolve(pusher: PusherConfig, evaluator: EvaluatorConfig, candidate_dir: str) -> dict:
    """The serving model as a baseline record (see the module's docstring), with a ``reason`` when
    there is none."""
    destination = pusher.destination
    if not destination:
        return {"serving": False, "reason": "pusher.destination is not set"}
    if not any(isinstance(gate, RegressionGate) for gate in evaluator.gates):
        return {"serving": False, "reason": "no no_regression gate needs a baseline"}
    found = versions(destination)
    if not found:
        return {"serving": False, "reason": f"no model serves in {destination} yet"}
    unusable = []
    for version in reversed(found):
        serving = join(destination, str(version))
        manifest = read_manifest_or_none(serving)
        problem = version_problem(serving, manifest) if manifest is not False else "its manifest cannot be read"
        if problem:
            unusable.append({"version": version, "uri": serving, "problem": problem})
            continue
        skipped = {"unusable": unusable} if unusable else {}
        manifest = manifest or {}
        fingerprint = manifest.get("model_sha256")
        if fingerprint is None and not is_url(serving):   # a version pushed by something else than sluiceway
            fingerprint = model_sha256(serving)
        if fingerprint is not None and fingerprint == model_sha256(candidate_dir):
            return {"serving": False, "reason": f"the candidate itself serves as {serving}", **skipped}
        return {"serving": True, "version": version, "uri": serving, "model_sha256": fingerprint, **skipped}
    return {"serving": False, "unusable": unusable,
            "reason": f"no version in {destination} can serve ({len(unusable)} damaged: "
                      + ", ".join(str(skipped["version"]) for skipped in unusable) + "), so no-regression gates "
                      "cannot compare"}


def read_manifest_or_none(version_dir: str) -> dict | None | bool:
    """The version's manifest, ``None`` without one, or ``False`` when it is there but not JSON."""
    try:
        return read_manifest(version_dir)
    except (ValueError, UnicodeDecodeError):
        return False


def read_baseline(path: str | None) -> str | None:
    """The serving model's location from a baseline artifact (its folder or ``baseline.json``), or
    ``None`` when there is none (also when the input is absent)."""
    record = _read_record(path)
    return record["uri"] if record and record.get("serving") else None


def _read_record(path: str | None) -> dict | None:
    """A baseline artifact's record (from its folder or ``baseline.json``); ``None`` without one."""
    if not path:
        return None
    if os.path.isdir(path):
        path = os.path.join(path, BASELINE_MODEL.file_name)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def no_baseline_reason(path: str | None) -> str | None:
    """Why a baseline record without a serving model has none, when the record itself says (every
    serving version is damaged); ``None`` otherwise (the reasons that keep the record identical, such
    as "nothing pushed yet", are in the resolver's figures only)."""
    record = _read_record(path)
    if not record or record.get("serving") or not record.get("unusable"):
        return None
    damaged = ", ".join(str(skipped["version"]) for skipped in record["unusable"])
    return f"no serving version can be compared with: version(s) {damaged} are damaged (see the BaselineResolver)"
