"""``sluiceway lineage``: where a serving version came from and what has judged it since.

Read from what the pipeline records, nothing re-run: the version's manifest (spans and data
fingerprints, config, hyperparameters, code version, the gate checks it passed, the run that pushed
it), ML Metadata (that run: its status, config file and annotations, among them the monitor run whose
verdict triggered it), the monitoring history beside the versions (every monitor run that judged it)
and the destination's other versions (which one it replaced, and which replaced it).
"""

from __future__ import annotations

import os
from typing import Optional

from pipeline.config import PipelineConfig
from pipeline.errors import SluicewayError


class NoSuchVersion(SluicewayError):
    """The version (or run) asked about is not in the push destination."""


def version_lineage(config: PipelineConfig, version: Optional[int] = None, run: Optional[str] = None) -> dict:
    """The lineage of one pushed version: the serving one, ``version``, or the one ``run`` pushed.

    Raises:
        NoSuchVersion: Nothing is pushed, or no version matches.
    """
    from components.monitor import history
    from components.monitor.reference import serving_version
    from components.pusher.versions import join, read_manifest, versions
    from pipeline.lineage import STORE_FILE, Lineage
    from pipeline.runner import pipeline_dir

    destination = config.pusher.destination
    if not destination:
        raise NoSuchVersion("lineage: pusher.destination is not set, so nothing is pushed to trace")
    found = versions(destination)
    if not found:
        raise NoSuchVersion(f"lineage: no version is pushed to {destination} yet")
    manifests = {number: read_manifest(join(destination, str(number))) or {} for number in found}
    if run is not None:
        matches = [number for number, manifest in manifests.items() if manifest.get("run") == run]
        if not matches:
            raise NoSuchVersion(f"lineage: run {run} pushed no version to {destination} (versions there: "
                                f"{', '.join(str(n) for n in found)}, pushed by runs "
                                f"{', '.join(sorted({str(m.get('run')) for m in manifests.values()}))})")
        version = matches[-1]
    try:
        serving = serving_version(destination).version
    except SluicewayError:
        serving = None
    if version is None:
        version = serving if serving is not None else found[-1]
    if version not in manifests:
        raise NoSuchVersion(f"lineage: version {version} is not in {destination}; its versions are "
                            f"{', '.join(str(n) for n in found)}")
    manifest = manifests[version]
    index = found.index(version)
    root = pipeline_dir(config)
    record = None
    if manifest.get("run") and os.path.exists(os.path.join(root, STORE_FILE)):
        record = next((r for r in Lineage(root, create=False).runs(config.pipeline.name)
                       if r.run_id == manifest["run"]), None)
    annotations = dict(record.annotations) if record else {}
    judged = history.read(destination, version=version)
    trigger = None
    if annotations.get("triggered_by"):
        by_run = {r["run"]: r for r in history.read(destination)}
        trigger = by_run.get(annotations["triggered_by"]) or {"run": annotations["triggered_by"],
                                                             "verdict": annotations.get("trigger_verdict"),
                                                             "reasons": []}
        trigger = {**trigger, "reasons_text": annotations.get("trigger_reasons", "")}
    checks = manifest.get("gates") or []
    return {
        "pipeline": config.pipeline.name, "destination": destination, "version": version,
        "uri": join(destination, str(version)), "serving": version == serving,
        "pushed_at": manifest.get("pushed_at"), "run": manifest.get("run"),
        "run_record": None if record is None else {"status": record.status, "started": record.started,
                                                   "config_file": record.config_file},
        "spans": manifest.get("spans"), "data_sha256": manifest.get("data_sha256") or {},
        "config_sha256": manifest.get("config_sha256"), "code_version": manifest.get("code_version"),
        "model_fingerprint": manifest.get("model_fingerprint"), "hyperparameters": manifest.get("hyperparameters"),
        "metrics": manifest.get("metrics") or {},
        "checks": checks, "checks_passed": sum(c.get("status") == "pass" for c in checks),
        "triggered_by": trigger, "approval": manifest.get("approval"),
        "replaced": found[index - 1] if index > 0 else None,
        "replaced_by": found[index + 1] if index + 1 < len(found) else None,
        "monitor_runs": judged,
    }


