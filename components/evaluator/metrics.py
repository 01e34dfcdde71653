"""The Evaluator's metrics, declared once.

Every metric the Evaluator computes, gates on and reports is a row of ``METRICS``: its YAML name,
the TFMA metric class computing it, which way is better, whether it is measured at the decision
threshold, and which tasks have it. Config validation (the names a gate accepts), the TFMA
translation (``eval_config.py``), the gates (``gates.py``), the reports (``report.py``, ``core.py``)
and the README's metric table all read it, so adding a metric is one row here.

A row is one metric of one or more tasks that compute it the same way; a name may have a row per
task (``accuracy`` is TFMA's ``BinaryAccuracy`` at the decision threshold for binary,
tf_keras' ``SparseCategoricalAccuracy`` of the most probable class for multiclass). Rows sharing
a name share its direction and value range, so the config's checks, keyed by name, hold for
every task. Multiclass has per-class rows (``per_class``): one value per class, one-vs-rest with
the most probable class as the prediction, reported as ``precision[high]``; the multiclass rates
are per class too, and a fairness gate names its class (``class: high``).

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
        per_class: Multiclass: one value per class (one-vs-rest), under ``<name>[<class>]``; a metric
            gate cannot name it (a fairness gate names a rate's class with ``class``).
        tfma_module: The module of ``tfma_class`` when it is not TFMA's own: ``tf_keras.metrics``,
            or ``components.evaluator.tfma_metrics`` (sluiceway's).
        tfma_params: Fixed entries of the TFMA ``MetricConfig.config`` (name, value pairs).
        takes_k: Takes ``evaluator.top_k`` as its ``k`` (top_k_accuracy).
        named: TFMA is told its name (``tfma_key``), the class's default name being another.
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
    per_class: bool = False
    tfma_module: str = ""
    tfma_params: tuple[tuple[str, object], ...] = ()
    takes_k: bool = False
    named: bool = False

    @property
    def can_gate(self) -> bool:
        """Whether a ``metric`` gate may name it."""
        return not self.rate and not self.per_class

    @property
    def can_regress(self) -> bool:
        """Whether a ``no_regression`` gate may name it."""
        return self.direction is not None and self.can_gate

    @property
    def compared_across_groups(self) -> bool:
        """Whether a ``fairness`` gate may name it."""
        return self.rate or self.across_groups

    def tfma_config(self, threshold: float, top_k: int = 2) -> dict:
        """The TFMA ``MetricConfig.config`` entries: its name when TFMA must be told it, its fixed
        ones, the decision threshold when it takes one, ``k`` for top_k_accuracy."""
        config: dict = {"name": self.tfma_key} if self.named else {}
        config.update(self.tfma_params)
        if self.at_threshold:
            config[self.tfma_threshold_arg] = threshold if self.tfma_threshold_arg == "threshold" else [threshold]
        if self.takes_k:
            config["k"] = top_k
        return config

    def column(self, threshold: float, class_name: Optional[str] = None, top_k: Optional[int] = None) -> str:
        """Its header in a report: ``accuracy@0.5`` when measured at ``threshold``, ``precision[high]``
        for a class, ``top_k_accuracy (k=2)``, else its name."""
        if self.per_class:
            return f"{self.name}[{class_name}]"
        if self.takes_k and top_k is not None:
            return f"{self.name} (k={top_k})"
        return f"{self.name}@{threshold:g}" if self.at_threshold else self.name

    def row_key(self, threshold: float, class_name: Optional[str] = None) -> str:
        """Its key in a slice's ``metrics``: binary rates carry their threshold
        (``positive_rate@0.5``), per-class metrics their class (``precision[high]``); the other
        metrics are measured at the first decision threshold and keep their plain name."""
        if self.per_class:
            return f"{self.name}[{class_name}]"
        return f"{self.name}@{threshold:g}" if self.rate else self.name

    def tfma_key_at(self, threshold: float) -> str:
        """TFMA's key of its value (binary rates: at ``threshold``; a per-class metric's class is
        TFMA's sub key)."""
        return f"{self.tfma_key}@{threshold:g}" if self.rate and not self.per_class else self.tfma_key


def _rate(name: str, tfma_class: str, direction: Optional[str], meaning: str, in_report: bool) -> Metric:
    return Metric(name, tfma_class, f"{FAIRNESS_INDICATORS}/{name}", direction, True, meaning, rate=True,
                  in_report=in_report)


TF_KERAS = "tf_keras.metrics"
SLUICEWAY_METRICS = "components.evaluator.tfma_metrics"  # sluiceway's TFMA metrics
MULTICLASS_ONLY, REGRESSION_ONLY = (MULTICLASS,), (REGRESSION,)
UNBOUNDED, NON_NEGATIVE = (-math.inf, math.inf), (0.0, math.inf)


def _argmax(name: str, meaning: str, per_class: bool = False, rate: bool = False, direction: Optional[str] = HIGHER,
            in_report: bool = True) -> Metric:
    """A multiclass figure of the most probable class (sluiceway's ``ArgmaxClassification``)."""
    return Metric(name, "ArgmaxClassification", name, direction, False, meaning, tasks=MULTICLASS_ONLY, rate=rate,
                  in_report=in_report, per_class=per_class, tfma_module=SLUICEWAY_METRICS,
                  tfma_params=(("statistic", name),), named=True)


