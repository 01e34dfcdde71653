"""Pusher: copies a blessed model into the serving destination as a new version.

The destination is TF Serving's layout, ``<destination>/<version>/``, in a local folder or at a URL
(``gs://bucket/models/credit``; any scheme ``tf.io.gfile`` knows). A manifest inside the version
records where the model came from and the gate results. Wherever the destination is:

- existing versions are never overwritten or deleted;
- a version number is never reused while it is found in any form: a version, a numbered folder a push
  left incomplete, or a temporary copy (``.tmp-<version>-...``);
- a push that fails or is killed midway adds no version that ``versions``/``latest`` report, so the
  Evaluator never takes half a model as its baseline; what it leaves behind (a ``.tmp-`` folder, which
  TF Serving ignores as it only loads numbered folders) is removed by the next push to a local folder
  (see "Temporary copies" below) and stays on a URL until someone removes it;
- only the model the Evaluator judged is pushed: the blessing records that model's
  ``model_fingerprint`` (``components.common.model_fingerprint``), and the Pusher recomputes it on the
  model it is about to push and refuses, naming both fingerprints, when they differ (a model damaged
  or replaced after evaluation; in Kubeflow, or between two tasks, the local cache's check of its
  outputs does not run);
- the copy is loaded once (``tf.saved_model.load``, with a ``serving_default`` signature) before it
  becomes a version (a tree model's after TF-DF's ops are registered, ``tree_model.ensure_tree_ops``);
  a copy that does not load is removed and nothing is pushed;
- a model whose ``model_fingerprint`` is the serving version's (an intact one) is not pushed again:
  a re-executed Trainer that produced the same weights adds no version.

Temporary copies (local folder): a push names its copy ``.tmp-<version>-<host>-<pid>-<random>`` and
holds an exclusive ``flock`` on ``<copy>.lock`` from before the copy exists until after it is renamed.
The kernel drops the lock when the process dies, even by kill -9, so the next push removes every copy
whose lock nobody holds and never one whose push is still running.

A local folder: the model and its manifest are copied to ``<destination>/.tmp-<version>-...``,
loaded from there, then renamed to ``<destination>/<version>/``. The rename is atomic, so every reader, TF Serving
included, sees either no version or a complete one with its manifest.

A URL: object stores such as GCS have no folders to rename, only objects, each written or renamed
whole, so a version cannot appear at once. The model is uploaded to ``<destination>/.tmp-<version>-
...`` (the slow part, which no reader looks at) and loaded from there, then moved object by object into
``<destination>/<version>/`` (server-side copies, seconds), ``saved_model.pb`` last, and only then is the
manifest written there: the manifest is the commit marker, and on a URL ``versions`` counts a numbered
folder only when its manifest is in it. What a reader can see:

- sluiceway (``versions``, ``latest``, the Evaluator's baseline): no version, or a complete one.
- TF Serving, which goes by folder names alone: during the move, ``<version>/`` without
  ``saved_model.pb``, which is not a SavedModel, so loading it fails and (under TF Serving's default
  availability-preserving policy) the version already serving stays up; once ``saved_model.pb`` is
  there, the complete model (its manifest may still be coming).
- After a push killed during the move: that incomplete ``<version>/`` stays, and is TF Serving's newest
  folder (failing to load) until the next push adds a higher number. Killed between ``saved_model.pb``
  and the manifest: a complete model that TF Serving may serve but sluiceway does not count as a version.

Pushes to one URL destination must run one at a time: ``tf.io.gfile`` offers no atomic
create-if-absent, and two pushes started in the same second pick the same number. The version folder
is checked free just before the move and no object is ever overwritten, which narrows that race but
does not close it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Callable, Mapping

from components.common.model_fingerprint import ModelUnreadable, model_fingerprint
from components.common.tree_model import ensure_tree_ops
from components.monitor.reference import REFERENCE_DIR, TRAIN_STATISTICS_FILE
from components.pusher.versions import (LOCK_SUFFIX, MANIFEST_FILE, clean_stale_temporaries, entries, held_lock,
                                        is_url, join, latest, model_record, model_sha256, read_manifest,
                                        taken_numbers, temporary_name, version_problem)
from pipeline.config import PusherConfig, Section
from pipeline.errors import GateFailed, SluicewayError
from pipeline.files import atomic_write_text, file_sha256
from pipeline.specs import (ATTRIBUTIONS_FILE, BLESSING_FILE, EVALUATION_SUMMARY_FILE, INFRA_BLESSING_FILE,
                            PUSH_RECORD_FILE, SCHEMA_FILE, SPLIT_INFO_FILE, STATS_FILE)

SERVING_SIGNATURE = "serving_default"  # what TF Serving calls when a request names no signature


class ModelNotPushed(SluicewayError):
    """The model cannot be pushed as it is (changed since it was evaluated, unreadable, or its copy does
    not load); nothing was pushed and the serving version is unchanged."""


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the Pusher as a pipeline step; see ``push``. Returns its figures."""
    record = push_step(inputs["model"], inputs["blessing"], inputs.get("infra_blessing"), inputs["evaluation"],
                       inputs["examples"], inputs["statistics"], inputs["schema"], config, progress)
    return write_step_outputs(record, outputs["pushed_model"], outputs.get("card"))


