"""What the serving model was trained and judged on, as recorded at its push.

The Pusher copies into every version it pushes (``<version>/monitoring_reference/``) the train
split's TFDV statistics, the schema, the Evaluator's per-slice figures (``metrics.json``) and
ExampleGen's ``split_info.json``, and records each file's SHA-256 in the manifest. The Monitor
compares new data with those, never by re-reading the old data, which may be gone. A version pushed
before the reference was kept is traced through the manifest's run to that run's ``run.json`` (the
local runner's record of every output, cached ones included), when the run folder is still there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional

from components.baseline_resolver.core import read_manifest_or_none
from components.pusher.versions import MANIFEST_FILE, is_url, join, read_text, version_problem, versions
from pipeline.errors import SluicewayError
from pipeline.specs import EVALUATION_SUMMARY_FILE, SCHEMA_FILE, SPLIT_INFO_FILE, STATS_FILE

REFERENCE_DIR = "monitoring_reference"
TRAIN_STATISTICS_FILE = "train_" + STATS_FILE
REFERENCE_FILES = (TRAIN_STATISTICS_FILE, SCHEMA_FILE, EVALUATION_SUMMARY_FILE, SPLIT_INFO_FILE)


class NothingServes(SluicewayError):
    """There is no serving model to monitor (nothing pushed, or every version damaged)."""


@dataclass(frozen=True)
class Serving:
    """The serving version: its number, folder and manifest."""

    version: int
    uri: str
    manifest: dict


@dataclass(frozen=True)
class Reference:
    """What the serving model was trained and judged on."""

    train_statistics: object          # DatasetFeatureStatisticsList of its train split
    schema: object                    # Schema proto
    evaluation: Optional[dict]        # the Evaluator's metrics.json at push (per-slice rows)
    split_info: Optional[dict]        # ExampleGen's split_info.json (rows, spans, fingerprints)
    where: str                        # where it was read from, for the report


def serving_version(destination: Optional[str]) -> Serving:
    """The newest intact version at ``destination``: the model serving now (as the BaselineResolver
    finds it: a damaged newest version is skipped, TF Serving keeps the one before).

    Raises:
        NothingServes: No destination, nothing pushed, or no intact version.
    """
    if not destination:
        raise NothingServes("monitor: pusher.destination is not set, so no model serves to be monitored")
    found = versions(destination)
    if not found:
        raise NothingServes(f"monitor: no model serves in {destination} yet; run the pipeline (sluiceway run) so "
                            "that a model is pushed, then monitor it")
    damaged = []
    for version in reversed(found):
        uri = join(destination, str(version))
        manifest = read_manifest_or_none(uri)
        problem = version_problem(uri, manifest) if manifest is not False else "its manifest cannot be read"
        if problem is None and manifest:
            return Serving(version, uri, manifest)
        damaged.append(f"{version} ({problem or 'no ' + MANIFEST_FILE})")
    raise NothingServes(f"monitor: no version in {destination} can serve: {', '.join(damaged)}")


def load_reference(serving: Serving, pipeline_root: str) -> Reference:
    """The serving model's reference data (see the module docstring).

    Raises:
        SluicewayError: The reference is missing or does not match the manifest's fingerprints.
    """
    import tensorflow_data_validation as tfdv

    folder = join(serving.uri, REFERENCE_DIR)
    recorded = serving.manifest.get("reference") or {}
    if recorded:
        paths = {name: join(folder, name) for name in REFERENCE_FILES}
        for name, sha in recorded.items():
            actual = _sha256(paths[name]) if name in paths else None
            if actual != sha:
                raise SluicewayError(
                    f"monitor: {paths.get(name, name)} of serving version {serving.version} "
                    + ("is missing" if actual is None else f"has SHA-256 {actual}, its manifest recorded {sha}")
                    + "; the record of what the model was trained on is damaged. Push the model again (rerun the "
                      "pipeline) to monitor it")
        where = folder
    else:
        paths, where = _paths_from_run(serving, pipeline_root)
    return Reference(tfdv.load_stats_binary(paths[TRAIN_STATISTICS_FILE]),
                     tfdv.load_schema_text(paths[SCHEMA_FILE]),
                     _json(paths.get(EVALUATION_SUMMARY_FILE)), _json(paths.get(SPLIT_INFO_FILE)), where)


def _paths_from_run(serving: Serving, pipeline_root: str) -> tuple[dict, str]:
    """The reference files of a version pushed without a copy: from its run's ``run.json``."""
    from pipeline.runner import RUN_FILE

    run = serving.manifest.get("run")
    run_file = os.path.join(pipeline_root, run or "?", RUN_FILE)
    if not run or not os.path.exists(run_file):
        raise SluicewayError(
            f"monitor: serving version {serving.version} was pushed without the record of what it was trained on "
            f"({REFERENCE_DIR}/, kept by pushes since sluiceway monitor exists), and its run "
            f"{run or '(unnamed)'} is not under {pipeline_root}. Rerun the pipeline so that a model is pushed with it")
    with open(run_file, encoding="utf-8") as handle:
        outputs = {(c["name"], name): uri for c in json.load(handle)["components"]
                   for name, uri in c.get("outputs", {}).items()}
    try:
        paths = {TRAIN_STATISTICS_FILE: os.path.join(outputs[("StatisticsGen", "statistics")], "Split-train", STATS_FILE),
                 SCHEMA_FILE: os.path.join(outputs[("SchemaGen", "schema")], SCHEMA_FILE),
                 EVALUATION_SUMMARY_FILE: os.path.join(outputs[("Evaluator", "evaluation")], EVALUATION_SUMMARY_FILE),
                 SPLIT_INFO_FILE: os.path.join(outputs[("ExampleGen", "examples")], SPLIT_INFO_FILE)}
    except KeyError as exc:
        raise SluicewayError(f"monitor: run {run} (which pushed version {serving.version}) has no {exc.args[0][0]} "
                             f"output in {run_file}") from None
    missing = [path for path in paths.values() if not os.path.exists(path)]
    if missing:
        raise SluicewayError(f"monitor: the outputs of run {run} that pushed version {serving.version} are gone "
                             f"({missing[0]}); rerun the pipeline so that a model is pushed with its reference")
    return paths, f"the outputs of run {run}"


def _json(path: Optional[str]) -> Optional[dict]:
    if not path:
        return None
    text = read_text(path)
    return None if text is None else json.loads(text)


def _sha256(path: str) -> Optional[str]:
    """The file's SHA-256 (its bytes: statistics are binary), or ``None`` when it is missing (local or at a URL)."""
    from pipeline.files import file_sha256

    if is_url(path):
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            return None
    elif not os.path.exists(path):
        return None
    return file_sha256(path)
