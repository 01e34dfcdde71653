"""Push gates: every check a model must pass, with TFMA's validation as the judge.

Each gate of ``evaluator.gates`` becomes one or more checks, and every check is recorded (gate,
slice, metric, value, bound, baseline value, status, and who decided it), passed or not, so a
blocked push always says exactly which gate, slice, value and bound blocked it.

The gates are TFMA thresholds (``eval_config.py``); a check fails when TFMA's validation result
lists a failure of that gate's metric on that slice (or slice pair). The figures shown beside the
verdict come from the same TFMA run. Three things TFMA cannot say are decided here: ``min_ratio``
fairness bounds (TFMA's cross-slice comparisons are differences), ``no_regression`` on calibration
(best at 1.0: a candidate regresses when its distance from 1.0 grew by more than ``max_drop``), and
slices below ``min_slice_size``, which are "insufficient data" whatever TFMA thinks of them.

Which way a metric is better, and whether it is measured at the decision threshold (then checks
name it with the threshold, ``accuracy@0.5``), comes from the metric table (``metrics.py``), for
the task evaluated: a multiclass fairness gate compares its class's rates (``false_positive_rate[high]``),
a regression one a metric such as ``mae`` (its gap in the label's units, or its ratio).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Optional

from components.evaluator import metrics as table
from components.evaluator.eval_config import checked_by_tfma, decision_threshold
from components.evaluator.intervals import mover_difference
from pipeline.config import AttributionGate, EvaluatorConfig, FairnessGate, MetricGate, RegressionGate
from pipeline.specs import SPLIT_INFO_FILE

PASS, FAIL, INSUFFICIENT, NO_BASELINE = "pass", "fail", "insufficient data", "no baseline"
TFMA, SLUICEWAY = "TFMA", "sluiceway"


@dataclass
class TfmaValidation:
    """What TFMA's validation result says, keyed by gate index.

    ``failures[i]``: slice name (or ``(baseline slice, comparison slice)``) -> failure message,
    for gate i's metric; ``diff_failures[i]``: the same for change (no-regression) thresholds;
    ``missing[i]``: the slicing specs of gate i that matched no slice at all.
    """

    validation_ok: bool = False
    failures: dict[int, dict[Any, str]] = field(default_factory=dict)
    diff_failures: dict[int, dict[Any, str]] = field(default_factory=dict)
    missing: dict[int, list[str]] = field(default_factory=dict)

    def failed(self, index: int, slice_: Any, diff: bool = False) -> Optional[str]:
        return (self.diff_failures if diff else self.failures).get(index, {}).get(slice_)


@dataclass(frozen=True)
class Check:
    gate: str
    slice: str
    metric: str
    value: Optional[float]
    bound: str
    baseline: Optional[float]
    status: str
    detail: str = ""
    decided_by: str = TFMA
    judged: str = "value"  # or "lower bound", "upper bound" (of the value's interval), "significant gap"
    interval: Optional[tuple[float, float]] = None  # the value's confidence interval, when there is one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(gate) -> str:
    """A gate as the user wrote it, in one line."""
    if isinstance(gate, MetricGate):
        bounds = " and ".join(b for b in (f"min {gate.min:g}" if gate.min is not None else "",
                                           f"max {gate.max:g}" if gate.max is not None else "") if b)
        return f"{gate.metric} {bounds}" + (f" per {'x'.join(gate.per)}" if gate.per else " overall")
    if isinstance(gate, FairnessGate):
        bound = f"max_gap {gate.max_gap:g}" if gate.max_gap is not None else f"min_ratio {gate.min_ratio:g}"
        against = f" vs {gate.reference}" if gate.reference else ""
        of = f"[{gate.class_name}]" if gate.class_name is not None else ""
        return f"fairness {gate.fairness}{of} across {gate.feature}{against}: {bound}"
    if isinstance(gate, AttributionGate):
        return f"attribution {gate.attribution}{' with its proxies' if gate.with_proxies else ''}: " \
               f"max_share {gate.max_share:g}"
    drop = f"{gate.max_drop:g}" + (" (relative)" if gate.relative else "")
    return f"no_regression {gate.no_regression}: max_drop {drop}" + (f" per {'x'.join(gate.per)}" if gate.per else "")


def gate_slices(gate) -> list[str] | None:
    """The features whose slices a gate looks at (``None``: overall)."""
    if isinstance(gate, FairnessGate):
        return [gate.feature]
    return list(gate.per) if getattr(gate, "per", None) else None


def _rows_for(rows: list[dict], features: list[str] | None) -> list[dict]:
    if features is None:
        return [r for r in rows if not r["features"]]
    return [r for r in rows if sorted(r["features"]) == sorted(features)]


def data_groups(examples_dir: str) -> dict[str, list[str]]:
    """The groups of each sensitive feature in any split of the data, from ExampleGen's
    ``split_info.json`` (empty for an Examples artifact written before it recorded them)."""
    path = os.path.join(examples_dir, SPLIT_INFO_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            recorded = json.load(handle).get("groups", {})
    except (OSError, ValueError):
        return {}
    return {name: sorted({group for counts in by_split.values() for group in counts})
            for name, by_split in recorded.items()}


NOTHING_SERVES = "no model is serving yet: nothing to regress from"


def evaluate(evaluator: EvaluatorConfig, rows: list[dict], baseline_rows: list[dict] | None,
             tfma: TfmaValidation, groups: Mapping[str, Iterable[str]] | None = None,
             no_baseline: str = NOTHING_SERVES, task: str = table.BINARY,
             attributions: Optional[dict] = None) -> list[Check]:
    """Every check of every gate, in gate order.

    Args:
        evaluator: The ``evaluator`` section.
        rows: The candidate's per-slice rows (see ``core.run_evaluator``).
        baseline_rows: The serving model's rows, or ``None`` when nothing is serving.
        tfma: TFMA's validation of the gates' thresholds.
        groups: The groups each feature has in the data (``data_groups``); a fairness gate's group
            with no row in the evaluated split is then a check of its own, "no eval examples".
        no_baseline: Why there is no baseline, for the no-regression checks when ``baseline_rows``
            is ``None`` (nothing pushed yet, the serving versions are damaged, or the serving model
            is not comparable: another task or other classes).
        task: ``features.task``: which row of the metric table a gate's metric is.
        attributions: The Evaluator's feature attributions (``attributions.json``), for the
            attribution gates; ``None`` when they were not computed.
    """
    checks: list[Check] = []
    for index, gate in enumerate(evaluator.gates):
        name = f"gates[{index}] {describe(gate)}"
        verdict = _Verdict(tfma, index)
        threshold = decision_threshold(evaluator, gate)
        if isinstance(gate, AttributionGate):
            checks.append(_attribution_check(name, gate, attributions))
        elif isinstance(gate, MetricGate):
            checks += _metric_checks(name, gate, _rows_for(rows, gate_slices(gate)), threshold, verdict, task,
                                     evaluator.top_k)
        elif isinstance(gate, FairnessGate):
            gate_rows = _rows_for(rows, [gate.feature])
            key, label = fairness_key(gate, task, threshold)
            checks += _absent_group_checks(name, gate, gate_rows, (groups or {}).get(gate.feature, ()),
                                           label, evaluator.split)
            checks += _fairness_checks(name, gate, gate_rows, key, label, verdict)
        else:
            checks += _regression_checks(name, gate, _rows_for(rows, gate_slices(gate)),
                                         None if baseline_rows is None else _rows_for(baseline_rows, gate_slices(gate)),
                                         threshold, verdict, no_baseline, task, evaluator.top_k)
        if checked_by_tfma(gate) and not (isinstance(gate, RegressionGate) and baseline_rows is None):
            checks += [Check(name, spec, "-", None, "", None, FAIL, "TFMA found no slice matching this gate's slices")
                       for spec in tfma.missing.get(index, [])]
    return checks


class _Verdict:
    """One gate's view of TFMA's validation result."""

    def __init__(self, tfma: TfmaValidation, index: int):
        self.tfma, self.index = tfma, index

    def status(self, slice_: Any, diff: bool = False) -> str:
        return FAIL if self.tfma.failed(self.index, slice_, diff) is not None else PASS


def blocking(checks: list[Check], evaluator: EvaluatorConfig) -> list[Check]:
    """The checks that block the push."""
    return [c for c in checks if c.status == FAIL
            or (c.status == INSUFFICIENT and evaluator.insufficient_data == "block")]


def fairness_key(gate: FairnessGate, task: str, threshold: float) -> tuple[str, str]:
    """What a fairness gate compares: its key in a slice's ``metrics`` and its name in checks and
    reports (``positive_rate@0.5``; multiclass ``false_positive_rate[high]``; regression ``mae``)."""
    metric = table.metric(gate.fairness, task)
    return metric.row_key(threshold, gate.class_name), metric.column(threshold, gate.class_name)


def _metric_checks(name: str, gate: MetricGate, rows: list[dict], threshold: float,
                   verdict: _Verdict, task: str = table.BINARY, top_k: int = 2) -> list[Check]:
    metric = table.metric(gate.metric, task)
    bound = " and ".join(b for b in (f">= {gate.min:g}" if gate.min is not None else "",
                                      f"<= {gate.max:g}" if gate.max is not None else "") if b)
    checks = []
    key = metric.row_key(threshold)
    for row in rows:
        value = row["metrics"].get(key)
        interval = _interval(row, key)
        detail = f"{row['size']:,.0f} examples"
        if gate.judge == "value":
            status = INSUFFICIENT if row["insufficient"] else verdict.status(row["slice"])
            checks.append(Check(name, row["slice"], metric.column(threshold, top_k=top_k), value, bound, None, status,
                                detail, interval=interval))
            continue
        judged = gate.judge.replace("_", " ")
        if interval is None:
            status, detail = INSUFFICIENT, f"{detail}; no confidence interval to judge by"
        else:
            compared = interval[0] if gate.judge == "lower_bound" else interval[1]
            within = (gate.min is None or compared >= gate.min) and (gate.max is None or compared <= gate.max)
            status = INSUFFICIENT if row["insufficient"] else PASS if within else FAIL
            detail = f"{detail}; {judged} of the interval: {compared:.4f}"
        checks.append(Check(name, row["slice"], metric.column(threshold, top_k=top_k), value, bound, None, status,
                            detail, SLUICEWAY, judged=judged, interval=interval))
    return checks


def _interval(row: dict, key: str) -> Optional[tuple[float, float]]:
    found = (row.get("intervals") or {}).get(key)
    return (found[0], found[1]) if found else None


def _attribution_check(name: str, gate: AttributionGate, attributions: Optional[dict]) -> Check:
    """A feature's share of the total attribution (with its proxies' when asked) against ``max_share``."""
    from components.evaluator.attributions import STRONG_PROXY as PROXY_ASSOCIATION  # a proxy counts from it up
    from components.evaluator.attributions import share_of

    metric = "attribution share" + (" with proxies" if gate.with_proxies else "")
    bound = f"<= {gate.max_share:g}"
    if not attributions or not attributions.get("features"):
        return Check(name, "overall", metric, None, bound, None, INSUFFICIENT,
                     "no feature attributions were computed", SLUICEWAY)
    share = share_of(attributions, gate.attribution, with_proxies=gate.with_proxies, min_association=PROXY_ASSOCIATION)
    proxies = [p["feature"] for p in attributions.get("sensitive", {}).get(gate.attribution, {}).get("proxies", [])
               if p.get("association", 0) >= PROXY_ASSOCIATION]
    detail = f"{attributions.get('method', 'attributions')} on {attributions.get('examples', 0):,} examples" + \
        (f"; proxies (association >= {PROXY_ASSOCIATION:g}): {', '.join(proxies) or 'none'}"
         if gate.with_proxies else "")
    return Check(name, "overall", metric, share, bound, None, PASS if share <= gate.max_share else FAIL, detail,
                 SLUICEWAY)


def _absent_group_checks(name: str, gate: FairnessGate, rows: list[dict], known: Iterable[str], metric: str,
                         split: str) -> list[Check]:
    """A group the data holds with no example in the evaluated split: the gate cannot judge it."""
    present = {r["slice"] for r in rows}
    return [Check(name, f"{gate.feature}={group}", metric, None, "", None, INSUFFICIENT,
                  f"group {gate.feature}={group} has no {split} examples: left out of the comparison", SLUICEWAY)
            for group in sorted(known) if f"{gate.feature}={group}" not in present]


def _fairness_checks(name: str, gate: FairnessGate, rows: list[dict], key: str, metric: str,
                     verdict: _Verdict) -> list[Check]:
    """``key``: the compared value's key in the rows; ``metric``: its name in the checks."""
    decided_by = TFMA if checked_by_tfma(gate) else SLUICEWAY
    checks = [Check(name, r["slice"], metric, r["metrics"].get(key), "", None, INSUFFICIENT,
                    f"{r['size']:,.0f} examples, below min_slice_size: left out of the comparison", SLUICEWAY)
              for r in rows if r["insufficient"]]
    intervals = {r["slice"]: _interval(r, key) for r in rows}
    groups = {r["slice"]: r["metrics"].get(key) for r in rows if not r["insufficient"]}
    groups = {k: v for k, v in groups.items() if v is not None and not math.isnan(v)}
    undefined = sorted(r["slice"] for r in rows if not r["insufficient"] and r["slice"] not in groups)
    checks += [Check(name, slice_, metric, None, "", None, INSUFFICIENT,
                     f"{metric} is undefined in {slice_} (no examples to divide by): left out of the comparison",
                     SLUICEWAY) for slice_ in undefined]
    bound = f"<= {gate.max_gap:g}" if gate.max_gap is not None else f">= {gate.min_ratio:g}"
    kind = "gap" if gate.max_gap is not None else "ratio"
    if len(groups) < 2:
        return checks + [Check(name, f"{gate.feature}=*", f"{metric} {kind}", None, bound, None, INSUFFICIENT,
                               "fewer than two groups with enough examples to compare", SLUICEWAY)]
    if gate.reference is not None:
        reference = f"{gate.feature}={gate.reference}"
        if reference not in groups:
            return checks + [Check(name, reference, metric, None, bound, None, FAIL,
                                   f"reference group {reference} has no (or too few) examples", decided_by)]
        pairs = [(slice_, value, reference, groups[reference]) for slice_, value in groups.items() if slice_ != reference]
    else:
        low = min(groups, key=groups.get)
        high = max(groups, key=groups.get)
        pairs = [(low, groups[low], high, groups[high])]
    for slice_, value, other, other_value in pairs:
        detail = f"{slice_}: {value:.4f} vs {other}: {other_value:.4f}"
        if gate.judge == "significant":
            checks.append(_significance_check(name, gate, slice_, value, intervals.get(slice_), other, other_value,
                                              intervals.get(other), metric, kind, bound, detail))
        elif gate.max_gap is not None:
            measured = abs(value - other_value)
            if gate.reference is not None:
                status = verdict.status((other, slice_))
            else:  # TFMA compared every pair of groups; one pair over the gap fails the gate
                compared = [(a, b) for a in groups for b in groups if a != b]
                status = FAIL if any(verdict.status(pair) == FAIL for pair in compared) else PASS
            checks.append(Check(name, f"{slice_} vs {other}", f"{metric} {kind}", measured, bound, None, status, detail))
        elif min(value, other_value) < 0:  # a ratio of a negative figure (a mean prediction) means nothing
            checks.append(Check(name, f"{slice_} vs {other}", f"{metric} {kind}", None, bound, None, FAIL,
                                f"{detail}: a ratio of negative values is undefined; use max_gap", SLUICEWAY))
        else:
            larger = max(value, other_value)
            measured = min(value, other_value) / larger if larger > 0 else 1.0
            checks.append(Check(name, f"{slice_} vs {other}", f"{metric} {kind}", measured, bound, None,
                                PASS if measured >= gate.min_ratio else FAIL, detail, decided_by=SLUICEWAY))
    return checks


