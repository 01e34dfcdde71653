"""Push gates: every check a model must pass, evaluated on the Evaluator's per-slice metrics.

Each gate of ``evaluator.gates`` becomes one or more checks, and every check is recorded (gate,
slice, metric, value, bound, baseline value, status), passed or not, so a blocked push always
says exactly which gate, slice, value and bound blocked it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from pipeline.config import EvaluatorConfig, FairnessGate, MetricGate, RegressionGate

PASS, FAIL, INSUFFICIENT, NO_BASELINE = "pass", "fail", "insufficient data", "no baseline"


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
        return f"fairness {gate.fairness} across {gate.feature}{against}: {bound}"
    drop = f"{gate.max_drop:g}" + (" (relative)" if gate.relative else "")
    return f"no_regression {gate.no_regression}: max_drop {drop}" + (f" per {'x'.join(gate.per)}" if gate.per else "")


def gate_slices(gate) -> list[str] | None:
    """The features whose slices a gate looks at (``None``: overall)."""
    if isinstance(gate, FairnessGate):
        return [gate.feature]
    return list(gate.per) if gate.per else None


def _rows_for(rows: list[dict], features: list[str] | None) -> list[dict]:
    if features is None:
        return [r for r in rows if not r["features"]]
    return [r for r in rows if sorted(r["features"]) == sorted(features)]


def evaluate(evaluator: EvaluatorConfig, rows: list[dict], baseline_rows: list[dict] | None) -> list[Check]:
    """Every check of every gate, in gate order."""
    checks: list[Check] = []
    for index, gate in enumerate(evaluator.gates):
        name = f"gates[{index}] {describe(gate)}"
        if isinstance(gate, MetricGate):
            checks += _metric_checks(name, gate, _rows_for(rows, gate_slices(gate)))
        elif isinstance(gate, FairnessGate):
            threshold = gate.threshold if gate.threshold is not None else evaluator.decision_thresholds[0]
            checks += _fairness_checks(name, gate, _rows_for(rows, [gate.feature]), threshold)
        else:
            checks += _regression_checks(name, gate, _rows_for(rows, gate_slices(gate)),
                                         None if baseline_rows is None else _rows_for(baseline_rows, gate_slices(gate)))
    return checks


def blocking(checks: list[Check], evaluator: EvaluatorConfig) -> list[Check]:
    """The checks that block the push."""
    return [c for c in checks if c.status == FAIL
            or (c.status == INSUFFICIENT and evaluator.insufficient_data == "block")]


def _metric_checks(name: str, gate: MetricGate, rows: list[dict]) -> list[Check]:
    bound = " and ".join(b for b in (f">= {gate.min:g}" if gate.min is not None else "",
                                      f"<= {gate.max:g}" if gate.max is not None else "") if b)
    checks = []
    for row in rows:
        value = row["metrics"].get(gate.metric)
        if row["insufficient"]:
            status = INSUFFICIENT
        elif value is None:
            status = FAIL
        else:
            ok = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
            status = PASS if ok else FAIL
        checks.append(Check(name, row["slice"], gate.metric, value, bound, None, status,
                            f"{row['size']:,.0f} examples"))
    return checks


def _fairness_checks(name: str, gate: FairnessGate, rows: list[dict], threshold: float) -> list[Check]:
    metric = f"{gate.fairness}@{threshold:g}"
    checks = [Check(name, r["slice"], metric, r["metrics"].get(metric), "", None, INSUFFICIENT,
                    f"{r['size']:,.0f} examples, below min_slice_size: left out of the comparison")
              for r in rows if r["insufficient"]]
    groups = {r["slice"]: r["metrics"].get(metric) for r in rows if not r["insufficient"]}
    groups = {k: v for k, v in groups.items() if v is not None}
    bound = f"<= {gate.max_gap:g}" if gate.max_gap is not None else f">= {gate.min_ratio:g}"
    kind = "gap" if gate.max_gap is not None else "ratio"
    if len(groups) < 2:
        return checks + [Check(name, f"{gate.feature}=*", f"{metric} {kind}", None, bound, None, INSUFFICIENT,
                               "fewer than two groups with enough examples to compare")]
    if gate.reference is not None:
        reference = f"{gate.feature}={gate.reference}"
        if reference not in groups:
            return checks + [Check(name, reference, metric, None, bound, None, FAIL,
                                   f"reference group {reference} has no (or too few) examples")]
        pairs = [(slice_, value, reference, groups[reference]) for slice_, value in groups.items() if slice_ != reference]
    else:
        low = min(groups, key=groups.get)
        high = max(groups, key=groups.get)
        pairs = [(low, groups[low], high, groups[high])]
    for slice_, value, other, other_value in pairs:
        if gate.max_gap is not None:
            measured = abs(value - other_value)
            ok = measured <= gate.max_gap
        else:
            larger = max(value, other_value)
            measured = min(value, other_value) / larger if larger > 0 else 1.0
            ok = measured >= gate.min_ratio
        detail = f"{slice_}: {value:.4f} vs {other}: {other_value:.4f}"
        checks.append(Check(name, f"{slice_} vs {other}", f"{metric} {kind}", measured, bound, None,
                            PASS if ok else FAIL, detail))
    return checks


def _regression_checks(name: str, gate: RegressionGate, rows: list[dict],
                       baseline_rows: list[dict] | None) -> list[Check]:
    metric = gate.no_regression
    if baseline_rows is None:
        return [Check(name, r["slice"], metric, r["metrics"].get(metric), "", None, NO_BASELINE,
                      "no model is serving yet: nothing to regress from") for r in rows]
    baseline = {r["slice"]: r for r in baseline_rows}
    checks = []
    for row in rows:
        value = row["metrics"].get(metric)
        base_row = baseline.get(row["slice"])
        base = base_row["metrics"].get(metric) if base_row else None
        if base is None or value is None:
            checks.append(Check(name, row["slice"], metric, value, "", base, NO_BASELINE,
                                "the baseline has no value for this slice"))
            continue
        floor = base * (1 - gate.max_drop) if gate.relative else base - gate.max_drop
        status = INSUFFICIENT if row["insufficient"] else PASS if value >= floor else FAIL
        checks.append(Check(name, row["slice"], metric, value, f">= {floor:.4f} (baseline - max_drop)", base,
                            status, f"drop {base - value:+.4f}"))
    return checks