def _regression(name: str, tfma_class: str, direction: Optional[str], meaning: str, value_range=NON_NEGATIVE,
                module: str = "", across_groups: bool = True) -> Metric:
    return Metric(name, tfma_class, name, direction, False, meaning, tasks=REGRESSION_ONLY, value_range=value_range,
                  tfma_module=module, named=True, across_groups=across_groups)


METRICS: tuple[Metric, ...] = (
    Metric("auc", "AUC", "auc", HIGHER, False, "area under the ROC curve"),
    Metric("accuracy", "BinaryAccuracy", "binary_accuracy", HIGHER, True, "share of examples classified right",
           tfma_threshold_arg="threshold"),
    Metric("precision", "Precision", "precision", HIGHER, True, "share of predicted positives that are positive"),
    Metric("recall", "Recall", "recall", HIGHER, True, "share of positives predicted positive"),
    Metric("f1", "F1Score", "f1_score", HIGHER, True, "harmonic mean of precision and recall"),
    Metric("calibration", "Calibration", "calibration", TOWARD_ONE, False,
           "binary: mean score / share of positives; regression: mean prediction / mean label; above 1 "
           "over-predicts, below 1 under-predicts", tasks=(BINARY, REGRESSION), value_range=NON_NEGATIVE),
    Metric("example_count", "ExampleCount", "example_count", None, False,
           "examples in the slice (below min_slice_size: insufficient data)", in_report=False,
           tasks=TASKS, value_range=(0.0, math.inf)),
    _rate("positive_rate", "PredictedPositiveRate", None, "share of examples predicted positive", True),
    _rate("false_positive_rate", "FallOut", LOWER, "share of negatives predicted positive", True),
    _rate("false_negative_rate", "MissRate", LOWER, "share of positives predicted negative", True),
    _rate("true_positive_rate", "Recall", HIGHER, "share of positives predicted positive (the recall)", False),
    _rate("true_negative_rate", "Specificity", HIGHER, "share of negatives predicted negative", False),
    # multiclass: the prediction is the most probable class
    Metric("accuracy", "SparseCategoricalAccuracy", "accuracy", HIGHER, False,
           "share of examples whose most probable class is the label", tasks=MULTICLASS_ONLY,
           tfma_module=TF_KERAS, named=True),
    Metric("top_k_accuracy", "SparseTopKCategoricalAccuracy", "top_k_accuracy", HIGHER, False,
           "share of examples whose label is among the k most probable classes (k: evaluator.top_k)",
           tasks=MULTICLASS_ONLY, tfma_module=TF_KERAS, named=True, takes_k=True),
    _argmax("macro_precision", "mean of the classes' precision (each class one-vs-rest)"),
    _argmax("macro_recall", "mean of the classes' recall"),
    _argmax("macro_f1", "mean of the classes' F1"),
    _argmax("micro_precision", "precision over every class's counts pooled (equals accuracy: one label and one "
                               "predicted class per example)"),
    _argmax("micro_recall", "recall over every class's counts pooled (equals accuracy)"),
    _argmax("micro_f1", "F1 over every class's counts pooled (equals accuracy)"),
    Metric("log_loss", "SparseCategoricalCrossentropy", "log_loss", LOWER, False,
           "mean of -log(probability given to the label)", tasks=MULTICLASS_ONLY, value_range=NON_NEGATIVE,
           tfma_module=TF_KERAS, named=True),
    _argmax("precision", "per class: share of the examples predicted as the class that are of it", per_class=True),
    _argmax("recall", "per class: share of the class's examples predicted as it", per_class=True),
    _argmax("f1", "per class: harmonic mean of its precision and recall", per_class=True),
    _argmax("positive_rate", "per class: share of examples predicted as the class", per_class=True, rate=True,
            direction=None),
    _argmax("false_positive_rate", "per class: share of the other classes' examples predicted as it",
            per_class=True, rate=True, direction=LOWER),
    _argmax("false_negative_rate", "per class: share of the class's examples predicted as another",
            per_class=True, rate=True, direction=LOWER),
    _argmax("true_positive_rate", "per class: share of the class's examples predicted as it (its recall)",
            per_class=True, rate=True, in_report=False),
    _argmax("true_negative_rate", "per class: share of the other classes' examples not predicted as it",
            per_class=True, rate=True, in_report=False),
    # regression, in the label's units
    _regression("mse", "MeanSquaredError", LOWER, "mean squared error"),
    _regression("rmse", "RootMeanSquaredError", LOWER, "square root of the mean squared error", module=TF_KERAS),
    _regression("mae", "MeanAbsoluteError", LOWER, "mean absolute error"),
    _regression("mape", "MeanAbsolutePercentageError", LOWER,
                "mean of abs(label - prediction) / abs(label), in percent (examples whose label is 0 left out)"),
    _regression("r2", "CoefficientOfDetermination", HIGHER,
                "R²: 1 - squared error / squared deviation of the labels from their mean (1 is perfect, 0 no "
                "better than predicting the mean label)", value_range=(-math.inf, 1.0), module=SLUICEWAY_METRICS,
                across_groups=False),
    _regression("mean_prediction", "MeanPrediction", None, "mean prediction", value_range=UNBOUNDED),
    _regression("mean_label", "MeanLabel", None, "mean label (the data, not the model)", value_range=UNBOUNDED,
                across_groups=False),
)
BY_NAME = {m.name: m for m in reversed(METRICS)}  # a name's first row (binary's, where binary has it)
BY_TASK = {(task, m.name): m for m in METRICS for task in m.tasks}
# The tasks' headline figures: the Evaluator's returned figures (eval_<name>) and the baseline column of the report.
HEADLINES = {BINARY: ("auc", "accuracy"), MULTICLASS: ("accuracy", "macro_f1", "log_loss", "top_k_accuracy"),
             REGRESSION: ("rmse", "mae", "r2", "mean_prediction", "mean_label")}