def push_step(model_dir: str, blessing_dir: str, infra_blessing_dir: str | None, evaluation_dir: str,
              examples_dir: str, statistics_dir: str, schema_dir: str, config: Mapping[str, Section],
              progress: Callable[[str], None] = lambda _: None, approval: dict | None = None) -> dict:
    """The Pusher's push with the fingerprints, monitoring reference and model card a pipeline run
    records (``push``'s record); what ``sluiceway approve`` runs too, with its ``approval`` (by, at,
    reason, run and the failed checks it accepts)."""
    pusher: PusherConfig = config["pusher"]
    if not pusher.destination:
        return {"pushed": False, "reason": "pusher.destination is not set"}
    shaping = {name: section for name, section in config.items() if name not in NOT_MODEL_SHAPING}
    fingerprints = {"config_sha256": hashlib.sha256(json.dumps(
        {name: section.model_dump(mode="json", by_alias=True) for name, section in sorted(shaping.items())},
        sort_keys=True).encode()).hexdigest()}
    with open(os.path.join(examples_dir, SPLIT_INFO_FILE), encoding="utf-8") as handle:
        split_info = json.load(handle)
    fingerprints["data_sha256"] = split_info.get("source_sha256", {})
    if split_info.get("spans"):
        fingerprints["spans"] = split_info["spans"]
    fingerprints["code_version"] = pipeline_code_version()
    reference = reference_files(evaluation_dir, examples_dir, statistics_dir, schema_dir)
    card = card_builder(config, evaluation_dir, statistics_dir, schema_dir)
    return push(model_dir, blessing_dir, evaluation_dir, pusher.destination, progress, fingerprints, reference,
                infra_blessing_dir=infra_blessing_dir, card=card, approval=approval)


def write_step_outputs(record: dict, pushed_model_dir: str, card_path: str | None) -> dict:
    """The push record (``push_record.json``) and, when asked, the version's card as an HTML
    artifact; returns the step's figures."""
    os.makedirs(pushed_model_dir, exist_ok=True)
    atomic_write_text(os.path.join(pushed_model_dir, PUSH_RECORD_FILE), json.dumps(record, indent=2))
    if card_path:
        _card_artifact(record, card_path)
    return {"pushed": record["pushed"], **({"version": str(record["version"])} if "version" in record else {})}


def _card_artifact(record: dict, path: str) -> None:
    """The model card of the version pushed (or already serving) as the component's HTML artifact,
    for Kubeflow's UI; a page saying why there is none when nothing serves."""
    from components.pusher.model_card import CARD_HTML

    text = None
    if record.get("path"):
        card = join(record["path"], CARD_HTML)
        try:
            if is_url(card):
                import tensorflow as tf

                with tf.io.gfile.GFile(card) as handle:
                    text = handle.read()
            elif os.path.exists(card):
                with open(card, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError:
            text = None
    if text is None:
        import html

        why = record.get("reason") or "the version has no model card (pushed before sluiceway wrote cards)"
        text = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>No model card</title></head><body>"
                f"<p>No model card: {html.escape(str(why))}.</p></body></html>")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write_text(path, text)


# sections the Pusher reads that do not shape the model: left out of the manifest's config fingerprint
NOT_MODEL_SHAPING = ("pipeline", "model_card")


