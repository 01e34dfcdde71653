"""The Evaluator on a multiclass and a regression model, as a pipeline runs it (``execute``, the
serving model as TFMA's baseline): every figure against numpy on the examples the test wrote, the
gates' checks with their slice, value and bound, and what the reports and Kubeflow's artifact get.

The models are the small SavedModels of ``tiny_models`` (the Trainer's contract, known outputs),
so each figure is computed here by hand from the same labels and predictions."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from components.evaluator import gates
from pipeline.config import BeamConfig, EvaluatorConfig, FeaturesConfig
from pipeline.specs import BLESSING_FILE, EVALUATION_SUMMARY_FILE
from tests.components.conftest import make_outputs, markdown_rows, read_json
from tests.components.evaluator import tiny_models as tm

pytestmark = pytest.mark.slow

ROWS, MIN_SLICE_SIZE = 400, 10
MULTICLASS = FeaturesConfig(label=tm.MULTICLASS_LABEL, task="multiclass", numeric=["x"], categorical=["group"],
                            sensitive=["group"])
REGRESSION = FeaturesConfig(label=tm.REGRESSION_LABEL, task="regression", numeric=["x"], categorical=["group"],
                            sensitive=["group"])
MULTICLASS_GATES = [
    {"metric": "accuracy", "min": 0.99},
    {"metric": "macro_f1", "min": 0.05, "per": ["group"]},
    {"fairness": "positive_rate", "feature": "group", "class": "high", "max_gap": 0.05},
    {"fairness": "false_negative_rate", "feature": "group", "class": "low", "min_ratio": 0.01},
    {"no_regression": "log_loss", "max_drop": 0.0},
    {"metric": "top_k_accuracy", "min": 0.5},
]
REGRESSION_GATES = [
    {"metric": "rmse", "max": 0.5, "per": ["group"]},
    {"metric": "r2", "min": 0.3},
    {"fairness": "mean_prediction", "feature": "group", "max_gap": 0.3},
    {"fairness": "mae", "feature": "group", "min_ratio": 0.5},
    {"no_regression": "r2", "max_drop": 0.0},
    {"no_regression": "mae", "max_drop": 0.0},
]


def _baseline_record(folder, model_dir: str) -> str:
    path = os.path.join(str(folder), "BaselineResolver", "baseline.json")
    os.makedirs(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"serving": True, "uri": model_dir, "version": 1}, handle)
    return path


def _execute(folder, examples: str, model: str, baseline: str, features: FeaturesConfig, gate_list: list[dict]):
    from components.evaluator.core import execute

    outputs = make_outputs(str(folder / "Evaluator"), ("evaluation", "blessing"),
                           {"evaluation_report": "evaluation.md", "fairness_report": "fairness_report.html"})
    evaluator = EvaluatorConfig.model_validate({"min_slice_size": MIN_SLICE_SIZE, "gates": gate_list})
    lines: list[str] = []
    figures = execute({"examples": examples, "model": model, "baseline": _baseline_record(folder, baseline)},
                      outputs, {"evaluator": evaluator, "features": features, "beam": BeamConfig()}, lines.append)
    blessing = read_json(os.path.join(outputs["blessing"], BLESSING_FILE))
    summary = read_json(os.path.join(outputs["evaluation"], EVALUATION_SUMMARY_FILE))
    return {"figures": figures, "outputs": outputs, "blessing": blessing, "summary": summary, "progress": lines,
            "rows": {r["slice"]: r for r in summary["slices"]},
            "baseline_rows": {r["slice"]: r for r in summary["baseline_slices"] or []}}


def _features(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``group`` (40% in b) of ROWS examples."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.5, 1.5, ROWS), np.where(rng.random(ROWS) < 0.4, "b", "a")


def _checks(result: dict, index: int) -> list[dict]:
    return [c for c in result["blessing"]["checks"] if c["gate"].startswith(f"gates[{index}] ")]


# --- multiclass -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("multiclass")
    x, group = _features(7)
    rng = np.random.default_rng(17)
    truth = tm.multiclass_scores(x, group)  # the labels follow the baseline's (unshifted) probabilities
    labels = np.array([rng.choice(3, p=p) for p in truth])
    examples = str(folder / "examples")
    tm.write_examples_artifact(examples, {"x": list(x), "group": list(group),
                                          "tier": [tm.CLASSES[i] for i in labels]}, "tier", "multiclass")
    candidate = tm.save_multiclass_model(str(folder / "candidate"), shift=1.5)  # leans to high for group b
    baseline = tm.save_multiclass_model(str(folder / "baseline"))
    result = _execute(folder, examples, candidate, baseline, MULTICLASS, MULTICLASS_GATES)
    return {**result, "x": x, "group": group, "labels": labels, "candidate": candidate, "baseline": baseline,
            "scores": tm.multiclass_scores(x, group, shift=1.5), "baseline_scores": truth}


def _log_loss(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(scores[np.arange(len(labels)), labels], 1e-7, 1))))


def _per_class(labels: np.ndarray, predicted: np.ndarray, c: int) -> dict[str, float]:
    """One-vs-rest figures of class ``c``; a precision with no prediction of ``c`` is 0, as in a macro
    average (the classes the tests compare all have predictions overall)."""
    tp = np.sum((predicted == c) & (labels == c))
    precision = tp / np.sum(predicted == c) if np.any(predicted == c) else 0.0
    recall = tp / np.sum(labels == c)
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "positive_rate": np.mean(predicted == c),
            "false_negative_rate": np.sum((labels == c) & (predicted != c)) / np.sum(labels == c)}


def test_multiclass_figures_match_numpy(multiclass):
    labels, scores = multiclass["labels"], multiclass["scores"]
    predicted = scores.argmax(axis=1)
    overall = multiclass["rows"]["overall"]["metrics"]
    assert overall["example_count"] == ROWS
    assert overall["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
    top_two = np.argsort(-scores, axis=1)[:, :2]
    assert overall["top_k_accuracy"] == pytest.approx(np.mean((top_two == labels[:, None]).any(axis=1)), abs=1e-6)
    assert overall["log_loss"] == pytest.approx(_log_loss(scores, labels), abs=1e-4)
    by_class = [_per_class(labels, predicted, c) for c in range(3)]
    for c, name in enumerate(tm.CLASSES):
        for figure in ("precision", "recall", "f1", "positive_rate", "false_negative_rate"):
            assert overall[f"{figure}[{name}]"] == pytest.approx(by_class[c][figure], abs=1e-9), (figure, name)
    for figure in ("precision", "recall", "f1"):
        assert overall[f"macro_{figure}"] == pytest.approx(np.mean([b[figure] for b in by_class]), abs=1e-9)
        assert overall[f"micro_{figure}"] == pytest.approx(overall["accuracy"], abs=1e-6)
    for value in ("a", "b"):
        rows = multiclass["group"] == value
        macro = np.mean([_per_class(labels[rows], predicted[rows], c)["f1"] for c in range(3)])
        assert multiclass["rows"][f"group={value}"]["metrics"]["macro_f1"] == pytest.approx(macro, abs=1e-9)
    matrix = [[int(np.sum((labels == a) & (predicted == p))) for p in range(3)] for a in range(3)]
    assert multiclass["summary"]["classes"] == list(tm.CLASSES)
    assert multiclass["summary"]["confusion_matrix"] == matrix
    assert multiclass["summary"]["task"] == "multiclass"


def test_multiclass_gates_block_with_their_slice_value_and_bound(multiclass):
    labels, scores, group = multiclass["labels"], multiclass["scores"], multiclass["group"]
    predicted = scores.argmax(axis=1)
    figures = multiclass["figures"]
    assert figures["blessed"] is False
    assert figures["eval_accuracy"] == round(float(np.mean(predicted == labels)), 4)
    assert set(figures) >= {"eval_accuracy", "eval_macro_f1", "eval_log_loss", "eval_top_k_accuracy"}
    [accuracy] = _checks(multiclass, 0)
    assert (accuracy["slice"], accuracy["metric"], accuracy["bound"], accuracy["status"]) == (
        "overall", "accuracy", ">= 0.99", gates.FAIL)
    assert accuracy["value"] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
    assert {c["slice"]: c["status"] for c in _checks(multiclass, 1)} == {"group=a": gates.PASS, "group=b": gates.PASS}
    # positive rate of class high, one-vs-rest: group b leans to it, TFMA's cross-slice threshold fails the gap
    rates = {v: np.mean(predicted[group == v] == 2) for v in ("a", "b")}
    assert abs(rates["b"] - rates["a"]) > 0.05
    [gap] = _checks(multiclass, 2)
    assert gap["metric"] == "positive_rate[high] gap" and gap["bound"] == "<= 0.05"
    assert gap["value"] == pytest.approx(abs(rates["b"] - rates["a"]), abs=1e-9)
    assert (gap["status"], gap["decided_by"]) == (gates.FAIL, gates.TFMA)
    assert gap["slice"] == "group=a vs group=b" and gap["gate"].startswith("gates[2] fairness positive_rate[high]")
    [ratio] = _checks(multiclass, 3)
    fnr = {v: _per_class(labels[group == v], predicted[group == v], 0)["false_negative_rate"] for v in ("a", "b")}
    assert ratio["value"] == pytest.approx(min(fnr.values()) / max(fnr.values()), abs=1e-9)
    assert (ratio["status"], ratio["decided_by"]) == (gates.PASS, gates.SLUICEWAY)
    # log loss: lower is better, the candidate may not rise above the serving model's
    [loss] = _checks(multiclass, 4)
    candidate, served = _log_loss(scores, labels), _log_loss(multiclass["baseline_scores"], labels)
    assert loss["value"] == pytest.approx(candidate, abs=1e-4) and loss["baseline"] == pytest.approx(served, abs=1e-4)
    assert loss["status"] == (gates.FAIL if candidate > served else gates.PASS) and loss["bound"].startswith("<= ")
    [top_k] = _checks(multiclass, 5)
    assert top_k["metric"] == "top_k_accuracy (k=2)" and top_k["status"] == gates.PASS
    blocked = {c["gate"][:8] for c in multiclass["blessing"]["blocking"]}
    assert blocked == {"gates[0]", "gates[2]"} | ({"gates[4]"} if candidate > served else set())
    shown = figures["blocked_by"].splitlines()  # the table sluiceway run prints
    assert shown[0] == f"the model is not pushed: {len(blocked)} of 7 gate checks failed:"
    [row] = [line for line in shown if line.startswith("gates[2] fairness positive_rate[high]")]
    assert "group=a vs group=b" in row and f"{gap['value']:.4f}" in row and "<= 0.05" in row


def test_multiclass_reports_and_kubeflow_get_the_classes_and_the_confusion_matrix(multiclass):
    from components.evaluator.core import log_classification_metrics

    with open(multiclass["outputs"]["evaluation_report"], encoding="utf-8") as handle:
        text = handle.read()
    per_class = markdown_rows(text[text.index("## Per class"):])
    assert [r["class"] for r in per_class] == list(tm.CLASSES)
    overall = multiclass["rows"]["overall"]["metrics"]
    assert per_class[2]["precision"] == f"{overall['precision[high]']:.4f}"
    matrix = markdown_rows(text[text.index("## Confusion matrix"):])
    assert [int(matrix[0][c]) for c in tm.CLASSES] == multiclass["summary"]["confusion_matrix"][0]
    with open(multiclass["outputs"]["fairness_report"], encoding="utf-8") as handle:
        page = handle.read()
    assert "aria-label='positive_rate[high] by group'" in page and "Confusion matrix (overall)" in page

    class Logged:
        def __init__(self):
            self.calls = []

        def log_roc_curve(self, *args):
            self.calls.append(("roc", args))

        def log_confusion_matrix(self, categories, matrix):
            self.calls.append(("confusion", categories, matrix))

    logged = Logged()
    log_classification_metrics(multiclass["outputs"], logged)
    assert logged.calls == [("confusion", list(tm.CLASSES), multiclass["summary"]["confusion_matrix"])]


def test_a_serving_model_of_another_task_or_other_classes_is_no_baseline(multiclass, regression, tmp_path):
    from components.evaluator.core import _baseline_problem

    assert _baseline_problem(multiclass["baseline"], MULTICLASS, list(tm.CLASSES)) is None
    other_task = _baseline_problem(regression["baseline"], MULTICLASS, list(tm.CLASSES))
    assert other_task.startswith("it is not a multiclass model of the label 'tier'")
    renamed = tm.save_multiclass_model(str(tmp_path / "renamed"), classes=("low", "medium", "high"))
    assert "its classes (low, medium, high) are not the candidate's (low, mid, high)" in _baseline_problem(
        renamed, MULTICLASS, list(tm.CLASSES))
    assert _baseline_problem(multiclass["baseline"], REGRESSION, []).startswith("it is not a regression model")


# --- regression -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def regression(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("regression")
    x, group = _features(8)
    labels = 3.0 * x + 10.0 + np.random.default_rng(18).normal(0, 1, ROWS)
    examples = str(folder / "examples")
    tm.write_examples_artifact(examples, {"x": list(x), "group": list(group), "rate": list(labels)}, "rate",
                               "regression")
    candidate = tm.save_regression_model(str(folder / "candidate"), offset=1.0)  # over-predicts group b
    baseline = tm.save_regression_model(str(folder / "baseline"), slope=2.5)
    result = _execute(folder, examples, candidate, baseline, REGRESSION, REGRESSION_GATES)
    # the tf.Example holds float32 values: so do the labels TFMA reads
    labels = labels.astype(np.float32).astype(np.float64)
    x = x.astype(np.float32).astype(np.float64)
    return {**result, "x": x, "group": group, "labels": labels, "candidate": candidate, "baseline": baseline,
            "predictions": tm.regression_predictions(x, group, offset=1.0),
            "baseline_predictions": tm.regression_predictions(x, group, slope=2.5)}


def _regression_figures(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    error = labels - predictions
    return {"mse": np.mean(error ** 2), "rmse": np.sqrt(np.mean(error ** 2)), "mae": np.mean(np.abs(error)),
            "mape": 100 * np.mean(np.abs(error / labels)),
            "r2": 1 - np.sum(error ** 2) / np.sum((labels - labels.mean()) ** 2),
            "mean_prediction": predictions.mean(), "mean_label": labels.mean(),
            "calibration": predictions.mean() / labels.mean()}


def test_regression_figures_match_numpy_r2_included(regression):
    labels, predictions, group = regression["labels"], regression["predictions"], regression["group"]
    for name, rows in (("overall", np.ones(ROWS, bool)), ("group=a", group == "a"), ("group=b", group == "b")):
        expected = _regression_figures(labels[rows], predictions[rows])
        shown = regression["rows"][name]["metrics"]
        for figure, value in expected.items():
            assert shown[figure] == pytest.approx(value, rel=1e-5), (name, figure)
    served = _regression_figures(labels, regression["baseline_predictions"])
    assert regression["baseline_rows"]["overall"]["metrics"]["r2"] == pytest.approx(served["r2"], rel=1e-5)
    buckets = regression["summary"]["calibration_plot"]
    assert sum(b["examples"] for b in buckets) == ROWS
    for bucket in buckets:  # bands of predictions over the labels' range, outside it the two open ones
        assert bucket["from"] <= bucket["mean_prediction"] <= bucket["to"]
        assert labels.min() - 1e-4 <= bucket["from"] or bucket["from"] == -float("inf")
        assert bucket["to"] <= labels.max() + 1e-4 or bucket["to"] == float("inf")
    total = sum(b["mean_prediction"] * b["examples"] for b in buckets)
    assert total / ROWS == pytest.approx(predictions.mean(), rel=1e-5)


def test_regression_gates_block_with_their_slice_value_and_bound(regression):
    labels, predictions, group = regression["labels"], regression["predictions"], regression["group"]
    figures = regression["figures"]
    expected = _regression_figures(labels, predictions)
    assert figures["eval_rmse"] == round(float(expected["rmse"]), 4)
    assert figures["eval_r2"] == round(float(expected["r2"]), 4)
    assert set(figures) >= {"eval_rmse", "eval_mae", "eval_r2", "eval_mean_prediction", "eval_mean_label"}
    assert figures["blessed"] is False
    per_group = {c["slice"]: c for c in _checks(regression, 0)}
    assert set(per_group) == {"group=a", "group=b"}
    for value in ("a", "b"):
        rmse = _regression_figures(labels[group == value], predictions[group == value])["rmse"]
        check = per_group[f"group={value}"]
        assert check["value"] == pytest.approx(rmse, rel=1e-5) and check["bound"] == "<= 0.5"
        assert check["status"] == (gates.FAIL if rmse > 0.5 else gates.PASS)
    [r2] = _checks(regression, 1)
    assert (r2["metric"], r2["status"], r2["decided_by"]) == ("r2", gates.PASS, gates.TFMA)
    assert r2["value"] == pytest.approx(expected["r2"], rel=1e-5)
    means = {v: predictions[group == v].mean() for v in ("a", "b")}
    [gap] = _checks(regression, 2)
    assert gap["metric"] == "mean_prediction gap" and gap["value"] == pytest.approx(abs(means["b"] - means["a"]),
                                                                                   rel=1e-5)
    assert gap["status"] == (gates.FAIL if abs(means["b"] - means["a"]) > 0.3 else gates.PASS)
    [ratio] = _checks(regression, 3)
    maes = [_regression_figures(labels[group == v], predictions[group == v])["mae"] for v in ("a", "b")]
    assert ratio["value"] == pytest.approx(min(maes) / max(maes), rel=1e-5) and ratio["decided_by"] == gates.SLUICEWAY
    served = _regression_figures(labels, regression["baseline_predictions"])
    [r2_change] = _checks(regression, 4)
    assert r2_change["baseline"] == pytest.approx(served["r2"], rel=1e-5)
    assert r2_change["status"] == (gates.FAIL if expected["r2"] < served["r2"] else gates.PASS)
    [mae_change] = _checks(regression, 5)
    assert mae_change["bound"].startswith("<= ") and mae_change["status"] == (
        gates.FAIL if expected["mae"] > served["mae"] else gates.PASS)
    failed = {(c["gate"][:8], c["slice"]) for c in regression["blessing"]["blocking"]}
    assert ("gates[0]", "group=b") in failed


def test_regression_reports_show_mean_prediction_against_mean_label(regression):
    from components.evaluator.core import log_classification_metrics

    with open(regression["outputs"]["evaluation_report"], encoding="utf-8") as handle:
        text = handle.read()
    overall = markdown_rows(text)[0]
    assert overall["mean_prediction"].split()[0] == f"{regression['rows']['overall']['metrics']['mean_prediction']:.4f}"
    assert overall["mean_label"].split()[0] == f"{regression['rows']['overall']['metrics']['mean_label']:.4f}"
    low, high = regression["rows"]["overall"]["intervals"]["mae"]
    assert low < regression["rows"]["overall"]["metrics"]["mae"] < high
    buckets = markdown_rows(text[text.index("## Calibration"):])
    assert sum(int(b["examples"].replace(",", "")) for b in buckets) == ROWS
    with open(regression["outputs"]["fairness_report"], encoding="utf-8") as handle:
        page = handle.read()
    assert "aria-label='mean_prediction by group'" in page and "aria-label='mae by group'" in page
    assert "<th>baseline rmse</th>" in page

    class Nothing:
        def __getattr__(self, name):
            raise AssertionError(f"a regression model logs no ClassificationMetrics ({name})")

    log_classification_metrics(regression["outputs"], Nothing())