def _names(rows) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.name for m in rows))


# What each kind of gate may name, in any task (``gate_metrics_of_task`` etc. say which task has which).
GATE_METRICS = _names(m for m in METRICS if m.can_gate)
REGRESSION_METRICS = _names(m for m in METRICS if m.can_regress)
FAIRNESS_RATES = _names(m for m in METRICS if m.rate)
FAIRNESS_METRICS = _names(m for m in METRICS if m.compared_across_groups)  # what a fairness gate may compare


def metrics_of_task(task: str) -> tuple[Metric, ...]:
    """The metrics the Evaluator computes for ``task``."""
    return tuple(m for m in METRICS if task in m.tasks)


def gate_metrics_of_task(task: str) -> tuple[str, ...]:
    """The names a ``metric`` gate may use for ``task``."""
    return tuple(m.name for m in metrics_of_task(task) if m.can_gate)


def fairness_metrics_of_task(task: str) -> tuple[str, ...]:
    """The names a ``fairness`` gate may compare across groups for ``task``."""
    return tuple(m.name for m in metrics_of_task(task) if m.compared_across_groups)


def regression_metrics_of_task(task: str) -> tuple[str, ...]:
    """The names a ``no_regression`` gate may use for ``task``."""
    return tuple(m.name for m in metrics_of_task(task) if m.can_regress)


def metric(name: str, task: Optional[str] = None) -> Metric:
    """The metric called ``name`` in the YAML, as ``task`` computes it (no task: the name's first
    row; rows sharing a name share direction and value range).

    Raises:
        KeyError: ``task`` has no metric of that name.
    """
    return BY_NAME[name] if task is None else BY_TASK[(task, name)]


def report_columns(threshold: float, task: str = BINARY, top_k: int = 2) -> list[tuple[Metric, str, str]]:
    """The per-slice tables' metric columns: (metric, key in a slice's ``metrics``, header), the
    threshold metrics and rates at ``threshold`` (the first decision threshold). Per-class metrics
    have tables of their own (``class_columns``). Multiclass and regression list their own metrics
    before the ones they share with binary (regression's calibration after its errors)."""
    chosen = [m for m in metrics_of_task(task) if m.in_report and not m.per_class]
    if task != BINARY:
        chosen.sort(key=lambda m: m.tasks != (task,))
    return [(m, m.row_key(threshold), m.column(threshold, top_k=top_k)) for m in chosen]


def class_columns(task: str) -> list[Metric]:
    """The per-class metrics a report shows in its table of classes (multiclass)."""
    return [m for m in metrics_of_task(task) if m.in_report and m.per_class]


def readme_table() -> str:
    """The README's metric table (a test checks that the README holds exactly this)."""
    def gates_of(m: Metric) -> str:
        if m.rate:
            return "`fairness` (with `class`)" if m.per_class else "`fairness`"
        if m.per_class:
            return f"- (reported per class: `{m.name}[<class>]`)"
        kinds = ["`metric`"]
        if m.can_regress:
            kinds.append("`no_regression`" + (" (distance from 1.0)" if m.direction == TOWARD_ONE else ""))
        if m.across_groups:
            kinds.append("`fairness`")
        return ", ".join(kinds)

    def tfma_of(m: Metric) -> str:
        if m.tfma_module == SLUICEWAY_METRICS:
            return f"`{m.tfma_class}` (sluiceway's)"
        if m.tfma_module == TF_KERAS:
            return f"`{m.tfma_class}` (tf_keras)"
        return f"`FairnessIndicators` (gates: `{m.tfma_class}`)" if m.rate else f"`{m.tfma_class}`"

    lines = ["| metric | TFMA metric | direction | at the decision threshold | tasks | gates | what it is |",
             "|---|---|---|---|---|---|---|"]
    for m in METRICS:
        lines.append(f"| `{m.name}` | {tfma_of(m)} | {DIRECTION_TEXT[m.direction]} | "
                     f"{'yes' if m.at_threshold else '-'} | {', '.join(m.tasks)} | {gates_of(m)} | {m.meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":  # prints the README's table: python -m components.evaluator.metrics
    print(readme_table())
