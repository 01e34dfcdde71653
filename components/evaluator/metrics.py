"""The Evaluator's metrics, declared once.

Every metric the Evaluator computes, gates on and reports is a row of ``METRICS``: its YAML name,
the TFMA metric class computing it, which way is better, whether it is measured at the decision
threshold, and which tasks have it. Config validation (the names a gate accepts), the TFMA
translation (``eval_config.py``), the gates (``gates.py``), the reports (``report.py``, ``core.py``)
and the README's metric table all read it, so adding a metric is one row here.

Pure Python: importing this module imports no TensorFlow, so ``pipeline.config`` can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

HIGHER, LOWER, TOWARD_ONE = "higher", "lower", "toward 1.0"
BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
FAIRNESS_INDICATORS = "fairness_indicators_metrics"  # the prefix of the Fairness Indicators' TFMA keys
DIRECTION_TEXT = {HIGHER: "higher is better", LOWER: "lower is better", TOWARD_ONE: "best at 1.0", None: "-"}


@dataclass(frozen=True)
class Metric:
    """One metric of the Evaluator.

    Attributes:
        name: Its name in the YAML (``evaluator.gates``), in ``metrics.json`` and in the reports.
        tfma_class: The TFMA metric class computing it (for a rate, the class a fairness gate uses;
            the per-slice values come from TFMA's ``FairnessIndicators``).
        tfma_key: The key under which TFMA's output holds the value.
        direction: ``HIGHER`` or ``LOWER`` is better, ``TOWARD_ONE`` (best at 1.0, calibration),
            or ``None`` for a figure that is no measure of quality (a count, a share): it cannot regress.
        at_threshold: Computed at a decision threshold: the first of ``evaluator.decision_thresholds``
            (a rate: each of them), passed to TFMA, whose classes would otherwise use 0.5.
        tasks: The tasks that have it.
        rate: A Fairness Indicators rate: compared across groups by fairness gates, reported at
            every decision threshold as ``<name>@<threshold>``.
        in_report: Has a column in the per-slice tables of the reports.
        meaning: What it measures, for the README.
        tfma_threshold_arg: The TFMA class's parameter taking the threshold (``BinaryAccuracy``
            takes one ``threshold``, the others a list of ``thresholds``).
        value_range: The values it can take (a gate bound outside them is a config error).
        across_groups: A fairness gate may compare it across groups (the rates always may).
    """

    name: str
    tfma_class: str
    tfma_key: str
    direction: Optional[str]
    at_threshold: bool
    meaning: str
    tasks: tuple[str, ...] = (BINARY,)
    rate: bool = False
    in_report: bool = True
    tfma_threshold_arg: str = "thresholds"
    value_range: tuple[float, float] = (0.0, 1.0)
    across_groups: bool = False

    @property
    def can_regress(self) -> bool:
        """Whether a ``no_regression`` gate may name it."""
        return self.direction is not None and not self.rate

    def tfma_config(self, threshold: float) -> dict:
        """The TFMA ``MetricConfig.config`` entries setting the decision threshold (none when the
        metric takes no threshold)."""
        if not self.at_threshold:
            return {}
        return {self.tfma_threshold_arg: threshold if self.tfma_threshold_arg == "threshold" else [threshold]}

    def column(self, threshold: float) -> str:
        """Its header in a report: ``accuracy@0.5`` when measured at ``threshold``, else its name."""
        return f"{self.name}@{threshold:g}" if self.at_threshold else self.name

    def row_key(self, threshold: float) -> str:
        """Its key in a slice's ``metrics``: rates carry their threshold (``positive_rate@0.5``);
        the other metrics are measured at the first decision threshold and keep their plain name."""
        return f"{self.name}@{threshold:g}" if self.rate else self.name

    def tfma_key_at(self, threshold: float) -> str:
        """TFMA's key of its value (rates: at ``threshold``)."""
        return f"{self.tfma_key}@{threshold:g}" if self.rate else self.tfma_key


def _rate(name: str, tfma_class: str, direction: Optional[str], meaning: str, in_report: bool) -> Metric:
    return Metric(name, tfma_class, f"{FAIRNESS_INDICATORS}/{name}", direction, True, meaning, rate=True,
                  in_report=in_report)


