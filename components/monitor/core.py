"""Monitor: is the serving model still fit for the data it sees now, and is retraining due?

New data (a new span of ``data.source``, or logged serving requests, with or without labels) is
compared with what the serving model was trained on, found through its push (``reference``):

- **Data drift** with TFDV: every feature's distance to the train split the model learned from
  (L-infinity for categorical, Jensen-Shannon divergence for numeric features), decided as the
  ExampleValidator decides (threshold, then a two-sample test against sampling noise), plus TFDV's
  schema anomalies (unseen categories, missing features, wrong types).
- **With labels**: the serving model is evaluated on the new data with TFMA, overall and per slice
  (the Evaluator's code), and (``degradation``) its metrics are compared with the figures recorded at
  its push; the push gates are re-checked on the new data, fairness gates included. No-regression
  gates compare a candidate with the serving model and have no meaning here: the degradation checks
  take their place.

The verdict is a value: ``healthy``, ``drifted`` (the data moved, the model was not shown to suffer)
or ``degraded`` (a metric fell or a gate fails on the new data), with every reason, and whether
retraining is due (a reason of a kind in ``monitoring.retrain_on``). Each judgement is also written
beside the serving versions (``<destination>/monitoring/<run>.json``): the monitoring history, which
the report draws and ``sluiceway lineage`` lists.
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable, Mapping, Optional

from components.common.artifacts import split_file
from components.example_validator.core import COMPARATOR_ANOMALIES, DRIFT, validate_against_train
from components.monitor import history as monitor_history
from components.monitor.reference import Reference, load_reference, serving_version
from pipeline.config import (DataConfig, EvaluatorConfig, FairnessGate, FeaturesConfig, MetricGate, MonitoringConfig,
                             RegressionGate, Section, AttributionGate)
from pipeline.errors import DataError
from pipeline.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from pipeline.specs import ANOMALIES_FILE, STATS_FILE
from pipeline.table import text_table

HEALTHY, DRIFTED, DEGRADED = "healthy", "drifted", "degraded"
DATA_DRIFT, SCHEMA, DEGRADATION, FAIRNESS = "data_drift", "schema", "degradation", "fairness"
# which monitoring.retrain_on entry a reason's kind falls under
RETRAIN_KIND = {DATA_DRIFT: "data_drift", SCHEMA: "data_drift", DEGRADATION: "degradation", FAIRNESS: "fairness"}
SUMMARY_FILE = "summary.json"
JUDGED_SPLIT = "eval"  # the new data is written as one split, the one the Evaluator's code reads
MEASURE_NAMES = {"l infty": "L-infinity", "jensen shannon divergence": "Jensen-Shannon divergence"}
REASON_HEADERS = ("kind", "what", "slice", "value", "bound", "detail", "retrain")


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the Monitor as a pipeline step; see ``monitor``. Returns its figures.

    The verdict is in the figures: ``verdict`` (healthy, drifted, degraded), ``retrain`` (retraining
    is due), ``fits`` (not ``retrain``: the Verdict the CLI reads, exit code 6 when false) and
    ``reasons`` (a table of what made retraining due).
    """
    summary = monitor(config["monitoring"], config["data"], config["features"], config["validation"],
                      config["evaluator"], config["pusher"], config["beam"], outputs["findings"],
                      outputs["monitoring_report"], progress)
    due = [r for r in summary["reasons"] if r["triggers_retrain"]]
    evaluation = summary["evaluation"] or {}
    overall = next((m for m in evaluation.get("metrics", []) if m["slice"] == "overall"
                    and m["metric"] == evaluation.get("metric")), None)
    figures = {"rows": summary["data"]["rows"],
               "labelled": summary["data"]["labelled"], "serving_version": str(summary["serving"]["version"]),
               "drifted_features": sum(m["decision"] == DRIFT for m in summary["drift"]),
               "anomalies": len(summary["anomalies"]),
               "max_distance": max((m["value"] for m in summary["drift"]), default=0.0)}
    if overall is not None and overall["now"] is not None:
        figures[f"{overall['metric']}_now"] = overall["now"]
        if overall["at_push"] is not None:
            figures[f"{overall['metric']}_at_push"] = overall["at_push"]
    return {"verdict": summary["verdict"], "retrain": summary["retrain"], "fits": not summary["retrain"],
            "reasons": reasons_table(due) if due else "", **figures}