def format_lineage(lineage: dict) -> str:
    """The lineage as text, for a person."""
    from components.example_gen.sources import spans_text
    from pipeline.table import text_table

    lines = [f"Version {lineage['version']} of '{lineage['pipeline']}' at {lineage['uri']}"
             + (" (serving now)" if lineage["serving"] else " (not serving)")]
    record = lineage["run_record"]
    lines.append(f"  pushed:          {lineage['pushed_at'] or '?'} by run {lineage['run'] or '?'}"
                 + (f" ({record['status']}, config {record['config_file']})" if record else
                    " (the run is not in this machine's ML Metadata)"))
    spans = lineage["spans"]
    if spans:
        numbers = [s["number"] for s in spans]
        lines.append(f"  data:            {spans_text(sorted(numbers))}: " + "; ".join(
                         f"span {s['number']} {s.get('rows', 0):,} rows ({len(s.get('files', []))} file(s), sha256 "
                         + ", ".join(str(h)[:12] for h in (s.get("sha256") or {}).values()) + ")" for s in spans))
    else:
        lines.append("  data:            " + ("; ".join(f"{os.path.basename(path)} sha256 {sha[:12]}"
                                                       for path, sha in lineage["data_sha256"].items()) or "-"))
    lines.append(f"  config:          sha256 {lineage['config_sha256'] or '-'}")
    lines.append(f"  code version:    {lineage['code_version'] or '- (pushed before it was recorded)'}")
    lines.append(f"  model:           fingerprint {lineage['model_fingerprint'] or '-'}")
    if lineage["hyperparameters"]:
        lines.append("  hyperparameters: " + ", ".join(f"{k}={v}" for k, v in lineage["hyperparameters"].items()))
    trigger = lineage["triggered_by"]
    if trigger:
        lines.append(f"  triggered by:    monitor run {trigger['run']}: {trigger.get('verdict') or '?'}"
                     + (f" ({trigger['reasons_text']})" if trigger.get("reasons_text") else ""))
    else:
        lines.append("  triggered by:    a run started by hand (no monitor verdict)")
    approval = lineage.get("approval")
    if approval:
        failed = approval.get("failed_checks") or []
        lines.append(f"  approved:        by {approval.get('by')} at {approval.get('at')} (run {approval.get('run')}), "
                     f"overriding {len(failed)} failed gate check(s): {approval.get('reason')}")
        lines += [f"                   - {c.get('gate')} on {c.get('slice')}: {c.get('metric')} {_number(c.get('value'))}"
                  f" (bound {c.get('bound') or '-'})" for c in failed]
    lines.append(f"  replaced:        {lineage['replaced'] or '- (the first version)'}")
    lines.append(f"  replaced by:     {lineage['replaced_by'] or '- (the newest version)'}")
    checks = lineage["checks"]
    lines.append(f"\nGate checks at push: {lineage['checks_passed']} of {len(checks)} passed")
    if checks:
        lines.append(text_table(("gate", "slice", "metric", "value", "bound", "status"), [
            (c.get("gate"), c.get("slice"), c.get("metric"), _number(c.get("value")), c.get("bound") or "-",
             c.get("status")) for c in checks], max_width=60))
    runs = lineage["monitor_runs"]
    lines.append(f"\nMonitor runs that judged it: {len(runs) or 'none yet'}")
    if runs:
        lines.append(text_table(("run", "at", "data", "rows", "verdict", "retrain", "findings"), [
            (r["run"], r["at"], (f"span {r['span']}" if r.get("span") is not None else os.path.basename(r["source"])),
             f"{r['rows']:,}", r["verdict"], "yes" if r["retrain"] else "no",
             ", ".join(sorted({f"{x['kind']} {x['what']}" for x in r.get("reasons", [])}))[:80] or "-")
            for r in runs]))
    return "\n".join(lines)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"
