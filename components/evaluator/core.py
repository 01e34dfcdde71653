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

from components.baseline_resolver.core import no_baseline_reason, read_baseline
from components.common.artifacts import split_file
from components.common.model_fingerprint import model_fingerprint
from components.evaluator import gates, report
from components.evaluator.eval_config import BASELINE, CANDIDATE, CONFUSION_MATRICES, build_eval_config, gate_index
from pipeline.config import BeamConfig, EvaluatorConfig, FeaturesConfig, Section
from pipeline.files import atomic_write_text
from pipeline.specs import BLESSING_FILE, EVALUATION_SUMMARY_FILE
from pipeline.table import markdown_table, text_table

OVERALL = "overall"
CLASSIFICATION_FILE = "classification.json"  # inside the evaluation artifact


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the Evaluator as a pipeline step; see ``run_evaluator``. Returns its figures.

    A model the gates block is an outcome, not an error: every output is written, the blessing
    says which checks failed, and the figures say ``blessed: False`` with the failed checks as a
    table in ``blocked_by`` (the runners then skip the Pusher; the CLI exits with code 5).

    Args:
        inputs: ``examples`` and ``model``; optionally ``baseline``, the BaselineResolver's record of
            the model serving now (no baseline when it is absent or says none serves).
    """
    evaluator: EvaluatorConfig = config["evaluator"]
    baseline = read_baseline(inputs.get("baseline"))
    if baseline:
        progress(f"the serving model {baseline} is evaluated beside the candidate as the baseline")
    result = run_evaluator(inputs["examples"], inputs["model"], outputs["evaluation"], outputs["evaluation_report"],
                           evaluator, config["features"], config["beam"], progress, baseline_model=baseline)
    rows, baseline_rows = result["rows"], result["baseline_rows"]
    checks = gates.evaluate(evaluator, rows, baseline_rows, result["validation"],
                            groups=gates.data_groups(inputs["examples"]),
                            no_baseline=no_baseline_reason(inputs.get("baseline")) or gates.NOTHING_SERVES)
    blocked = gates.blocking(checks, evaluator)
    write_blessing(outputs["blessing"], checks, blocked, result["validation"], model_fingerprint(inputs["model"]))
    _append_gates_to_report(outputs["evaluation_report"], checks, blocked)
    page = report.render(rows, baseline_rows, [c.as_dict() for c in checks], not blocked, evaluator,
                         config["features"], f"{evaluator.split} split; baseline: {baseline or 'none'}")
    os.makedirs(os.path.dirname(outputs["fairness_report"]) or ".", exist_ok=True)
    atomic_write_text(outputs["fairness_report"], page)
    overall = next(r for r in rows if r["slice"] == OVERALL)
    if blocked:
        progress(f"{len(blocked)} of {len(checks)} gate checks failed: the model is not blessed")
    return {"eval_auc": round(overall["metrics"]["auc"], 4), "eval_accuracy": round(overall["metrics"]["accuracy"], 4),
            "examples": int(overall["size"]), "slices": len(rows) - 1,
            "insufficient_slices": sum(r["insufficient"] for r in rows),
            "blessed": not blocked, "blocked_by": blocked_message(checks, blocked) if blocked else "",
            "checks": len(checks), "baseline": baseline or "none"}


def blocked_message(checks: list[gates.Check], blocked: list[gates.Check]) -> str:
    """What ``sluiceway run`` prints when gates block the push: a table of the failed checks."""
    table = text_table(CHECK_HEADERS, [_check_row(c) for c in blocked], max_width=60)
    return f"the model is not pushed: {len(blocked)} of {len(checks)} gate checks failed:\n{table}"


CHECK_HEADERS = ("gate", "slice", "metric", "value", "bound", "baseline", "status", "decided by")


def _check_row(check: gates.Check) -> tuple:
    def number(value):
        return "-" if value is None else f"{value:.4f}"

    return (check.gate, check.slice, check.metric, number(check.value), check.bound or "-", number(check.baseline),
            check.status + (f" ({check.detail})" if check.detail and check.status != gates.PASS else ""),
            check.decided_by)


def write_blessing(folder: str, checks: list[gates.Check], blocked: list[gates.Check],
                   validation: gates.TfmaValidation, fingerprint: str) -> None:
    """The verdict, every check behind it, and the ``model_fingerprint`` of the model judged
    (``blessing.json``): the Pusher pushes only a model with that fingerprint."""
    os.makedirs(folder, exist_ok=True)
    tfma = {"validation_ok": validation.validation_ok,
            "failures": sum(len(f) for f in validation.failures.values())
            + sum(len(f) for f in validation.diff_failures.values()),
            "note": "validation_ok is TFMA's own flag, kept as written; TFMA 0.47 sets it False whenever there are "
                    "cross-slice thresholds or no thresholds at all. The verdict is 'blessed'."}
    with open(os.path.join(folder, BLESSING_FILE), "w", encoding="utf-8") as handle:
        json.dump({"blessed": not blocked, "model_fingerprint": fingerprint, "checks": [c.as_dict() for c in checks],
                   "blocking": [c.as_dict() for c in blocked], "tfma_validation": tfma}, handle, indent=2)


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
                  progress: Callable[[str], None] = lambda _: None,
                  baseline_model: str | None = None) -> dict[str, Any]:
    """Evaluates the model on ``evaluator.split`` of the raw examples with TFMA, gates included.

    Args:
        examples_dir: ExampleGen's Examples artifact (raw examples: slicing uses raw values).
        model_dir: The Trainer's Model artifact (a SavedModel with ``transform_label``).
        evaluation_dir: Output ModelEvaluation artifact: TFMA's output (metrics, validations)
            and ``metrics.json``.
        report_path: Output Markdown file: the per-slice table.
        evaluator: The ``evaluator`` section.
        features: The ``features`` section.
        beam_config: Beam pipeline options.
        progress: Receives a line before TFMA starts.
        baseline_model: The serving model, evaluated in the same TFMA run as ``baseline``.

    Returns:
        ``rows``: one row per slice (overall first): slice name, size, metrics under the YAML's
        names, and whether the slice is below ``min_slice_size``; ``baseline_rows``: the same for
        the baseline (``None`` without one); ``validation``: TFMA's verdict on the gates.
    """
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from fairness_indicators import fairness_indicators_metrics  # noqa: F401 - registers FairnessIndicators

    from components.trainer.core import LABEL_SIGNATURE, SCORES, binary_label_key

    eval_config = build_eval_config(evaluator, features, binary_label_key(features.label), LABEL_SIGNATURE, SCORES,
                                    with_baseline=baseline_model is not None)
    candidate = CANDIDATE if baseline_model else ""  # TFMA names a lone model ""
    models = [tfma.default_eval_shared_model(eval_saved_model_path=model_dir, eval_config=eval_config,
                                             model_name=candidate)]
    if baseline_model:
        models.append(tfma.default_eval_shared_model(eval_saved_model_path=baseline_model, eval_config=eval_config,
                                                     model_name=BASELINE))
    progress(f"evaluating on the {evaluator.split} split with TFMA ({len(evaluator.gates)} gates as TFMA thresholds)")
    tfma.run_model_analysis(eval_shared_model=models if baseline_model else models[0], eval_config=eval_config,
                            data_location=split_file(examples_dir, evaluator.split), file_format="tfrecords",
                            output_path=evaluation_dir,
                            pipeline_options=PipelineOptions(list(beam_config.pipeline_options)))
    loaded = list(tfma.load_metrics(evaluation_dir))
    rows = _rows(loaded, evaluator, candidate)
    _write_classification(loaded, candidate, evaluator.decision_thresholds[0],
                          os.path.join(evaluation_dir, CLASSIFICATION_FILE))
    baseline_rows = _rows(loaded, evaluator, BASELINE) if baseline_model else None
    validation = read_validation(tfma.load_validation_result(evaluation_dir), eval_config)
    with open(os.path.join(evaluation_dir, EVALUATION_SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump({"split": evaluator.split, "decision_thresholds": list(evaluator.decision_thresholds),
                   "min_slice_size": evaluator.min_slice_size, "baseline_model": baseline_model,
                   "slices": rows, "baseline_slices": baseline_rows}, handle, indent=2)
    _write_report(rows, evaluator, report_path)
    return {"rows": rows, "baseline_rows": baseline_rows, "validation": validation}


def _write_classification(metrics_for_slices, model_name: str, decision_threshold: float, path: str) -> None:
    """The overall ROC points and the confusion matrix at the first decision threshold, for
    Kubeflow's ClassificationMetrics view (``classification.json``)."""
    import tensorflow_model_analysis as tfma

    overall = next(m for m in metrics_for_slices
                   if not m.HasField("cross_slice_key") and not tfma.slicer.deserialize_slice_key(m.slice_key))
    matrices = next(e.value.confusion_matrix_at_thresholds.matrices for e in overall.metric_keys_and_values
                    if e.key.name == CONFUSION_MATRICES and e.key.model_name == model_name and not e.key.is_diff)
    roc = {"threshold": [], "fpr": [], "tpr": []}
    confusion = None
    for m in matrices:
        roc["threshold"].append(m.threshold)
        roc["fpr"].append(m.false_positives / max(m.false_positives + m.true_negatives, 1))
        roc["tpr"].append(m.true_positives / max(m.true_positives + m.false_negatives, 1))
        if abs(m.threshold - decision_threshold) < 1e-9:
            confusion = [[m.true_negatives, m.false_positives], [m.false_negatives, m.true_positives]]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"roc": roc, "decision_threshold": decision_threshold,
                   "confusion_matrix": {"categories": ["negative", "positive"], "matrix": confusion}}, handle)