def _significance_check(name: str, gate: FairnessGate, slice_: str, value: float, interval, other: str,
                        other_value: float, other_interval, metric: str, kind: str, bound: str, detail: str) -> Check:
    """``judge: significant``: a pair of groups fails only when its gap (or ratio) is beyond the bound
    and the interval of the gap between them excludes zero: a difference the data shows, not noise."""
    gap = mover_difference(value, interval, other_value, other_interval)
    if gate.max_gap is not None:
        measured = abs(value - other_value)
        beyond = measured > gate.max_gap
    else:
        larger = max(value, other_value)
        measured = min(value, other_value) / larger if larger > 0 else 1.0
        beyond = measured < gate.min_ratio
    where = f"{slice_} vs {other}"
    if gap is None:
        return Check(name, where, f"{metric} {kind}", measured, bound, None, INSUFFICIENT,
                     f"{detail}; no interval of the gap to judge its significance by", SLUICEWAY,
                     judged="significant gap")
    significant = gap[0] > 0 or gap[1] < 0
    verdict = "excludes 0: significant" if significant else "includes 0: not significant"
    return Check(name, where, f"{metric} {kind}", measured, bound, None, FAIL if beyond and significant else PASS,
                 f"{detail}; gap {value - other_value:+.4f}, interval [{gap[0]:+.4f}, {gap[1]:+.4f}] {verdict}",
                 SLUICEWAY, judged="significant gap", interval=(round(gap[0], 6), round(gap[1], 6)))