METRICS: tuple[Metric, ...] = (
    Metric("auc", "AUC", "auc", HIGHER, False, "area under the ROC curve"),
    Metric("accuracy", "BinaryAccuracy", "binary_accuracy", HIGHER, True, "share of examples classified right",
           tfma_threshold_arg="threshold"),
    Metric("precision", "Precision", "precision", HIGHER, True, "share of predicted positives that are positive"),
    Metric("recall", "Recall", "recall", HIGHER, True, "share of positives predicted positive"),
    Metric("f1", "F1Score", "f1_score", HIGHER, True, "harmonic mean of precision and recall"),
    Metric("calibration", "Calibration", "calibration", TOWARD_ONE, False,
           "mean score / share of positives: above 1 over-predicts, below 1 under-predicts",
           value_range=(0.0, math.inf)),
    Metric("example_count", "ExampleCount", "example_count", None, False,
           "examples in the slice (below min_slice_size: insufficient data)", in_report=False,
           tasks=TASKS, value_range=(0.0, math.inf)),
    _rate("positive_rate", "PredictedPositiveRate", None, "share of examples predicted positive", True),
    _rate("false_positive_rate", "FallOut", LOWER, "share of negatives predicted positive", True),
    _rate("false_negative_rate", "MissRate", LOWER, "share of positives predicted negative", True),
    _rate("true_positive_rate", "Recall", HIGHER, "share of positives predicted positive (the recall)", False),
    _rate("true_negative_rate", "Specificity", HIGHER, "share of negatives predicted negative", False),
)
BY_NAME = {m.name: m for m in METRICS}

# What each kind of gate may name.
GATE_METRICS = tuple(m.name for m in METRICS if not m.rate)
REGRESSION_METRICS = tuple(m.name for m in METRICS if m.can_regress)
FAIRNESS_RATES = tuple(m.name for m in METRICS if m.rate)
FAIRNESS_METRICS = tuple(m.name for m in METRICS if m.rate or m.across_groups)  # what a fairness gate may compare


def metrics_of_task(task: str) -> tuple[Metric, ...]:
    """The metrics the Evaluator computes for ``task``."""
    return tuple(m for m in METRICS if task in m.tasks)


def gate_metrics_of_task(task: str) -> tuple[str, ...]:
    """The names a ``metric`` gate may use for ``task``."""
    return tuple(m.name for m in metrics_of_task(task) if not m.rate)


def fairness_metrics_of_task(task: str) -> tuple[str, ...]:
    """The names a ``fairness`` gate may compare across groups for ``task``."""
    return tuple(m.name for m in metrics_of_task(task) if m.rate or m.across_groups)


def regression_metrics_of_task(task: str) -> tuple[str, ...]:
    """The names a ``no_regression`` gate may use for ``task``."""
    return tuple(m.name for m in metrics_of_task(task) if m.can_regress)


def metric(name: str) -> Metric:
    """The metric called ``name`` in the YAML."""
    return BY_NAME[name]


def report_columns(threshold: float) -> list[tuple[Metric, str, str]]:
    """The per-slice tables' metric columns: (metric, key in a slice's ``metrics``, header), the
    threshold metrics and rates at ``threshold`` (the first decision threshold)."""
    return [(m, m.row_key(threshold), m.column(threshold)) for m in METRICS if m.in_report]


def readme_table() -> str:
    """The README's metric table (a test checks that the README holds exactly this)."""
    def gates_of(m: Metric) -> str:
        if m.rate:
            return "`fairness`"
        kinds = ["`metric`"]
        if m.can_regress:
            kinds.append("`no_regression`" + (" (distance from 1.0)" if m.direction == TOWARD_ONE else ""))
        return ", ".join(kinds)

    def tfma_of(m: Metric) -> str:
        return f"`FairnessIndicators` (gates: `{m.tfma_class}`)" if m.rate else f"`{m.tfma_class}`"

    lines = ["| metric | TFMA metric | direction | at the decision threshold | tasks | gates | what it is |",
             "|---|---|---|---|---|---|---|"]
    for m in METRICS:
        lines.append(f"| `{m.name}` | {tfma_of(m)} | {DIRECTION_TEXT[m.direction]} | "
                     f"{'yes' if m.at_threshold else '-'} | {', '.join(m.tasks)} | {gates_of(m)} | {m.meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":  # prints the README's table: python -m components.evaluator.metrics
    print(readme_table())
