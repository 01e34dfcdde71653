"""Evaluator: TensorFlow Model Analysis of the trained model, overall and per slice.

Metrics by ``features.task`` (the metric table, ``metrics.py``): binary: example count, AUC,
accuracy, precision, recall, F1, calibration, and the Fairness Indicators (positive rate, FPR, FNR,
TPR, TNR, ...) at the configured decision thresholds; multiclass: accuracy, top-k accuracy, macro
and micro precision/recall/F1, log loss, per-class figures and the confusion matrix; regression:
MSE, RMSE, MAE, MAPE, R², mean prediction and mean label, calibration and its plot. TFMA's own
output is kept, so ``tfma.load_eval_result`` and the Fairness Indicators widget open it too;
``metrics.json`` and a Markdown table give the same figures without a notebook.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

from components.baseline_resolver.core import no_baseline_reason, read_baseline
from components.common import tasks
from components.common.artifacts import split_file
from components.common.model_fingerprint import model_fingerprint
from components.common.tree_model import ensure_tree_ops
from components.evaluator import gates, intervals, report
from components.evaluator import metrics as metric_table
from components.evaluator.eval_config import BASELINE, CANDIDATE, CONFUSION_MATRICES, build_eval_config, gate_index
from components.evaluator.tfma_metrics import MOMENTS
from pipeline.config import BeamConfig, EvaluatorConfig, FeaturesConfig, Section
from pipeline.errors import DataError
from pipeline.files import atomic_write_text
from pipeline.specs import (ATTRIBUTIONS_FILE, BLESSING_FILE, EVALUATION_SUMMARY_FILE, SERVING_SAMPLE_FILE,
                            SPLIT_INFO_FILE)
from pipeline.table import markdown_table, text_table

OVERALL = "overall"
CLASSIFICATION_FILE = "classification.json"  # inside the evaluation artifact (binary and multiclass)


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
    features: FeaturesConfig = config["features"]
    result = run_evaluator(inputs["examples"], inputs["model"], outputs["evaluation"], outputs["evaluation_report"],
                           evaluator, features, config["beam"], progress, baseline_model=baseline)
    rows, baseline_rows = result["rows"], result["baseline_rows"]
    if result["baseline_problem"]:
        progress(f"the serving model is not a baseline: {result['baseline_problem']}")
    checks = gates.evaluate(evaluator, rows, baseline_rows, result["validation"],
                            groups=gates.data_groups(inputs["examples"]),
                            no_baseline=(result["baseline_problem"] or no_baseline_reason(inputs.get("baseline"))
                                         or gates.NOTHING_SERVES), task=features.task,
                            attributions=result["attributions"])
    blocked = gates.blocking(checks, evaluator)
    write_blessing(outputs["blessing"], checks, blocked, result["validation"], model_fingerprint(inputs["model"]))
    _append_gates_to_report(outputs["evaluation_report"], checks, blocked)
    page = report.render(rows, baseline_rows, [c.as_dict() for c in checks], not blocked, evaluator,
                         features, f"{evaluator.split} split; baseline: {baseline or 'none'}", plots=result["plots"],
                         attributions=result["attributions"])
    os.makedirs(os.path.dirname(outputs["fairness_report"]) or ".", exist_ok=True)
    atomic_write_text(outputs["fairness_report"], page)
    overall = next(r for r in rows if r["slice"] == OVERALL)
    if blocked:
        progress(f"{len(blocked)} of {len(checks)} gate checks failed: the model is not blessed")
    return {**headline_figures(overall, features.task),
            "examples": int(overall["size"]), "slices": len(rows) - 1,
            "insufficient_slices": sum(r["insufficient"] for r in rows),
            "blessed": not blocked, "blocked_by": blocked_message(checks, blocked) if blocked else "",
            "checks": len(checks), "baseline": baseline or "none"}


def headline_figures(overall: dict, task: str) -> dict[str, float]:
    """The task's headline figures of the overall slice, as ``eval_<metric>`` (the metric table's
    ``HEADLINES``): binary eval_auc, eval_accuracy; multiclass eval_accuracy, eval_macro_f1,
    eval_log_loss, eval_top_k_accuracy; regression eval_rmse, eval_mae, eval_r2,
    eval_mean_prediction, eval_mean_label. NaN when TFMA had no value (an R² of constant labels)."""
    values = overall["metrics"]
    return {f"eval_{name}": round(values.get(name, float("nan")), 4) for name in metric_table.HEADLINES[task]}


def blocked_message(checks: list[gates.Check], blocked: list[gates.Check]) -> str:
    """What ``sluiceway run`` prints when gates block the push: a table of the failed checks."""
    table = text_table(CHECK_HEADERS, [_check_row(c) for c in blocked], max_width=60)
    return f"the model is not pushed: {len(blocked)} of {len(checks)} gate checks failed:\n{table}"


CHECK_HEADERS = ("gate", "slice", "metric", "value", "bound", "baseline", "status", "decided by")


def _check_row(check: gates.Check) -> tuple:
    def number(value):
        return "-" if value is None else f"{value:.4f}"

    interval = f" [{check.interval[0]:.4f}, {check.interval[1]:.4f}]" if check.interval else ""
    judged = f" on the {check.judged}" if check.judged != "value" else ""
    return (check.gate, check.slice, check.metric, number(check.value) + interval, check.bound or "-",
            number(check.baseline),
            check.status + (f" ({check.detail})" if check.detail and check.status != gates.PASS else ""),
            check.decided_by + judged)


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
        model_dir: The Trainer's Model artifact (a SavedModel with the signatures of
            ``components.common.tasks`` for ``features.task``).
        evaluation_dir: Output ModelEvaluation artifact: TFMA's output (metrics, plots,
            validations) and ``metrics.json``.
        report_path: Output Markdown file: the per-slice table (and per task, the classes and
            confusion matrix, or the calibration buckets).
        evaluator: The ``evaluator`` section.
        features: The ``features`` section.
        beam_config: Beam pipeline options.
        progress: Receives a line before TFMA starts.
        baseline_model: The serving model, evaluated in the same TFMA run as ``baseline`` when it
            is a model of the same task (and, multiclass, the same classes).

    Returns:
        ``rows``: one row per slice (overall first): slice name, size, metrics under the YAML's
        names (per class: ``precision[high]``), and whether the slice is below ``min_slice_size``;
        ``baseline_rows``: the same for the baseline (``None`` without one); ``baseline_problem``:
        why the serving model was not evaluated as the baseline (``None`` when it was, or when
        there is none); ``validation``: TFMA's verdict on the gates; ``plots``: the overall slice's
        multiclass confusion matrix (``classes``, ``confusion_matrix``) or regression calibration
        buckets (``calibration_plot``).

    Raises:
        ConfigError: A multiclass fairness gate names a class the model does not have.
        DataError: Regression: examples of the evaluated split have no label.
    """
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    task = features.task
    if task == metric_table.BINARY:
        from fairness_indicators import fairness_indicators_metrics  # noqa: F401 - registers FairnessIndicators
    ensure_tree_ops(model_dir)
    classes = tasks.model_classes(model_dir, features.label) if task == metric_table.MULTICLASS else []
    label_range = _label_range(examples_dir, evaluator.split, features) if task == metric_table.REGRESSION else None
    baseline_problem = _baseline_problem(baseline_model, features, classes) if baseline_model else None
    if baseline_problem:
        baseline_model = None
    elif baseline_model:
        ensure_tree_ops(baseline_model)
    eval_config = build_eval_config(evaluator, features, tasks.label_key(features.label, task), tasks.LABEL_SIGNATURE,
                                    tasks.prediction_key(task), with_baseline=baseline_model is not None,
                                    classes=classes, label_range=label_range)
    candidate = CANDIDATE if baseline_model else ""  # TFMA names a lone model ""
    models = [tfma.default_eval_shared_model(eval_saved_model_path=model_dir, eval_config=eval_config,
                                             model_name=candidate)]
    if baseline_model:
        models.append(tfma.default_eval_shared_model(eval_saved_model_path=baseline_model, eval_config=eval_config,
                                                     model_name=BASELINE))
    progress(f"evaluating the {task} model on the {evaluator.split} split with TFMA "
             f"({len(evaluator.gates)} gates as TFMA thresholds)")
    tfma.run_model_analysis(eval_shared_model=models if baseline_model else models[0], eval_config=eval_config,
                            data_location=split_file(examples_dir, evaluator.split), file_format="tfrecords",
                            output_path=evaluation_dir,
                            pipeline_options=PipelineOptions(list(beam_config.pipeline_options)))
    loaded_model = models[0].model_loader.load()
    write_serving_sample(loaded_model, examples_dir, evaluator.split, os.path.join(evaluation_dir, SERVING_SAMPLE_FILE))
    attributions = _attributions(loaded_model, examples_dir, evaluator, features, progress) \
        if evaluator.attributions.enabled else None
    if attributions is not None:
        atomic_write_text(os.path.join(evaluation_dir, ATTRIBUTIONS_FILE), json.dumps(attributions, indent=1))
    del loaded_model
    _release_shared_models()
    loaded = list(tfma.load_metrics(evaluation_dir))
    loaded_plots = list(tfma.load_plots(evaluation_dir))
    rows = _rows(loaded, evaluator, candidate, task, classes, loaded_plots)
    baseline_rows = _rows(loaded, evaluator, BASELINE, task, classes, loaded_plots) if baseline_model else None
    plots = _plots(loaded_plots, candidate, task, classes)
    if task == metric_table.BINARY:
        _write_classification(loaded, candidate, evaluator.decision_thresholds[0],
                              os.path.join(evaluation_dir, CLASSIFICATION_FILE))
    elif task == metric_table.MULTICLASS:
        with open(os.path.join(evaluation_dir, CLASSIFICATION_FILE), "w", encoding="utf-8") as handle:
            json.dump({"roc": None, "confusion_matrix": {"categories": classes,
                                                         "matrix": plots["confusion_matrix"]}}, handle)
    validation = read_validation(tfma.load_validation_result(evaluation_dir), eval_config)
    with open(os.path.join(evaluation_dir, EVALUATION_SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump({"split": evaluator.split, "task": task, "decision_thresholds": list(evaluator.decision_thresholds),
                   "min_slice_size": evaluator.min_slice_size, "baseline_model": baseline_model,
                   "baseline_problem": baseline_problem, **({"top_k": evaluator.top_k} if classes else {}),
                   "intervals": {"method": evaluator.intervals.method, "level": evaluator.intervals.level,
                                 "max_width": evaluator.intervals.max_width,
                                 "methods": interval_methods(evaluator, task, classes)},
                   **plots, "slices": rows, "baseline_slices": baseline_rows}, handle, indent=2)
    _write_report(rows, evaluator, report_path, task, plots, attributions)
    return {"rows": rows, "baseline_rows": baseline_rows, "baseline_problem": baseline_problem,
            "validation": validation, "plots": plots, "attributions": attributions}


TRAIN_SAMPLE = 20_000  # train examples read for the sensitive features' proxies


def _attributions(model, examples_dir: str, evaluator: EvaluatorConfig, features: FeaturesConfig,
                  progress: Callable[[str], None]) -> dict:
    """Permutation importance of every raw feature on the first ``evaluator.attributions.examples``
    examples of the evaluated split, overall and per group of each sensitive feature, and each
    sensitive feature's proxies in train (``attributions.compute``)."""
    import itertools
    import time

    from components.common.tfrecord import read_records
    from components.evaluator import attributions

    settings = evaluator.attributions
    records = list(itertools.islice(read_records(split_file(examples_dir, evaluator.split)), settings.examples))
    train = None
    train_file = split_file(examples_dir, "train")
    if features.sensitive and settings.proxies and os.path.exists(train_file):  # (no train split: no proxies)
        train = list(itertools.islice(read_records(train_file), TRAIN_SAMPLE))
    started = time.monotonic()
    found = attributions.compute(model, records, train, label=features.label, task=features.task,
                                 numeric=list(features.numeric), categorical=list(features.categorical),
                                 sensitive=list(features.sensitive), repeats=settings.repeats, seed=settings.seed,
                                 proxies=settings.proxies, bands=dict(evaluator.bands),
                                 min_slice_size=evaluator.min_slice_size)
    progress(f"feature attributions: permutation importance of {len(found['features'])} raw features on "
             f"{found['examples']:,} {evaluator.split} examples in {time.monotonic() - started:.1f} s")
    return found


def _signature_outputs(model_dir: str) -> dict[str, set[str]]:
    """Each signature's output names, read from ``saved_model.pb`` (no model loaded; a local path or
    a URL such as the serving model's ``gs://`` one)."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    with tf.io.gfile.GFile(f"{model_dir.rstrip('/')}/saved_model.pb", "rb") as handle:
        graph = saved_model_pb2.SavedModel.FromString(handle.read()).meta_graphs[0]
    return {name: set(signature.outputs) for name, signature in graph.signature_def.items()}


def _served_classes(model_dir: str, label: str) -> list[str] | None:
    """A multiclass SavedModel's classes, from its label vocabulary (``tasks.model_classes``'s file,
    read through ``tf.io.gfile`` so that a ``gs://`` serving model is read too); ``None`` without one."""
    import tensorflow as tf

    path = f"{model_dir.rstrip('/')}/assets/{tasks.label_vocabulary_file(label)}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as handle:
        return [line.rstrip("\n") for line in handle.read().splitlines() if line.rstrip("\n")]


def _baseline_problem(baseline_model: str, features: FeaturesConfig, classes: list[str]) -> str | None:
    """Why the serving model cannot be TFMA's baseline for this evaluation (``None`` when it can):
    it was trained for another task or label, or (multiclass) on other classes, so its figures
    compare with nothing of the candidate's."""
    task = features.task
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        outputs = _signature_outputs(baseline_model)
    except (OSError, IndexError, DecodeError, tf.errors.OpError) as error:
        return f"its SavedModel cannot be read ({error})"
    label_key, prediction_key = tasks.label_key(features.label, task), tasks.prediction_key(task)
    if label_key not in outputs.get(tasks.LABEL_SIGNATURE, set()) \
            or prediction_key not in outputs.get("serving_default", set()):
        return (f"it is not a {task} model of the label '{features.label}' (its {tasks.LABEL_SIGNATURE} signature "
                f"gives {', '.join(sorted(outputs.get(tasks.LABEL_SIGNATURE, ()))) or 'nothing'}): no figure of "
                "it compares with the candidate's")
    if task == metric_table.MULTICLASS:
        served = _served_classes(baseline_model, features.label)
        if served is None:
            return "it has no label vocabulary: its classes are unknown"
        if served != classes:
            return (f"its classes ({', '.join(served)}) are not the candidate's ({', '.join(classes)}): per-class "
                    "figures would compare different classes")
    return None


LABEL_SAMPLE = 100_000  # records read for the label's range when ExampleGen did not record it


def _label_range(examples_dir: str, split: str, features: FeaturesConfig) -> tuple[float, float] | None:
    """Regression: the evaluated split's lowest and highest label (ExampleGen's ``label_stats``, or
    read from the first records of an artifact written before it recorded them).

    Raises:
        DataError: Some examples of the split have no label (they would make every mean NaN).
    """
    try:
        with open(os.path.join(examples_dir, SPLIT_INFO_FILE), encoding="utf-8") as handle:
            stats = json.load(handle).get("label_stats", {}).get(split)
    except (OSError, ValueError):
        stats = None
    if stats:
        if stats.get("missing"):
            raise DataError(f"Evaluator: {stats['missing']:,} examples of the {split} split have no value of the "
                            f"label '{features.label}'; expected a number in every row of a regression label "
                            "(remove those rows from the data)")
        return (stats["min"], stats["max"]) if stats.get("count") else None
    import tensorflow as tf

    values = []
    for record in tf.data.TFRecordDataset(split_file(examples_dir, split), compression_type="GZIP").take(LABEL_SAMPLE):
        feature = tf.train.Example.FromString(record.numpy()).features.feature.get(features.label)
        if feature is not None:
            values += list(feature.float_list.value) + [float(v) for v in feature.int64_list.value]
    return (min(values), max(values)) if values else None


def _plots(plots_for_slices, model_name: str, task: str, classes: list[str]) -> dict[str, Any]:
    """The overall slice's plots: multiclass ``classes`` and ``confusion_matrix`` (rows: the actual
    class, columns: the predicted one, in class-id order); regression ``calibration_plot`` (per
    bucket of predictions: its range, examples, mean prediction and mean label; the first and last
    bucket hold the predictions outside the label's range)."""
    import tensorflow_model_analysis as tfma

    if task == metric_table.BINARY:
        return {}
    overall = next((p for p in plots_for_slices if not p.HasField("cross_slice_key")
                    and not tfma.slicer.deserialize_slice_key(p.slice_key)), None)
    # (by the kind of plot: TFMA 0.47 loads the calibration plot's key without its name)
    values = [e.value for e in (overall.plot_keys_and_values if overall else []) if e.key.model_name == model_name]
    if task == metric_table.MULTICLASS:
        matrix = [[0] * len(classes) for _ in classes]
        plot = next((v for v in values if v.HasField("multi_class_confusion_matrix_at_thresholds")), None)
        if plot is not None:
            for entry in plot.multi_class_confusion_matrix_at_thresholds.matrices[0].entries:
                if 0 <= entry.actual_class_id < len(classes) and 0 <= entry.predicted_class_id < len(classes):
                    matrix[entry.actual_class_id][entry.predicted_class_id] = int(round(entry.num_weighted_examples))
        return {"classes": list(classes), "confusion_matrix": matrix}
    buckets = []
    plot = next((v for v in values if v.HasField("calibration_histogram_buckets")), None)
    for bucket in plot.calibration_histogram_buckets.buckets if plot is not None else []:
        count = bucket.num_weighted_examples.value
        if not count:
            continue
        buckets.append({"from": bucket.lower_threshold_inclusive, "to": bucket.upper_threshold_exclusive,
                        "examples": count, "mean_prediction": bucket.total_weighted_refined_prediction.value / count,
                        "mean_label": bucket.total_weighted_label.value / count})
    return {"calibration_plot": buckets}


SERVING_SAMPLE_ROWS = 200


def write_serving_sample(model, examples_dir: str, split: str, path: str,
                         rows: int = SERVING_SAMPLE_ROWS) -> None:
    """The first ``rows`` examples of the evaluated split, serialized as TFMA read them, with what the
    evaluated ``model``'s ``serving_default`` returned for them in this process (the Evaluator passes the
    model TFMA loaded; it is called as TFMA calls it): the InfraValidator sends the same examples to the
    model in a serving process and compares the answers (training/serving skew)."""
    import base64
    import itertools

    import tensorflow as tf

    from components.common.tfrecord import read_records

    records = list(itertools.islice(read_records(split_file(examples_dir, split)), rows))
    signature = model.signatures["serving_default"]
    input_name = next(iter(signature.structured_input_signature[1]))
    outputs = signature(**{input_name: tf.constant(records)}) if records else {}
    sample = {"split": split, "signature": "serving_default", "input": input_name,
              "examples": [base64.b64encode(record).decode("ascii") for record in records],
              "outputs": {name: _listed(value.numpy()) for name, value in outputs.items()}}
    atomic_write_text(path, json.dumps(sample))


def _listed(array) -> list:
    """A [batch, ...] output as JSON lists: numbers as floats, strings (multiclass ``classes``) as text."""
    if array.dtype.kind in ("S", "O"):
        return [[v.decode("utf-8", "replace") for v in row] for row in array.reshape(len(array), -1)]
    return array.astype(float).tolist()


def _release_shared_models() -> None:
    """Lets go of the models TFMA loaded. Beam's ``shared`` module keeps the last object it shared
    (the loaded SavedModel) alive in a global until the process ends, where TensorFlow, already torn
    down, prints "Exception ignored in AtomicFunction.__del__" once per function of the model."""
    import gc

    from apache_beam.utils import shared

    holder = getattr(shared, "_shared_map", None)
    if holder is not None and hasattr(holder, "_keepalive"):
        holder._keepalive = (None, None)
    gc.collect()


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
    """Logs the overall ROC curve (binary) and the confusion matrix (binary at the first decision
    threshold; multiclass with the class names as categories) to a KFP ``ClassificationMetrics``.
    A regression model logs none: its figures are in the component's ``Metrics`` artifact."""
    path = os.path.join(outputs["evaluation"], CLASSIFICATION_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    roc = data["roc"]
    if roc is not None:
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


def _rows(metrics_for_slices, evaluator: EvaluatorConfig, model_name: str, task: str = metric_table.BINARY,
          classes: list[str] | tuple[str, ...] = (), plots_for_slices=()) -> list[dict[str, Any]]:
    """One row per slice (overall first): its name, features, size, whether it is below
    ``min_slice_size``, its metrics (key -> value), and, unless ``evaluator.intervals.method`` is off,
    each metric's confidence interval (``intervals``: key -> [low, high]) and the keys whose interval
    is too wide to judge (``wide``)."""
    import tensorflow_model_analysis as tfma

    method = evaluator.intervals.method
    matrices = _multiclass_matrices(plots_for_slices, model_name) if task == metric_table.MULTICLASS else {}
    rows = []
    for item in metrics_for_slices:
        if item.HasField("cross_slice_key"):
            continue  # the fairness gates' slice pairs: judged through the validation result
        key = tfma.slicer.deserialize_slice_key(item.slice_key)
        values: dict[tuple[str, Any], float] = {}  # (TFMA name, class id or None) -> value
        errors: dict[tuple[str, Any], tuple[float, float]] = {}  # -> TFMA's (standard error, degrees of freedom)
        counts: dict = {}
        moments: dict[str, float] = {}
        for entry in item.metric_keys_and_values:
            if entry.key.model_name != model_name or entry.key.is_diff:
                continue
            if entry.key.name == CONFUSION_MATRICES:
                counts = {round(m.threshold, 9): {"tp": m.true_positives, "fp": m.false_positives,
                                                   "tn": m.true_negatives, "fn": m.false_negatives}
                          for m in entry.value.confusion_matrix_at_thresholds.matrices}
            elif entry.key.name.startswith(MOMENTS + "/"):
                moments[entry.key.name.split("/", 1)[1]] = entry.value.double_value.value
            elif entry.value.HasField("double_value"):
                sub_key = entry.key.sub_key
                class_id = sub_key.class_id.value if sub_key.HasField("class_id") else None
                if not sub_key.HasField("top_k") and not sub_key.HasField("k"):
                    values[(entry.key.name, class_id)] = entry.value.double_value.value
                    if entry.HasField("confidence_interval"):
                        interval = entry.confidence_interval
                        errors[(entry.key.name, class_id)] = (interval.standard_error.double_value.value,
                                                              interval.degrees_of_freedom.value)
        metrics, standard_errors = {}, {}
        for metric in metric_table.metrics_of_task(task):
            if metric.per_class:
                for class_id, class_name in enumerate(classes):
                    if (metric.tfma_key, class_id) in values:
                        metrics[metric.row_key(0.0, class_name)] = values[(metric.tfma_key, class_id)]
                        if (metric.tfma_key, class_id) in errors:
                            standard_errors[metric.row_key(0.0, class_name)] = errors[(metric.tfma_key, class_id)]
                continue
            # binary: the rates at every decision threshold, the others at the first
            for threshold in evaluator.decision_thresholds if metric.rate else evaluator.decision_thresholds[:1]:
                if (metric.tfma_key_at(threshold), None) in values:
                    metrics[metric.row_key(threshold)] = values[(metric.tfma_key_at(threshold), None)]
                    if (metric.tfma_key_at(threshold), None) in errors:
                        standard_errors[metric.row_key(threshold)] = errors[(metric.tfma_key_at(threshold), None)]
        size = metrics.get("example_count", 0.0)
        row = {"slice": slice_name(key), "features": [f for f, _ in key], "size": size,
               "insufficient": size < evaluator.min_slice_size, "metrics": metrics}
        if method != "off":
            if method == "closed_form":
                found, _ = intervals.closed_form(row, task, [round(t, 9) for t in evaluator.decision_thresholds],
                                                 evaluator.intervals.level, evaluator.intervals.seed,
                                                 matrices.get(row["slice"], {}) if task == metric_table.MULTICLASS
                                                 else counts, moments, classes)
            else:
                found, _ = intervals.from_tfma(row, standard_errors, evaluator.intervals.level,
                                               intervals.TFMA_METHODS[method])
            row["intervals"] = {k: list(v) for k, v in found.items()}
            row["wide"] = [k for k, v in found.items()
                           if intervals.too_wide(_metric_of_key(k, task), metrics.get(k), v,
                                                 evaluator.intervals.max_width)]
        rows.append(row)
    rows.sort(key=lambda r: (r["slice"] != OVERALL, len(r["features"]), r["slice"]))
    return rows


def _metric_of_key(key: str, task: str) -> metric_table.Metric:
    """The metric of a row key (``positive_rate@0.5``, ``precision[high]``, ``auc``)."""
    return metric_table.metric(key.split("@", 1)[0].split("[", 1)[0], task)


def interval_methods(evaluator: EvaluatorConfig, task: str, classes: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """Which method gives each metric's interval (``metrics.json`` ``intervals.methods``)."""
    method = evaluator.intervals.method
    if method == "off":
        return {}
    if method != "closed_form":
        return {"*": intervals.TFMA_METHODS[method]}
    return intervals.closed_form_methods(task, evaluator.decision_thresholds, classes)


def _multiclass_matrices(plots_for_slices, model_name: str) -> dict[str, dict[tuple[int, int], float]]:
    """Each slice's multiclass confusion matrix at the most probable class: (actual id, predicted
    id) -> examples (an actual id of -1: a label outside the classes)."""
    import tensorflow_model_analysis as tfma

    found = {}
    for plot in plots_for_slices:
        if plot.HasField("cross_slice_key"):
            continue
        name = slice_name(tfma.slicer.deserialize_slice_key(plot.slice_key))
        for entry in plot.plot_keys_and_values:
            if entry.key.model_name == model_name and entry.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                matrix = entry.value.multi_class_confusion_matrix_at_thresholds.matrices[0]
                found[name] = {(e.actual_class_id, e.predicted_class_id): e.num_weighted_examples
                               for e in matrix.entries}
    return found


def _write_report(rows: list[dict], evaluator: EvaluatorConfig, report_path: str, task: str = metric_table.BINARY,
                  plots: Mapping[str, Any] | None = None, attributions: dict | None = None) -> None:
    threshold = evaluator.decision_thresholds[0]
    columns = metric_table.report_columns(threshold, task, evaluator.top_k)  # accuracy@0.5: at the threshold
    table = [[r["slice"], f"{r['size']:,.0f}" + (" (insufficient data)" if r["insufficient"] else ""),
              *[report.figure(r, key) for _, key, _ in columns]] for r in rows]
    note = (f" `@{threshold:g}`: measured at decision threshold {threshold:g} (the first of "
            "evaluator.decision_thresholds)." if task == metric_table.BINARY else
            " The predicted class is the most probable one." if task == metric_table.MULTICLASS else
            " Errors and means are in the label's units; mape in percent.")
    lines = ["# Model evaluation", "",
             f"Task: {task}. Split: {evaluator.split}. Slices with fewer than {evaluator.min_slice_size} examples "
             f"are marked insufficient data.{note}", "",
             report.intervals_note(evaluator, task, (plots or {}).get("classes", ())), "",
             markdown_table(["slice", "examples", *[header for _, _, header in columns]], table), ""]
    plots = plots or {}
    if task == metric_table.MULTICLASS and rows:
        lines += ["## Per class (overall, one-vs-rest)", "", markdown_table(*report.class_rows(rows[0], plots["classes"])),
                  "", "## Confusion matrix (overall)", "",
                  "Rows: the label; columns: the predicted (most probable) class.", "",
                  markdown_table(*report.confusion_rows(plots)), ""]
    if task == metric_table.REGRESSION:
        lines += ["## Calibration (overall)", "",
                  "Mean prediction and mean label of the examples in each band of predictions (the first and "
                  "last band also hold predictions outside the labels' range).", ""]
        lines += [markdown_table(*report.calibration_rows(plots)), ""] if plots.get("calibration_plot") else \
            ["No calibration plot: the labels of the split do not vary.", ""]
    if attributions:
        lines += report.attribution_lines(attributions)
    os.makedirs(os.path.dirname(report_path) or ".", exist_ok=True)
    with open(report_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))