def _regression_checks(name: str, gate: RegressionGate, rows: list[dict], baseline_rows: list[dict] | None,
                       threshold: float, verdict: _Verdict, no_baseline: str = NOTHING_SERVES,
                       task: str = table.BINARY, top_k: int = 2) -> list[Check]:
    metric = table.metric(gate.no_regression, task)
    key, label = metric.row_key(threshold), metric.column(threshold, top_k=top_k)
    if baseline_rows is None:
        return [Check(name, r["slice"], label, r["metrics"].get(key), "", None, NO_BASELINE,
                      no_baseline, SLUICEWAY) for r in rows]
    baseline = {r["slice"]: r for r in baseline_rows}
    checks = []
    for row in rows:
        value = row["metrics"].get(key)
        base_row = baseline.get(row["slice"])
        base = base_row["metrics"].get(key) if base_row else None
        if base is None or value is None:
            checks.append(Check(name, row["slice"], label, value, "", base, NO_BASELINE,
                                "the baseline has no value for this slice", SLUICEWAY))
            continue
        if metric.direction == table.TOWARD_ONE:
            checks.append(_distance_check(name, gate, row, label, value, base))
            continue
        slack = "max_drop x baseline" if gate.relative else "max_drop"
        allowed = base * gate.max_drop if gate.relative else gate.max_drop
        if metric.direction == table.HIGHER:
            bound, detail = f">= {base - allowed:.4f} (baseline - {slack})", f"drop {base - value:+.4f}"
        else:
            bound, detail = f"<= {base + allowed:.4f} (baseline + {slack})", f"rise {value - base:+.4f}"
        status = INSUFFICIENT if row["insufficient"] else verdict.status(row["slice"], diff=True)
        checks.append(Check(name, row["slice"], label, value, bound, base, status, detail,
                            interval=_interval(row, key)))
    return checks


def _distance_check(name: str, gate: RegressionGate, row: dict, label: str, value: float, base: float) -> Check:
    """A metric best at 1.0 (calibration) regresses when its distance from 1.0 grew by more than
    max_drop (relative: by more than max_drop times the baseline's distance)."""
    distance, base_distance = abs(value - 1.0), abs(base - 1.0)
    limit = base_distance * (1 + gate.max_drop) if gate.relative else base_distance + gate.max_drop
    how = "baseline's distance x (1 + max_drop)" if gate.relative else "baseline's distance + max_drop"
    if row["insufficient"]:
        status = INSUFFICIENT
    else:
        status = PASS if distance <= limit + 1e-12 else FAIL  # 1e-12: float noise, not a regression
    return Check(name, row["slice"], label, value, f"|{label} - 1| <= {limit:.4f} ({how})", base, status,
                 f"distance from 1.0: {distance:.4f} vs baseline {base_distance:.4f}", SLUICEWAY)