def log_classification_metrics(outputs: Mapping[str, str], classification_metrics: Any) -> None:
    """Logs the overall ROC curve and the confusion matrix to a KFP ``ClassificationMetrics``."""
    with open(os.path.join(outputs["evaluation"], CLASSIFICATION_FILE), encoding="utf-8") as handle:
        data = json.load(handle)
    roc = data["roc"]
    classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["threshold"])
    confusion = data["confusion_matrix"]
    if confusion["matrix"] is not None:
        classification_metrics.log_confusion_matrix(confusion["categories"],
                                                    [[int(v) for v in row] for row in confusion["matrix"]])


def read_validation(result, eval_config) -> gates.TfmaValidation:
    """TFMA's ValidationResult, keyed by gate: failures per slice (or slice pair) and missing slices.

    TFMA 0.47 lists every cross-slicing spec with thresholds under ``missing_cross_slices`` even
    when it validated it (its validation details file cross-slice matches under the overall
    slice), so those entries are ignored here: a fairness gate with fewer than two groups, or
    without its reference group, is reported by ``gates.py`` from the per-slice rows instead.
    """
    from tensorflow_model_analysis.slicer import slicer_lib as slicer

    validation = gates.TfmaValidation(validation_ok=result.validation_ok)
    for per_slice in result.metric_validations_per_slice:
        if per_slice.HasField("cross_slice_key"):
            base, compared = slicer.deserialize_cross_slice_key(per_slice.cross_slice_key)
            where: Any = (slice_name(base), slice_name(compared))
        else:
            where = slice_name(slicer.deserialize_slice_key(per_slice.slice_key))
        for failure in per_slice.failures:
            index = gate_index(failure.metric_key.name)
            if index is None:
                continue
            target = validation.diff_failures if failure.metric_key.is_diff else validation.failures
            value = failure.metric_value.double_value.value if failure.HasField("metric_value") else None
            target.setdefault(index, {})[where] = failure.message or f"value {value}"
    missing = list(result.missing_slices)
    for metric in eval_config.metrics_specs[0].metrics:
        index = gate_index(json.loads(metric.config or "{}").get("name", ""))
        if index is None:
            continue
        for spec in [s for t in metric.per_slice_thresholds for s in t.slicing_specs]:
            if spec in missing:
                validation.missing.setdefault(index, []).append(" ".join(str(spec).split()))
    return validation


