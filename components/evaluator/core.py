"""Evaluator: TensorFlow Model Analysis of the trained model, overall and per slice.

Metrics: example count, AUC, accuracy, precision, recall, F1, calibration, and the Fairness
Indicators (positive rate, FPR, FNR, TPR, TNR, ...) at the configured decision thresholds. TFMA's
own output is kept, so ``tfma.load_eval_result`` and the Fairness Indicators widget open it too;
``metrics.json`` and a Markdown table give the same figures without a notebook.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

from components.common.artifacts import split_file
from components.evaluator import gates, report
from components.evaluator.eval_config import FAIRNESS_METRICS, METRICS, build_eval_config, fairness_key
from components.pusher.versions import latest
from pipeline.config import BeamConfig, EvaluatorConfig, FeaturesConfig, RegressionGate, Section
from pipeline.errors import GateFailed
from pipeline.specs import BLESSING_FILE, EVALUATION_SUMMARY_FILE
from pipeline.table import markdown_table, text_table

OVERALL = "overall"
BASELINE_DIR = "baseline"  # inside the evaluation artifact: the serving model's evaluation


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the Evaluator as a pipeline step; see ``run_evaluator``. Returns its figures."""
    evaluator: EvaluatorConfig = config["evaluator"]
    rows = run_evaluator(inputs["examples"], inputs["model"], outputs["evaluation"], outputs["evaluation_report"],
                         evaluator, config["features"], config["beam"], progress)
    baseline_rows = None
    baseline = latest(config["pusher"].destination) if config["pusher"].destination else None
    if baseline is not None and any(isinstance(g, RegressionGate) for g in evaluator.gates):
        progress(f"evaluating the serving model {baseline} as the baseline")
        baseline_dir = os.path.join(outputs["evaluation"], BASELINE_DIR)
        baseline_rows = run_evaluator(inputs["examples"], baseline, baseline_dir,
                                      os.path.join(baseline_dir, "evaluation.md"), evaluator, config["features"],
                                      config["beam"], lambda _: None)
    checks = gates.evaluate(evaluator, rows, baseline_rows=baseline_rows)
    blocked = gates.blocking(checks, evaluator)
    write_blessing(outputs["blessing"], checks, blocked)
    _append_gates_to_report(outputs["evaluation_report"], checks, blocked)
    page = report.render(rows, baseline_rows, [c.as_dict() for c in checks], not blocked, evaluator,
                         config["features"], f"{evaluator.split} split; baseline: {baseline or 'none'}")
    os.makedirs(os.path.dirname(outputs["fairness_report"]) or ".", exist_ok=True)
    with open(outputs["fairness_report"], "w", encoding="utf-8") as handle:
        handle.write(page)
    if blocked:
        table = text_table(CHECK_HEADERS, [_check_row(c) for c in blocked], max_width=60)
        raise GateFailed(f"the model is not pushed: {len(blocked)} of {len(checks)} gate checks failed:\n{table}")
    overall = next(r for r in rows if r["slice"] == OVERALL)
    return {"eval_auc": round(overall["metrics"]["auc"], 4), "eval_accuracy": round(overall["metrics"]["accuracy"], 4),
            "examples": int(overall["size"]), "slices": len(rows) - 1,
            "insufficient_slices": sum(r["insufficient"] for r in rows),
            "blessed": True, "checks": len(checks), "baseline": baseline or "none"}


CHECK_HEADERS = ("gate", "slice", "metric", "value", "bound", "baseline", "status")


def _check_row(check: gates.Check) -> tuple:
    def number(value):
        return "-" if value is None else f"{value:.4f}"

    return (check.gate, check.slice, check.metric, number(check.value), check.bound or "-", number(check.baseline),
            check.status + (f" ({check.detail})" if check.detail and check.status != gates.PASS else ""))