def reasons_table(reasons: list[dict]) -> str:
    """The reasons as a text table (what ``sluiceway monitor`` prints)."""
    return text_table(REASON_HEADERS, [
        (r["kind"], r["what"], r["slice"], "-" if r["value"] is None else f"{r['value']:.4g}", r["bound"] or "-",
         r["detail"], "yes" if r["triggers_retrain"] else "no") for r in reasons], max_width=70)


def monitor(monitoring: MonitoringConfig, data: DataConfig, features: FeaturesConfig, validation,
            evaluator: EvaluatorConfig, pusher, beam, monitoring_dir: str, report_path: str,
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Judges new data against the serving model; writes the summary, the report and the history record.

    Args:
        monitoring: The ``monitoring`` section (source, thresholds, retrain_on, min_rows, degradation).
        data: The ``data`` section: the default source (its latest span) and how files are read.
        features, validation, evaluator, pusher, beam: Those sections.
        monitoring_dir: Output folder: ``summary.json``, the new data as examples, its statistics,
            TFDV's anomalies and (with labels) TFMA's evaluation.
        report_path: Output HTML file: the monitoring report.

    The run is the folder two above ``monitoring_dir`` (``<run>/Monitor/findings``, as the runners lay
    outputs out); its parent holds the pipeline's other runs, where a version pushed without a
    reference is traced.

    Returns:
        The summary (``summary.json``'s content).

    Raises:
        NothingServes: No model serves at ``pusher.destination``.
        DataError: The data is missing, malformed, or has fewer than ``monitoring.min_rows`` rows.
    """
    from components.monitor import data as new_data
    from components.monitor.report import render

    started = time.time()
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(monitoring_dir)))
    run_id, pipeline_root = os.path.basename(run_dir), os.path.dirname(run_dir)
    serving = serving_version(pusher.destination)
    progress(f"the model serving now is version {serving.version} ({serving.uri})")
    reference = load_reference(serving, pipeline_root)
    os.makedirs(monitoring_dir, exist_ok=True)
    examples_dir = os.path.join(monitoring_dir, "examples")
    judged = new_data.read(monitoring, data, features, examples_dir, JUDGED_SPLIT, progress)
    if judged.rows < monitoring.min_rows:
        raise DataError(f"monitor: {judged.source} has {judged.rows:,} rows; monitoring.min_rows is "
                        f"{monitoring.min_rows:,}: too few to judge drift or metrics. Monitor more data, or lower "
                        "monitoring.min_rows")
    progress(f"judging {judged.rows:,} rows of {judged.source}"
             + ("" if judged.labelled else f" (no {features.label} column: drift only, no evaluation)"))
    statistics = new_data.statistics(split_file(examples_dir, JUDGED_SPLIT), beam,
                                     os.path.join(monitoring_dir, "statistics", STATS_FILE), progress)
    drift, anomalies = _drift(reference, statistics, monitoring, validation, features, judged.labelled,
                              monitoring_dir)
    evaluation = None
    if judged.labelled:
        evaluation = _evaluate(serving.uri, examples_dir, reference, monitoring, evaluator, features, beam,
                               os.path.join(monitoring_dir, "evaluation"), progress)
    reasons = _reasons(drift, anomalies, evaluation, monitoring)
    verdict = (DEGRADED if any(r["kind"] in (DEGRADATION, FAIRNESS) for r in reasons)
               else DRIFTED if reasons else HEALTHY)
    summary = {
        "pipeline": os.path.basename(pipeline_root), "run": run_id,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "task": features.task,
        "data": {"source": judged.source, "span": judged.span, "rows": judged.rows, "labelled": judged.labelled,
                 "files": judged.files, "sha256": judged.sha256},
        "serving": {"version": serving.version, "uri": serving.uri, "pushed_at": serving.manifest.get("pushed_at"),
                    "run": serving.manifest.get("run"),
                    "trained_on": _trained_on(reference), "reference": reference.where},
        "verdict": verdict, "retrain": any(r["triggers_retrain"] for r in reasons),
        "retrain_on": list(monitoring.retrain_on), "reasons": reasons, "drift": drift, "anomalies": anomalies,
        "evaluation": evaluation,
    }
    record = monitor_history.entry(summary)
    earlier = monitor_history.read(pusher.destination)
    summary["history"] = [*[e for e in earlier if e["run"] != run_id], record]
    atomic_write_json(os.path.join(monitoring_dir, SUMMARY_FILE), summary, indent=2)
    os.makedirs(os.path.dirname(report_path) or ".", exist_ok=True)
    atomic_write_text(report_path, render(summary))
    monitor_history.write(pusher.destination, record)
    progress(f"verdict: {verdict}" + (f"; retraining is due ({len([r for r in reasons if r['triggers_retrain']])} "
                                      "reasons)" if summary["retrain"] else "; no retraining due"))
    return summary


def _trained_on(reference: Reference) -> dict:
    info = reference.split_info or {}
    spans = info.get("spans")
    return {"spans": [s["number"] for s in spans] if spans else None,
            "rows": sum(split.get("rows", 0) for split in info.get("splits", {}).values()) or None,
            "train_rows": info.get("splits", {}).get("train", {}).get("rows")}


def _drift(reference: Reference, statistics, monitoring: MonitoringConfig, validation, features: FeaturesConfig,
           labelled: bool, monitoring_dir: str) -> tuple[list[dict], list[dict]]:
    """Every feature's distance and decision, and TFDV's schema anomalies of the new data."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    schema.CopyFrom(reference.schema)
    # only what the model reads is judged: a split key or id column need not be logged with requests, and
    # logged requests carry no label, so their absence is no anomaly
    judged = set(features.feature_names) | ({features.label} if labelled else set())
    kept = [f for f in schema.feature if f.name in judged]
    del schema.feature[:]
    schema.feature.extend(kept)
    thresholds = monitoring.drift or validation.drift
    result, anomalies, measures = validate_against_train(reference.train_statistics, statistics, schema, thresholds,
                                                         features, "new data", dict(monitoring.thresholds))
    os.makedirs(os.path.join(monitoring_dir, "anomalies"), exist_ok=True)
    atomic_write_bytes(os.path.join(monitoring_dir, "anomalies", ANOMALIES_FILE), result.SerializeToString())
    kinds = {**{name: "numeric" for name in features.numeric}, **{name: "categorical" for name in features.categorical}}
    drift = [{"feature": m.feature, "type": kinds.get(m.feature, "-"),
              "measure": MEASURE_NAMES.get(m.measure.split(" ", 1)[1], m.measure.split(" ", 1)[1]),
              "value": m.value, "threshold": m.threshold, "test": m.test, "statistic": m.statistic,
              "p_value": m.p_value,
              "holm_p_value": m.holm_p_value, "decision": m.decision, "note": m.note} for m in measures]
    drift.sort(key=lambda m: (features.feature_names.index(m["feature"]) if m["feature"] in features.feature_names
                              else len(features.feature_names), m["feature"]))
    # drift found is in ``drift``; the anomalies are the schema's findings
    return drift, [{"feature": a.feature, "anomaly": a.anomaly, "description": a.description} for a in anomalies
                   if a.anomaly not in COMPARATOR_ANOMALIES.values()]


def _evaluate(model_dir: str, examples_dir: str, reference: Reference, monitoring: MonitoringConfig,
              evaluator: EvaluatorConfig, features: FeaturesConfig, beam, evaluation_dir: str,
              progress: Callable[[str], None]) -> dict:
    """The serving model on the new data: TFMA per slice, the push gates re-checked (without the
    no-regression ones) and the degradation checks against the figures at push."""
    from components.evaluator import gates
    from components.evaluator import metrics as metric_table
    from components.evaluator.core import run_evaluator
    from components.evaluator.eval_config import decision_threshold

    kept = [g for g in evaluator.gates if not isinstance(g, (RegressionGate, AttributionGate))]
    # (the attributions and their gates are the push's review of a candidate, not re-judged on new data)
    judged = evaluator.model_copy(update={"gates": kept, "split": JUDGED_SPLIT,
                                          "attributions": evaluator.attributions.model_copy(update={"enabled": False})})
    progress(f"evaluating the serving model on the new data ({len(kept)} push gates re-checked)")
    result = run_evaluator(examples_dir, model_dir, evaluation_dir, os.path.join(evaluation_dir, "evaluation.md"),
                           judged, features, beam, progress)
    rows = result["rows"]
    checks = gates.evaluate(judged, rows, None, result["validation"], groups=gates.data_groups(examples_dir),
                            task=features.task)
    at_push = (reference.evaluation or {}).get("slices") or []
    threshold = judged.decision_thresholds[0]
    degradation = [c for check in monitoring.degradation
                   for c in _degradation_checks(check, rows, at_push, features.task, threshold, judged.top_k)]
    first = monitoring.degradation[0].metric_of(features.task) if monitoring.degradation else \
        metric_table.HEADLINES[features.task][0]
    compared = [first, *[g.metric for g in kept if isinstance(g, MetricGate) and g.metric != first]]
    by_slice = {r["slice"]: r for r in at_push}
    metrics = []
    for name in compared:
        metric = metric_table.metric(name, features.task)
        key = metric.row_key(threshold)
        for row in rows:
            now, before = row["metrics"].get(key), by_slice.get(row["slice"], {}).get("metrics", {}).get(key)
            metrics.append({"slice": row["slice"], "size": int(row["size"]), "metric": name, "now": _num(now),
                            "at_push": _num(before),
                            "change": None if now is None or before is None else round(now - before, 6)})
    fairness = []
    for index, gate in enumerate(kept):
        if isinstance(gate, FairnessGate):
            key, label = gates.fairness_key(gate, features.task, decision_threshold(judged, gate))
            groups = {}
            for row in rows:
                group = _single_group(row["slice"], gate.feature)
                if group is not None:
                    before = by_slice.get(row["slice"], {}).get("metrics", {}).get(key)
                    groups[group] = {"now": _num(row["metrics"].get(key)), "at_push": _num(before)}
            name = f"gates[{evaluator.gates.index(gate)}] {gates.describe(gate)}"
            failed = any(c.status == gates.FAIL for c in checks if c.gate == f"gates[{index}] {gates.describe(gate)}")
            fairness.append({"gate": name, "feature": gate.feature, "metric": label, "groups": groups,
                             "bound": _fairness_bound(gate), "status": gates.FAIL if failed else gates.PASS})
    rechecked = [{**_renamed(c, kept, evaluator).as_dict(),
                  "kind": FAIRNESS if isinstance(kept[_gate_index(c)], FairnessGate) else DEGRADATION}
                 for c in checks]
    degraded = [{**c.as_dict(), "kind": DEGRADATION} for c in degradation]
    return {"metric": first, "metrics": metrics, "checks": rechecked + degraded,
            "fairness": fairness, "examples": int(rows[0]["size"]) if rows else 0}


def _gate_index(check) -> int:
    """The index in the re-checked gates of the gate a check belongs to (its name is ``gates[i] ...``)."""
    return int(check.gate.partition("] ")[0].removeprefix("gates["))


def _renamed(check, kept: list, evaluator: EvaluatorConfig):
    """A check named by its gate's index in the YAML (the re-check drops no-regression gates)."""
    from dataclasses import replace

    rest = check.gate.partition("] ")[2]
    return replace(check, gate=f"gates[{evaluator.gates.index(kept[_gate_index(check)])}] {rest}")


def _degradation_checks(check, rows: list[dict], at_push: list[dict], task: str, threshold: float, top_k: int):
    """The metric now against its figure at push, per slice; decided here (``decided_by`` sluiceway)."""
    from components.evaluator import gates
    from components.evaluator import metrics as metric_table

    name = check.metric_of(task)
    metric = metric_table.metric(name, task)
    key, label = metric.row_key(threshold), metric.column(threshold, top_k=top_k)
    per = check.per
    if per:
        chosen = [r for r in rows if _slice_features(r["slice"]) == sorted(per)]
    else:
        chosen = [r for r in rows if r["slice"] == "overall"]
    before = {r["slice"]: r for r in at_push}
    title = f"monitoring.degradation: {name} max_drop {check.max_drop:g}{' relative' if check.relative else ''}" \
            + (f" per {', '.join(per)}" if per else "")
    found = []
    for row in chosen:
        now = row["metrics"].get(key)
        base = before.get(row["slice"], {}).get("metrics", {}).get(key)
        if now is None or base is None or (isinstance(now, float) and math.isnan(now)):
            found.append(gates.Check(title, row["slice"], label, _num(now), "", _num(base), gates.NO_BASELINE,
                                     "no figure at push for this slice" if base is None else "no value now",
                                     gates.SLUICEWAY))
            continue
        allowed = abs(base) * check.max_drop if check.relative else check.max_drop
        if metric.direction == metric_table.LOWER:
            bound, passed, detail = f"<= {base + allowed:.4f} (at push + max_drop)", now <= base + allowed + 1e-12, \
                f"rise {now - base:+.4f}"
        elif metric.direction == metric_table.TOWARD_ONE:
            limit = abs(base - 1) + allowed
            bound, passed, detail = f"|{label} - 1| <= {limit:.4f}", abs(now - 1) <= limit + 1e-12, \
                f"distance from 1.0 {abs(now - 1):.4f}, at push {abs(base - 1):.4f}"
        else:
            bound, passed, detail = f">= {base - allowed:.4f} (at push - max_drop)", now >= base - allowed - 1e-12, \
                f"drop {base - now:+.4f}"
        status = gates.INSUFFICIENT if row["insufficient"] else gates.PASS if passed else gates.FAIL
        found.append(gates.Check(title, row["slice"], label, _num(now), bound, _num(base), status, detail,
                                 gates.SLUICEWAY))
    return found


def _slice_features(name: str) -> list[str]:
    return sorted(part.split("=", 1)[0] for part in name.split(", ")) if name != "overall" else []


def _single_group(name: str, feature: str) -> Optional[str]:
    if name == "overall" or ", " in name:
        return None
    key, _, value = name.partition("=")
    return value if key == feature else None


def _fairness_bound(gate: FairnessGate) -> str:
    against = f"each vs {gate.reference}" if gate.reference else "max - min"
    return f"{against} <= {gate.max_gap:g}" if gate.max_gap is not None else f"min/max >= {gate.min_ratio:g}"


def _num(value) -> Optional[float]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)


def _reasons(drift: list[dict], anomalies: list[dict], evaluation: Optional[dict],
             monitoring: MonitoringConfig) -> list[dict]:
    """Every finding that is not healthy, each with whether it makes retraining due."""
    from components.evaluator import gates

    reasons = []

    def add(kind, what, slice_, value, bound, detail):
        reasons.append({"kind": kind, "what": what, "slice": slice_, "value": value, "bound": bound,
                        "detail": detail, "triggers_retrain": RETRAIN_KIND[kind] in monitoring.retrain_on})

    for m in drift:
        if m["decision"] == DRIFT:
            test = f"; {m['test']} p={m['holm_p_value']:.2g} (Holm)" if m["holm_p_value"] is not None else ""
            name = m["measure"]
            how = name if m["value"] > m["threshold"] else f"{name} within; KS gap {m['statistic']:.3g}"
            add(DATA_DRIFT, m["feature"], "-", m["value"], f"<= {m['threshold']:g}", f"{how}{test}")
    for a in anomalies:
        add(SCHEMA, a["feature"], "-", None, "", f"{a['anomaly']}: {a['description']}")
    for check in (evaluation or {}).get("checks", []):
        if check["status"] != gates.FAIL:
            continue
        detail = check["detail"] or (f"at push {check['baseline']:.4f}" if check["baseline"] is not None else "")
        add(check["kind"], check["gate"], check["slice"], check["value"], check["bound"], detail)
    return reasons