def _rows(metrics_for_slices, evaluator: EvaluatorConfig, model_name: str) -> list[dict[str, Any]]:
    import tensorflow_model_analysis as tfma

    from components.evaluator import metrics as metric_table

    rows = []
    for item in metrics_for_slices:
        if item.HasField("cross_slice_key"):
            continue  # the fairness gates' slice pairs: judged through the validation result
        key = tfma.slicer.deserialize_slice_key(item.slice_key)
        values: dict[str, float] = {}
        for entry in item.metric_keys_and_values:
            if (entry.value.HasField("double_value") and entry.key.model_name == model_name
                    and not entry.key.is_diff):
                values[entry.key.name] = entry.value.double_value.value
        metrics = {}
        for metric in metric_table.METRICS:  # the rates at every decision threshold, the others at the first
            for threshold in evaluator.decision_thresholds if metric.rate else evaluator.decision_thresholds[:1]:
                if metric.tfma_key_at(threshold) in values:
                    metrics[metric.row_key(threshold)] = values[metric.tfma_key_at(threshold)]
        size = metrics.get("example_count", 0.0)
        rows.append({"slice": slice_name(key), "features": [f for f, _ in key], "size": size,
                     "insufficient": size < evaluator.min_slice_size, "metrics": metrics})
    rows.sort(key=lambda r: (r["slice"] != OVERALL, len(r["features"]), r["slice"]))
    return rows


def _write_report(rows: list[dict], evaluator: EvaluatorConfig, report_path: str) -> None:
    from components.evaluator.metrics import report_columns

    threshold = evaluator.decision_thresholds[0]
    columns = report_columns(threshold)  # headers name the threshold a column used: accuracy@0.5
    table = [[r["slice"], f"{r['size']:,.0f}" + (" (insufficient data)" if r["insufficient"] else ""),
              *[f"{r['metrics'][key]:.4f}" if key in r["metrics"] else "-" for _, key, _ in columns]] for r in rows]
    lines = ["# Model evaluation", "",
             f"Split: {evaluator.split}. Slices with fewer than {evaluator.min_slice_size} examples are marked "
             f"insufficient data. `@{threshold:g}`: measured at decision threshold {threshold:g} "
             "(the first of evaluator.decision_thresholds).", "",
             markdown_table(["slice", "examples", *[header for _, _, header in columns]], table), ""]
    os.makedirs(os.path.dirname(report_path) or ".", exist_ok=True)
    with open(report_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