def write_blessing(folder: str, checks: list[gates.Check], blocked: list[gates.Check]) -> None:
    """The verdict and every check behind it (``blessing.json``)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, BLESSING_FILE), "w", encoding="utf-8") as handle:
        json.dump({"blessed": not blocked, "checks": [c.as_dict() for c in checks],
                   "blocking": [c.as_dict() for c in blocked]}, handle, indent=2)


def _append_gates_to_report(report_path: str, checks: list[gates.Check], blocked: list[gates.Check]) -> None:
    verdict = "**Not blessed**: the model is not pushed." if blocked else "**Blessed**: every gate passed."
    if not checks:
        verdict = "No gates are configured (evaluator.gates): the model is blessed."
    lines = ["", "## Gates", "", verdict, ""]
    if checks:
        lines += [markdown_table(CHECK_HEADERS, [_check_row(c) for c in checks]), ""]
    with open(report_path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def slice_name(slice_key: tuple) -> str:
    """``(("race", "group_a"), ("sex", "female"))`` -> ``race=group_a, sex=female``; ``()`` -> overall."""
    if not slice_key:
        return OVERALL
    return ", ".join(f"{feature}={value.decode() if isinstance(value, bytes) else value}"
                     for feature, value in slice_key)


def run_evaluator(examples_dir: str, model_dir: str, evaluation_dir: str, report_path: str,
                  evaluator: EvaluatorConfig, features: FeaturesConfig, beam_config: BeamConfig,
                  progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """Evaluates the model on ``evaluator.split`` of the raw examples with TFMA.

    Args:
        examples_dir: ExampleGen's Examples artifact (raw examples: slicing uses raw values).
        model_dir: The Trainer's Model artifact (a SavedModel with ``transform_label``).
        evaluation_dir: Output ModelEvaluation artifact: TFMA's output and ``metrics.json``.
        report_path: Output Markdown file: the per-slice table.
        evaluator: The ``evaluator`` section.
        features: The ``features`` section.
        beam_config: Beam pipeline options.
        progress: Receives a line before TFMA starts.

    Returns:
        One row per slice (overall first): slice name, size, metrics under the YAML's names,
        and whether the slice is below ``min_slice_size``.
    """
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from fairness_indicators import fairness_indicators_metrics  # noqa: F401 - registers FairnessIndicators

    from components.trainer.core import LABEL_SIGNATURE, SCORES, binary_label_key

    eval_config = build_eval_config(evaluator, features, binary_label_key(features.label), LABEL_SIGNATURE, SCORES)
    progress(f"evaluating on the {evaluator.split} split with TFMA")
    shared = tfma.default_eval_shared_model(eval_saved_model_path=model_dir, eval_config=eval_config)
    tfma.run_model_analysis(eval_shared_model=shared, eval_config=eval_config,
                            data_location=split_file(examples_dir, evaluator.split), file_format="tfrecords",
                            output_path=evaluation_dir,
                            pipeline_options=PipelineOptions(list(beam_config.pipeline_options)))
    rows = _rows(tfma.load_metrics(evaluation_dir), evaluator)
    with open(os.path.join(evaluation_dir, EVALUATION_SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump({"split": evaluator.split, "decision_thresholds": list(evaluator.decision_thresholds),
                   "min_slice_size": evaluator.min_slice_size, "slices": rows}, handle, indent=2)
    _write_report(rows, evaluator, report_path)
    return rows


def _rows(metrics_for_slices, evaluator: EvaluatorConfig) -> list[dict[str, Any]]:
    import tensorflow_model_analysis as tfma

    rows = []
    for item in metrics_for_slices:
        key = tfma.slicer.deserialize_slice_key(item.slice_key)
        values: dict[str, float] = {}
        for entry in item.metric_keys_and_values:
            if entry.value.HasField("double_value"):
                values[entry.key.name] = entry.value.double_value.value
        metrics = {ours: values[theirs] for ours, theirs in METRICS.items() if theirs in values}
        for threshold in evaluator.decision_thresholds:
            for name in FAIRNESS_METRICS:
                if fairness_key(name, threshold) in values:
                    metrics[f"{name}@{threshold:g}"] = values[fairness_key(name, threshold)]
        size = metrics.get("example_count", 0.0)
        rows.append({"slice": slice_name(key), "features": [f for f, _ in key], "size": size,
                     "insufficient": size < evaluator.min_slice_size, "metrics": metrics})
    rows.sort(key=lambda r: (r["slice"] != OVERALL, len(r["features"]), r["slice"]))
    return rows


def _write_report(rows: list[dict], evaluator: EvaluatorConfig, report_path: str) -> None:
    threshold = evaluator.decision_thresholds[0]
    columns = ["auc", "accuracy", "precision", "recall", f"positive_rate@{threshold:g}",
               f"false_positive_rate@{threshold:g}", f"false_negative_rate@{threshold:g}"]
    table = [[r["slice"], f"{r['size']:,.0f}" + (" (insufficient data)" if r["insufficient"] else ""),
              *[f"{r['metrics'][c]:.4f}" if c in r["metrics"] else "-" for c in columns]] for r in rows]
    lines = ["# Model evaluation", "",
             f"Split: {evaluator.split}. Slices with fewer than {evaluator.min_slice_size} examples are marked "
             "insufficient data.", "", markdown_table(["slice", "examples", *columns], table), ""]
    os.makedirs(os.path.dirname(report_path) or ".", exist_ok=True)
    with open(report_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
