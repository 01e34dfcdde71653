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
"""

from __future__ import annotations

import json
import os
from typing import Callable, Mapping

from components.pusher.versions import is_url, latest, model_sha256, read_manifest
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
    if record["serving"]:
        progress(f"the model serving now is version {record['version']} ({record['uri']})")
        return {"baseline": str(record["version"])}
    progress(f"no baseline: {reason}")
    return {"baseline": "none", "no_baseline_because": reason}


def resolve(pusher: PusherConfig, evaluator: EvaluatorConfig, candidate_dir: str) -> dict:
    """The serving model as a baseline record (see the module's docstring), with a ``reason`` when
    there is none."""
    destination = pusher.destination
    if not destination:
        return {"serving": False, "reason": "pusher.destination is not set"}
    if not any(isinstance(gate, RegressionGate) for gate in evaluator.gates):
        return {"serving": False, "reason": "no no_regression gate needs a baseline"}
    serving = latest(destination)
    if serving is None:
        return {"serving": False, "reason": f"no model serves in {destination} yet"}
    manifest = read_manifest(serving) or {}
    fingerprint = manifest.get("model_sha256")
    if fingerprint is None and not is_url(serving):   # a version pushed by something else than sluiceway
        fingerprint = model_sha256(serving)
    if fingerprint is not None and fingerprint == model_sha256(candidate_dir):
        return {"serving": False, "reason": f"the candidate itself serves as {serving}"}
    return {"serving": True, "version": int(os.path.basename(serving.rstrip("/"))), "uri": serving,
            "model_sha256": fingerprint}


def read_baseline(path: str | None) -> str | None:
    """The serving model's location from a baseline artifact (its folder or ``baseline.json``), or
    ``None`` when there is none (also when the input is absent)."""
    if not path:
        return None
    if os.path.isdir(path):
        path = os.path.join(path, BASELINE_MODEL.file_name)
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    return record["uri"] if record.get("serving") else None