def card_builder(config: Mapping[str, Section], evaluation_dir: str, statistics_dir: str,
                 schema_dir: str) -> Callable[[dict], dict]:
    """The model card of the version being pushed, built from its manifest (which carries the version
    number), the Evaluator's figures and attributions, the schema, the train statistics, and what
    people wrote in the YAML's ``model_card`` section."""
    from components.pusher import model_card

    evaluation = read_json(os.path.join(evaluation_dir, EVALUATION_SUMMARY_FILE)) or {}
    attributions = read_json(os.path.join(evaluation_dir, ATTRIBUTIONS_FILE))
    schema_features, statistics = None, []
    schema_path = os.path.join(schema_dir, SCHEMA_FILE)
    if os.path.exists(schema_path):
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2

        with open(schema_path, encoding="utf-8") as handle:
            schema_features = model_card.schema_summary(text_format.Parse(handle.read(), schema_pb2.Schema()))
    for split in ("train", evaluation.get("split", "eval")):
        path = os.path.join(statistics_dir, f"Split-{split}", STATS_FILE)
        if os.path.exists(path):
            from tensorflow_metadata.proto.v0 import statistics_pb2

            with open(path, "rb") as handle:
                statistics.append(model_card.statistics_summary(
                    split, statistics_pb2.DatasetFeatureStatisticsList.FromString(handle.read())))
    people = config["model_card"].model_dump(mode="json", exclude_none=True) if "model_card" in config else {}
    features = config["features"].model_dump(mode="json")
    name = config["pipeline"].name if "pipeline" in config else "model"

    def build(manifest: dict) -> dict:
        return model_card.build_card(manifest=manifest, evaluation=evaluation, attributions=attributions,
                                     people=people, pipeline_name=name, features=features,
                                     schema_features=schema_features, statistics=statistics or None,
                                     approval=manifest.get("approval"))

    return build


def read_json(path: str):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def reference_files(evaluation_dir: str, examples_dir: str, statistics_dir: str, schema_dir: str) -> dict[str, str]:
    """What the Monitor later compares new data with, name -> local file: the train split's statistics,
    the schema, the Evaluator's figures and ExampleGen's split record."""
    files = {EVALUATION_SUMMARY_FILE: os.path.join(evaluation_dir, EVALUATION_SUMMARY_FILE),
             SPLIT_INFO_FILE: os.path.join(examples_dir, SPLIT_INFO_FILE),
             TRAIN_STATISTICS_FILE: os.path.join(statistics_dir, "Split-train", STATS_FILE),
             SCHEMA_FILE: os.path.join(schema_dir, SCHEMA_FILE)}
    return {name: path for name, path in files.items() if os.path.exists(path)}


def pipeline_code_version() -> str:
    """One fingerprint of the code of every component (``pipeline.code_version``): outputs reused from
    the cache were made by the same code, as it is part of their cache key."""
    from pipeline.code_version import code_version
    from pipeline.specs import COMPONENTS

    return hashlib.sha256(json.dumps({spec.name: code_version(spec.core_module) for spec in COMPONENTS},
                                     sort_keys=True).encode()).hexdigest()


