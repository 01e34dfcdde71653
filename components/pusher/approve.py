"""``sluiceway approve``: a reviewer ships a model the gates blocked, on the record.

Teams sometimes accept a known gap (a fairness bound a small group misses, a metric just under its
bound). An approval pushes that run's blocked model through the Pusher, with who approved it, when,
why and which checks had failed, into the version's manifest and model card (and so into
``sluiceway lineage``), and an ``approval.json`` in the run's folder. It overrides the Evaluator's
gates only:

- never a failed (or missing) serving check: a model that does not serve is not shipped by anyone;
- never a model whose content no longer matches its evaluation (the Pusher compares the model's
  fingerprint with the one the blessing judged, as in every push);
- never twice: a run whose model an approval already pushed is reported as pushed, not pushed again.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from typing import Callable

from pipeline.config import PipelineConfig
from pipeline.errors import GateFailed, SluicewayError
from pipeline.files import atomic_write_json
from pipeline.specs import BLESSING_FILE, EVALUATOR, INFRA_BLESSING_FILE, INFRA_VALIDATOR, PUSHER

APPROVAL_DIR = "Approval"  # in the run's folder: the approval and the push it made
APPROVAL_FILE = "approval.json"


class NothingToApprove(SluicewayError):
    """The run has no blocked model an approval could ship (not found, blessed, or incomplete)."""


def approve(config: PipelineConfig, run_id: str, reason: str, by: str | None = None,
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Pushes run ``run_id``'s blocked model with the approval on the record.

    Returns:
        The push record (``pushed``, ``version``, ``path``) and the ``approval``; ``pushed`` false with
        ``reason`` when an approval of this run already pushed its model.

    Raises:
        NothingToApprove: No such run, its model was blessed (nothing to override), or it has no
            evaluated model.
        GateFailed: Its model failed the serving check, or the check did not run.
        ModelNotPushed: The model is not the one evaluated (changed since), or its copy does not load.
    """
    from components.pusher import core
    from components.pusher.versions import join, read_manifest, versions
    from pipeline.runner import RUN_FILE, pipeline_dir

    if not reason or not reason.strip():
        raise SluicewayError("approve: --reason must say why the blocked model may ship (it goes on the record)")
    if not config.pusher.destination:
        raise NothingToApprove("approve: pusher.destination is not set, so there is nowhere to push to")
    run_dir = os.path.join(pipeline_dir(config), run_id)
    run_file = os.path.join(run_dir, RUN_FILE)
    if not os.path.exists(run_file):
        earlier = sorted(d for d in os.listdir(pipeline_dir(config)) if os.path.exists(
            os.path.join(pipeline_dir(config), d, RUN_FILE))) if os.path.isdir(pipeline_dir(config)) else []
        raise NothingToApprove(f"approve: no run {run_id} of '{config.pipeline.name}' ({run_file} does not exist); "
                               f"runs there: {', '.join(earlier[-5:]) or 'none'} (`sluiceway runs` lists them)")
    with open(run_file, encoding="utf-8") as handle:
        outputs = {c["name"]: c.get("outputs") or {} for c in json.load(handle)["components"]}
    blessing_dir = outputs.get(EVALUATOR.name, {}).get("blessing")
    if not blessing_dir or not os.path.exists(os.path.join(blessing_dir, BLESSING_FILE)):
        raise NothingToApprove(f"approve: run {run_id} has no Evaluator verdict to override (the Evaluator did not "
                               "finish in that run)")
    blessing = core.read_json(os.path.join(blessing_dir, BLESSING_FILE))
    if blessing["blessed"]:
        raise NothingToApprove(f"approve: the model of run {run_id} passed every gate; there is nothing to approve "
                               "(its Pusher pushes it, or rerun the pipeline)")
    infra_dir = outputs.get(INFRA_VALIDATOR.name, {}).get("infra_blessing")
    if not infra_dir or not os.path.exists(os.path.join(infra_dir, INFRA_BLESSING_FILE)):
        raise GateFailed(f"approve: run {run_id} has no serving check of its model (the InfraValidator did not run); "
                         "an approval overrides gates, never the serving check. Nothing was pushed")
    infra = core.read_json(os.path.join(infra_dir, INFRA_BLESSING_FILE))
    if not infra.get("serves"):
        failed = ", ".join(c.get("check", "?") for c in infra.get("blocking", [])) or "see serving_check.md"
        raise GateFailed(f"approve: the model of run {run_id} failed the serving check ({failed}); an approval "
                         "overrides gates, never the serving check. Nothing was pushed")
    destination = config.pusher.destination
    for number in reversed(versions(destination)):
        manifest = read_manifest(join(destination, str(number))) or {}
        earlier = manifest.get("approval") or {}
        if earlier.get("run") == run_id and manifest.get("model_fingerprint") == blessing.get("model_fingerprint"):
            progress(f"run {run_id}'s model was already pushed as version {number} by the approval of "
                     f"{earlier.get('by')} at {earlier.get('at')}; nothing pushed")
            return {"pushed": False, "version": number, "path": join(destination, str(number)), "approval": earlier,
                    "reason": f"already pushed as version {number} by the approval of {earlier.get('by')} at "
                              f"{earlier.get('at')}"}
    approval = {"by": by or getpass.getuser(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "reason": reason.strip(), "run": run_id, "failed_checks": blessing["blocking"]}
    inputs = {name: outputs.get(ref.component, {}).get(ref.output) for name, ref in PUSHER.inputs.items()}
    missing = [f"{ref.component}.{ref.output}" for name, ref in PUSHER.inputs.items()
               if not inputs[name] or not os.path.exists(inputs[name])]
    if missing:
        raise NothingToApprove(f"approve: run {run_id} lacks what the Pusher needs: {', '.join(missing)} (removed "
                               "since the run?); nothing was pushed")
    folder = os.path.join(run_dir, APPROVAL_DIR)
    sections = {name: config.section(name) for name in PUSHER.sections}
    progress(f"approved by {approval['by']}: pushing run {run_id}'s blocked model "
             f"({len(approval['failed_checks'])} failed checks accepted)")
    record = core.push_step(inputs["model"], inputs["blessing"], inputs["infra_blessing"], inputs["evaluation"],
                            inputs["examples"], inputs["statistics"], inputs["schema"], sections, progress,
                            approval=approval)
    record = {k: v for k, v in record.items() if k != "manifest"}
    core.write_step_outputs(record, os.path.join(folder, "pushed_model"), None)
    atomic_write_json(os.path.join(folder, APPROVAL_FILE), {**approval, "push": record}, indent=2)
    return {**record, "approval": approval}


def card_path(config: PipelineConfig, version: int | None = None) -> str:
    """The model card of a pushed version (default: the one serving).

    Raises:
        SluicewayError: Nothing is pushed, no such version, or the version has no card (pushed before
            cards were written).
    """
    from components.pusher.model_card import CARD_HTML
    from components.pusher.versions import is_url, join, versions
    from pipeline.provenance import NoSuchVersion

    destination = config.pusher.destination
    if not destination:
        raise NoSuchVersion("card: pusher.destination is not set, so no version has a card")
    found = versions(destination)
    if not found:
        raise NoSuchVersion(f"card: no version is pushed to {destination} yet")
    chosen = found[-1] if version is None else version
    if chosen not in found:
        raise NoSuchVersion(f"card: version {chosen} is not in {destination}; its versions are "
                            f"{', '.join(str(n) for n in found)}")
    path = join(join(destination, str(chosen)), CARD_HTML)
    if is_url(path):
        import tensorflow as tf

        exists = tf.io.gfile.exists(path)
    else:
        exists = os.path.exists(path)
    if not exists:
        raise SluicewayError(f"card: version {chosen} has no model card ({path}): it was pushed before sluiceway "
                             "wrote cards")
    return path
