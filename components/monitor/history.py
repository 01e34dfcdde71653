"""The monitoring history: one small JSON record per monitor run, kept beside the serving versions.

``<pusher.destination>/monitoring/<run>.json`` (a local folder or a URL: the same place in a local run
and in Kubeflow, where nothing else outlives a run). TF Serving loads numbered folders only, so the
records are never mistaken for a version. Each record names the version it judged, so
``sluiceway lineage`` lists the judgements of a version and the report draws them over time.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from components.pusher.versions import is_url, join, read_text
from pipeline.errors import SluicewayError

HISTORY_DIR = "monitoring"


def entry(summary: dict) -> dict:
    """The record of one monitor run, from its summary."""
    evaluation = summary.get("evaluation") or {}
    overall = next((m for m in evaluation.get("metrics", [])
                    if m["slice"] == "overall" and m["metric"] == evaluation.get("metric")), None)
    return {"pipeline": summary["pipeline"], "run": summary["run"], "at": summary["at"],
            "version": summary["serving"]["version"], "verdict": summary["verdict"], "retrain": summary["retrain"],
            "rows": summary["data"]["rows"], "source": summary["data"]["source"], "span": summary["data"]["span"],
            "labelled": summary["data"]["labelled"],
            "max_distance": max((m["value"] for m in summary["drift"]), default=0.0),
            "metric": evaluation.get("metric"), "value": overall["now"] if overall else None,
            "at_push": overall["at_push"] if overall else None,
            "reasons": [{"kind": r["kind"], "what": r["what"], "slice": r["slice"]} for r in summary["reasons"]]}


def read(destination: Optional[str], pipeline: Optional[str] = None, version: Optional[int] = None) -> list[dict]:
    """Earlier records (of ``pipeline``, of ``version`` when given), oldest first; unreadable ones are skipped.

    The history is the destination's: every judgement of a model served from it, whichever runner made
    it (a kfp task knows its run's folder, not the pipeline's name), so callers filter by version."""
    if not destination:
        return []
    folder = join(destination, HISTORY_DIR)
    records = []
    for name in _list(folder):
        if not name.endswith(".json"):
            continue
        try:
            record = json.loads(read_text(join(folder, name)) or "")
        except (OSError, ValueError, UnicodeDecodeError, SluicewayError):
            continue
        if (pipeline is None or record.get("pipeline") == pipeline) and \
                (version is None or record.get("version") == version):
            records.append(record)
    return sorted(records, key=lambda r: (r.get("at", ""), r.get("run", "")))


def write(destination: str, record: dict) -> None:
    """Adds ``record`` as ``<destination>/monitoring/<run>.json`` (written whole: atomically in a local
    folder, as one object at a URL).

    Raises:
        SluicewayError: The destination cannot be written.
    """
    folder = join(destination, HISTORY_DIR)
    path = join(folder, f"{record['run']}.json")
    text = json.dumps(record, indent=2)
    if not is_url(destination):
        from pipeline.files import atomic_write_text

        try:
            os.makedirs(folder, exist_ok=True)
            atomic_write_text(path, text)
        except OSError as exc:
            raise SluicewayError(f"monitor: cannot record the judgement in {folder}: {exc}") from None
        return
    import tensorflow as tf

    try:
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(path, "w") as handle:
            handle.write(text)
    except tf.errors.OpError as exc:
        raise SluicewayError(f"monitor: cannot record the judgement in {folder}: {exc.message}") from None


def _list(folder: str) -> list[str]:
    if not is_url(folder):
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    import tensorflow as tf

    try:
        return sorted(tf.io.gfile.listdir(folder)) if tf.io.gfile.isdir(folder) else []
    except tf.errors.OpError as exc:
        raise SluicewayError(f"monitor: cannot read the monitoring history in {folder}: {exc.message}") from None