def push(model_dir: str, blessing_dir: str, evaluation_dir: str, destination: str,
         progress: Callable[[str], None] = lambda _: None, fingerprints: dict | None = None,
         reference: Mapping[str, str] | None = None, *, infra_blessing_dir: str | None = None,
         card: Callable[[dict], dict] | None = None, approval: dict | None = None) -> dict:
    """Copies ``model_dir`` to ``<destination>/<new version>/`` if the blessing says so, and if it is the
    model the blessing judged.

    Args:
        model_dir: The SavedModel folder (local).
        destination: A local folder or a URL (``gs://bucket/models/credit``).
        fingerprints: Recorded in the manifest as they are (config and data fingerprints, spans, code).
        reference: Files copied into ``<version>/monitoring_reference/`` (name -> local path), their
            SHA-256 recorded in the manifest as ``reference``: what the Monitor compares with.
        infra_blessing_dir: The InfraValidator's verdict on this model; the model is pushed only when it
            says the model serves and names this model's fingerprint. Its checks go into the manifest.
        card: Builds the model card from the version's manifest (``card_builder``); it is written into
            the version beside the manifest (``model_card.json`` and ``model_card.html``).
        approval: A reviewer's override of the gates: the model is pushed though not blessed, and
            the approval (who, when, why, the failed checks) goes into the manifest and the card. It
            never overrides the serving check, nor the check that this is the model evaluated.

    Returns:
        What was pushed: version, path, and the manifest written inside the version; or, when the
        same model already serves (an intact version with its fingerprint), ``pushed`` false and why.

    Raises:
        GateFailed: The model is not blessed, or failed the serving check (the Pusher checks this
            itself, whatever ran before).
        ModelNotPushed: The model is not the one the blessing judged (its fingerprint differs, it cannot
            be read, or the blessing names none), or its copy does not load; nothing is left behind.
        SluicewayError: The destination cannot be written (or, for a URL, read or reached).
    """
    blessing_path = os.path.join(blessing_dir, BLESSING_FILE)
    with open(blessing_path, encoding="utf-8") as handle:
        blessing = json.load(handle)
    if not blessing["blessed"] and approval is None:
        raise GateFailed(f"Pusher: the model is not blessed ({len(blessing['blocking'])} gate checks failed); "
                         "nothing was pushed")
    serving = latest(destination)
    unchanged = f"the serving version ({serving or 'none yet'}) is unchanged"
    fingerprint = _judged_model(model_dir, blessing, blessing_path, unchanged)
    if approval is not None and not infra_blessing_dir:
        raise GateFailed(f"Pusher: an approval overrides gates, never the serving check, and this model has no "
                         f"serving check record; nothing was pushed and {unchanged}")
    serving_check = _serving_check(infra_blessing_dir, fingerprint, unchanged) if infra_blessing_dir else None
    serving_manifest = read_manifest(serving) if serving else None
    if serving and _serves(serving, serving_manifest, fingerprint, model_dir):
        # a rerun after a push, or a re-executed Trainer that made the same model: a new number would add nothing
        progress(f"this model is already serving as {serving}; nothing pushed")
        return {"pushed": False, "reason": f"the same model already serves as version {serving_manifest['version']}",
                "version": serving_manifest["version"], "path": serving}
    reference = dict(reference or {})
    manifest = {**_manifest(model_dir, blessing, evaluation_dir), "model_fingerprint": fingerprint,
                **model_record(model_dir), **(fingerprints or {}),
                "reference": {name: file_sha256(path) for name, path in sorted(reference.items())},
                **({"serving_check": serving_check} if serving_check else {}),
                **({"replaces": serving_manifest.get("version")} if serving_manifest and "version" in serving_manifest
                   else {}),
                **({"approval": approval} if approval is not None else {})}
    try:
        if is_url(destination):
            version, target, manifest = _push_to_url(model_dir, destination, manifest, unchanged, reference, card)
        else:
            version, target, manifest = _push_to_folder(model_dir, destination, manifest, unchanged, progress,
                                                        reference, card)
    except OSError as exc:
        raise SluicewayError(f"Pusher: cannot write to pusher.destination {destination}: {exc}") from None
    progress(f"pushed version {version} to {destination}")
    return {"pushed": True, "version": version, "path": target, "manifest": manifest}


def _judged_model(model_dir: str, blessing: dict, blessing_path: str, unchanged: str) -> str:
    """The fingerprint of ``model_dir``, when it is the model the blessing judged; refuses it otherwise."""
    judged = blessing.get("model_fingerprint")
    if not judged:
        raise ModelNotPushed(f"Pusher: the blessing {blessing_path} does not say which model it judged (it has no "
                             "model_fingerprint: an older sluiceway wrote it); nothing was pushed and "
                             f"{unchanged}. Rerun the pipeline so that the Evaluator judges the model again")
    try:
        fingerprint = model_fingerprint(model_dir)
    except ModelUnreadable as exc:
        raise ModelNotPushed(f"Pusher: {exc}; it is not the model the Evaluator blessed (fingerprint {judged}). "
                             f"Nothing was pushed and {unchanged}. The model was damaged after evaluation: rerun "
                             "the pipeline so that it is trained and evaluated again") from None
    if fingerprint != judged:
        raise ModelNotPushed(f"Pusher: the model in {model_dir} is not the model the Evaluator blessed: its "
                             f"fingerprint is {fingerprint}, the blessing ({blessing_path}) judged {judged}. The "
                             f"model changed after evaluation; nothing was pushed and {unchanged}. Rerun the "
                             "pipeline so that the model is evaluated as it is now")
    return fingerprint


