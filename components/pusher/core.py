"""Pusher: copies a blessed model into the serving destination as a new version, atomically.

The model is copied under a temporary name in the destination and renamed to its version number
when complete, so TF Serving (which watches for numbered folders) never sees half a model, and a
push killed midway leaves the destination as it was. Existing versions are never overwritten or
deleted. A manifest inside the version records where the model came from and the gate results.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from typing import Callable, Mapping

from components.pusher.versions import MANIFEST_FILE, versions
from pipeline.config import PusherConfig, Section
from pipeline.errors import GateFailed, SluicewayError
from pipeline.specs import BLESSING_FILE, EVALUATION_SUMMARY_FILE, SPLIT_INFO_FILE


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the Pusher as a pipeline step; see ``push``. Returns its figures."""
    pusher: PusherConfig = config["pusher"]
    os.makedirs(outputs["pushed_model"], exist_ok=True)
    if not pusher.destination:
        record = {"pushed": False, "reason": "pusher.destination is not set"}
    else:
        fingerprints = {"config_sha256": hashlib.sha256(json.dumps(
            {name: section.model_dump(mode="json", by_alias=True) for name, section in sorted(config.items())},
            sort_keys=True).encode()).hexdigest()}
        with open(os.path.join(inputs["examples"], SPLIT_INFO_FILE), encoding="utf-8") as handle:
            fingerprints["data_sha256"] = json.load(handle).get("source_sha256", {})
        record = push(inputs["model"], inputs["blessing"], inputs["evaluation"], pusher.destination, progress,
                      fingerprints)
    with open(os.path.join(outputs["pushed_model"], "push.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return {"pushed": record["pushed"], **({"version": str(record["version"])} if record["pushed"] else {})}


def push(model_dir: str, blessing_dir: str, evaluation_dir: str, destination: str,
         progress: Callable[[str], None] = lambda _: None, fingerprints: dict | None = None) -> dict:
    """Copies ``model_dir`` to ``<destination>/<new version>/`` if the blessing says so.

    Returns:
        What was pushed: version, path, and the manifest written inside the version.

    Raises:
        GateFailed: The model is not blessed (the Pusher checks this itself, whatever ran before).
        SluicewayError: The destination cannot be written.
    """
    with open(os.path.join(blessing_dir, BLESSING_FILE), encoding="utf-8") as handle:
        blessing = json.load(handle)
    if not blessing["blessed"]:
        raise GateFailed(f"Pusher: the model is not blessed ({len(blessing['blocking'])} gate checks failed); "
                         "nothing was pushed")
    try:
        os.makedirs(destination, exist_ok=True)
        existing = versions(destination)
        version = max([int(time.time()), *(v + 1 for v in existing)])
        temporary = os.path.join(destination, f".tmp-{version}-{secrets.token_hex(3)}")
        shutil.copytree(model_dir, temporary)
        manifest = {**_manifest(version, model_dir, blessing, evaluation_dir), **(fingerprints or {})}
        with open(os.path.join(temporary, MANIFEST_FILE), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2)
        target = os.path.join(destination, str(version))
        os.rename(temporary, target)  # atomic on one file system; never replaces an existing version
    except OSError as exc:
        raise SluicewayError(f"Pusher: cannot write to pusher.destination {destination}: {exc}") from None
    progress(f"pushed version {version} to {destination}")
    return {"pushed": True, "version": version, "path": target, "manifest": manifest}


def _manifest(version: int, model_dir: str, blessing: dict, evaluation_dir: str) -> dict:
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(model_dir)))  # <run>/Trainer/model
    summary_path = os.path.join(evaluation_dir, EVALUATION_SUMMARY_FILE)
    overall = {}
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as handle:
            overall = next((r["metrics"] for r in json.load(handle)["slices"] if r["slice"] == "overall"), {})
    hyperparameters = None
    training = os.path.join(os.path.dirname(model_dir), "model_run", "training.json")
    if os.path.exists(training):
        with open(training, encoding="utf-8") as handle:
            hyperparameters = json.load(handle).get("hyperparameters")
    return {"version": version, "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source_model": os.path.abspath(model_dir), "run": os.path.basename(run_dir),
            "metrics": overall, "gates": blessing["checks"], "hyperparameters": hyperparameters}