def _serving_check(infra_blessing_dir: str, fingerprint: str, unchanged: str) -> dict:
    """The InfraValidator's record of this model, for the manifest; refuses a model it failed or did not check."""
    path = os.path.join(infra_blessing_dir, INFRA_BLESSING_FILE)
    with open(path, encoding="utf-8") as handle:
        infra = json.load(handle)
    if not infra["serves"]:
        raise GateFailed(f"Pusher: the model failed the serving check ({len(infra['blocking'])} of "
                         f"{len(infra['checks'])} checks, {path}); nothing was pushed and {unchanged}")
    if infra.get("model_fingerprint") != fingerprint:
        raise ModelNotPushed(f"Pusher: the serving check ({path}) judged the model {infra.get('model_fingerprint')}, "
                             f"not this one ({fingerprint}); nothing was pushed and {unchanged}. Rerun the pipeline "
                             "so that the model is checked as it is now")
    return {key: infra[key] for key in ("checks", "load_seconds", "latency", "tensorflow") if key in infra}


def _serves(serving: str, manifest: dict | None, fingerprint: str, model_dir: str) -> bool:
    """Whether the intact serving version is this model: by fingerprint, or for a version pushed before
    fingerprints, by its files' content (``model_sha256``) or the fingerprint read from its files."""
    manifest = manifest or {}
    if "version" not in manifest or version_problem(serving, manifest) is not None:
        return False  # a damaged version is replaced by a new one, even of the same model
    if manifest.get("model_fingerprint"):
        return manifest["model_fingerprint"] == fingerprint
    if manifest.get("model_sha256") == model_sha256(model_dir):
        return True
    try:
        return model_fingerprint(serving) == fingerprint
    except ModelUnreadable:
        return False


def _check_copy(copy: str, fingerprint: str) -> str | None:
    """Why the pushed copy would not serve as the model evaluated (``None`` when it would): its
    fingerprint, then TensorFlow loading it and finding its ``serving_default`` signature."""
    import tensorflow as tf

    try:
        copied = model_fingerprint(copy)
    except ModelUnreadable as exc:
        return exc.problem
    if copied != fingerprint:
        return f"its fingerprint is {copied}, the model's is {fingerprint} (the copy differs from the model)"
    try:
        ensure_tree_ops(copy)  # a TensorFlow Decision Forests model loads only with TF-DF's ops registered
    except RuntimeError as exc:
        return str(exc)
    try:
        loaded = tf.saved_model.load(copy)
    except Exception as exc:  # noqa: BLE001 - whatever stops TensorFlow loading it stops TF Serving too
        message = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
        return f"tf.saved_model.load fails: {type(exc).__name__}: {message[0] if message else ''}"
    if SERVING_SIGNATURE not in loaded.signatures:
        return f"it has no {SERVING_SIGNATURE} signature (it has {', '.join(sorted(loaded.signatures)) or 'none'})"
    return None


def _refuse_copy(copy: str, problem: str, unchanged: str) -> ModelNotPushed:
    return ModelNotPushed(f"Pusher: the copy of the model in {copy} cannot be served: {problem}. The copy was "
                          f"removed; nothing was pushed and {unchanged}")


def _push_to_folder(model_dir: str, destination: str, manifest: dict, unchanged: str,
                    progress: Callable[[str], None], reference: Mapping[str, str],
                    card: Callable[[dict], dict] | None = None) -> tuple[int, str, dict]:
    os.makedirs(destination, exist_ok=True)
    removed, unknown = clean_stale_temporaries(destination)
    if removed:
        progress(f"removed {len(removed)} temporary copies that killed pushes left in {destination}: "
                 + ", ".join(removed))
    if unknown:
        progress(f"kept {', '.join(unknown)} in {destination}: no lock file says whether its push still runs "
                 "(remove it by hand once no push runs)")
    version = _next_version(entries(destination))
    name = temporary_name(version)
    temporary, target = os.path.join(destination, name), os.path.join(destination, str(version))
    with held_lock(temporary + LOCK_SUFFIX):  # held until the copy is a version: the next push leaves it alone
        try:
            shutil.copytree(model_dir, temporary)
            if reference:
                os.makedirs(os.path.join(temporary, REFERENCE_DIR))
                for name, path in reference.items():
                    shutil.copyfile(path, os.path.join(temporary, REFERENCE_DIR, name))
            manifest = {"version": version, **manifest}
            with open(os.path.join(temporary, MANIFEST_FILE), "w", encoding="utf-8") as handle:
                json.dump(manifest, handle, indent=2)
            if card is not None:
                from components.pusher.model_card import write_card

                write_card(temporary, card(manifest))
            problem = _check_copy(temporary, manifest["model_fingerprint"])
            if problem:
                raise _refuse_copy(temporary, problem, unchanged)
            os.rename(temporary, target)  # atomic on one file system; never replaces an existing version
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return version, target, manifest


def _push_to_url(model_dir: str, destination: str, manifest: dict, unchanged: str,
                 reference: Mapping[str, str], card: Callable[[dict], dict] | None = None) -> tuple[int, str, dict]:
    import tensorflow as tf

    gfile = tf.io.gfile
    try:
        gfile.makedirs(destination)
        version = _next_version(entries(destination))
        temporary = join(destination, temporary_name(version))
        target = join(destination, str(version))
        folders, files = _model_tree(model_dir)
        for folder in folders:
            gfile.makedirs(join(temporary, folder))
        for name in files:  # the upload, the slow part, under a name TF Serving ignores
            gfile.copy(os.path.join(model_dir, name), join(temporary, name), overwrite=False)
        problem = _check_copy(temporary, manifest["model_fingerprint"])  # loads what was uploaded
        if problem:
            gfile.rmtree(temporary)
            raise _refuse_copy(temporary, problem, unchanged)
        if gfile.exists(target):
            raise SluicewayError(f"Pusher: version {version} appeared in pusher.destination {destination} while "
                                 "this push was copying; run one push at a time to a destination")
        for folder in folders:
            gfile.makedirs(join(target, folder))
        for name in files:  # server-side moves, saved_model.pb last: before it, no SavedModel is there
            gfile.rename(join(temporary, name), join(target, name), overwrite=False)
        if reference:
            gfile.makedirs(join(target, REFERENCE_DIR))
            for name, path in reference.items():
                gfile.copy(path, join(join(target, REFERENCE_DIR), name), overwrite=False)
        gfile.rmtree(temporary)  # only the emptied folders are left in it
        manifest = {"version": version, **manifest}
        if card is not None:  # written locally, then copied in before the manifest
            import tempfile

            from components.pusher.model_card import write_card

            with tempfile.TemporaryDirectory() as folder:
                for path in write_card(folder, card(manifest)):
                    gfile.copy(path, join(target, os.path.basename(path)), overwrite=False)
        with gfile.GFile(join(target, MANIFEST_FILE), "w") as handle:  # the commit: now it is a version
            handle.write(json.dumps(manifest, indent=2))
    except tf.errors.OpError as exc:
        raise SluicewayError(f"Pusher: cannot write to pusher.destination {destination}: {exc.message}") from None
    return version, target, manifest


def _next_version(names: list[str]) -> int:
    """A number above every one in use in any form, so a push never adds to a folder another one left."""
    return max([int(time.time()), *(number + 1 for number in taken_numbers(names))])


def _model_tree(model_dir: str) -> tuple[list[str], list[str]]:
    """The model's folders and files, relative with '/', with the SavedModel's graph file last."""
    folders, files = [], []
    for root, dirs, names in os.walk(model_dir):
        relative = os.path.relpath(root, model_dir)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        folders += [prefix + name for name in sorted(dirs)]
        files += [prefix + name for name in sorted(names)]
    return folders, sorted(files, key=lambda name: (name in ("saved_model.pb", "saved_model.pbtxt"), name))


def _manifest(model_dir: str, blessing: dict, evaluation_dir: str) -> dict:
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(model_dir)))  # <run>/Trainer/model
    summary_path = os.path.join(evaluation_dir, EVALUATION_SUMMARY_FILE)
    overall = {}
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as handle:
            overall = next((r["metrics"] for r in json.load(handle)["slices"] if r["slice"] == "overall"), {})
    hyperparameters = model_type = None
    training = os.path.join(os.path.dirname(model_dir), "model_run", "training.json")
    if os.path.exists(training):
        with open(training, encoding="utf-8") as handle:
            trained = json.load(handle)
        hyperparameters, model_type = trained.get("hyperparameters"), trained.get("model")
    return {"pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source_model": os.path.abspath(model_dir), "run": os.path.basename(run_dir),
            "metrics": overall, "gates": blessing["checks"], "hyperparameters": hyperparameters,
            **({"model_type": model_type} if model_type else {})}
