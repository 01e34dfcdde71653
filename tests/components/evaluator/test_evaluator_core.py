"""The Evaluator's core on a model trained on a few hundred rows: TFMA's per-slice rows checked
against counts and scores the test computes itself from the raw eval split, the files it writes,
the gate checks built on TFMA's verdict, and ``execute``'s verdict."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pytest

from components.evaluator import gates
from pipeline.config import BeamConfig, EvaluatorConfig, PusherConfig
from pipeline.specs import BLESSING_FILE, EVALUATION_SUMMARY_FILE
from tests.components.conftest import features_config, make_outputs, markdown_rows, read_json

pytestmark = pytest.mark.slow

MIN_SLICE_SIZE = 15
AGE_BANDS = [30, 50]
IMPOSSIBLE_AUC, EASY_AUC, EASY_ACCURACY, MIN_RATIO = 0.999, 0.05, 0.05, 0.5
GATES = [
    {"metric": "auc", "min": IMPOSSIBLE_AUC},
    {"metric": "auc", "min": EASY_AUC},
    {"metric": "accuracy", "min": EASY_ACCURACY, "per": ["race"]},
    {"fairness": "positive_rate", "feature": "sex", "min_ratio": MIN_RATIO},
    {"metric": "accuracy", "min": EASY_ACCURACY, "per": ["age"]},  # a banded numeric feature
]
# default slices (each sensitive feature and their cross), plus the age bands the last gate needs
EVALUATOR = EvaluatorConfig.model_validate({"min_slice_size": MIN_SLICE_SIZE, "bands": {"age": AGE_BANDS},
                                            "gates": GATES})


def _value(example, name: str):
    feature = example.features.feature[name]
    return feature.bytes_list.value[0].decode() if feature.bytes_list.value else feature.float_list.value[0]


def _band(age: float) -> str:
    if age < AGE_BANDS[0]:
        return f"<{AGE_BANDS[0]}"
    if age < AGE_BANDS[1]:
        return f"[{AGE_BANDS[0]},{AGE_BANDS[1]})"
    return f">={AGE_BANDS[1]}"


@pytest.fixture(scope="module")
def eval_split(served_eval) -> dict:
    """The raw eval split as the test sees it: each example's sex, race, age band, label and the
    serving model's score."""
    import tensorflow as tf

    examples = [tf.train.Example.FromString(r) for r in served_eval["records"]]
    return {"records": served_eval["records"], "sex": [_value(e, "sex") for e in examples],
            "race": [_value(e, "race") for e in examples], "age": [_band(_value(e, "age")) for e in examples],
            "label": np.array([_value(e, "approved") == "yes" for e in examples]),
            "score": served_eval["scores"].ravel()}


@pytest.fixture(scope="module")
def evaluated(trained_model, tmp_path_factory) -> dict:
    from components.evaluator.core import run_evaluator

    folder = tmp_path_factory.mktemp("evaluator")
    evaluation, report = str(folder / "evaluation"), str(folder / "report" / "evaluation.md")
    os.makedirs(evaluation)
    result = run_evaluator(trained_model.pipeline.examples, trained_model.model, evaluation, report, EVALUATOR,
                           features_config(), BeamConfig())
    return {**result, "evaluation": evaluation, "report": report}


def _slice_values(row: dict) -> dict[str, str]:
    return dict(part.split("=", 1) for part in row["slice"].split(", "))


def _sizes(rows: list[dict], features: list[str]) -> dict[tuple, float]:
    return {tuple(_slice_values(r)[f] for f in features): r["size"] for r in rows if sorted(r["features"]) == features}


def test_rows_per_slice_count_the_eval_splits_examples(evaluated, eval_split):
    rows = evaluated["rows"]
    assert rows[0]["slice"] == "overall" and rows[0]["features"] == []
    assert rows[0]["size"] == len(eval_split["records"])
    for features in (["sex"], ["race"], ["age"], ["race", "sex"]):
        expected = Counter(zip(*(eval_split[f] for f in features)))
        assert _sizes(rows, features) == expected, features
        assert sum(expected.values()) == rows[0]["size"]
    assert evaluated["baseline_rows"] is None


def test_slices_below_min_slice_size_are_flagged_insufficient(evaluated):
    rows = evaluated["rows"]
    assert [r["insufficient"] for r in rows] == [r["size"] < MIN_SLICE_SIZE for r in rows]
    # the seeded data has both kinds among the single-feature slices, so the flag is really tested
    race = [r for r in rows if r["features"] == ["race"]]
    assert any(r["insufficient"] for r in race) and not all(r["insufficient"] for r in race)


def test_metrics_agree_with_the_serving_models_scores(evaluated, eval_split):
    from sklearn.metrics import roc_auc_score

    rows = {r["slice"]: r for r in evaluated["rows"]}
    label, predicted = eval_split["label"], eval_split["score"] > 0.5
    overall = rows["overall"]["metrics"]
    assert overall["accuracy"] == pytest.approx(np.mean(predicted == label), abs=1e-6)
    assert overall["recall"] == pytest.approx(predicted[label].mean(), abs=1e-6)
    assert overall["auc"] == pytest.approx(roc_auc_score(label, eval_split["score"]), abs=0.01)
    sex = np.array(eval_split["sex"])
    for value in set(eval_split["sex"]):
        assert rows[f"sex={value}"]["metrics"]["positive_rate@0.5"] == pytest.approx(
            predicted[sex == value].mean(), abs=1e-6)


def test_metrics_json_and_the_markdown_table_show_every_slice(evaluated):
    summary = read_json(os.path.join(evaluated["evaluation"], EVALUATION_SUMMARY_FILE))
    # (through JSON text: a rate with no examples to divide by is NaN, and NaN != NaN)
    assert json.dumps(summary["slices"], sort_keys=True) == json.dumps(evaluated["rows"], sort_keys=True)
    assert summary["split"] == "eval" and summary["min_slice_size"] == MIN_SLICE_SIZE
    with open(evaluated["report"], encoding="utf-8") as handle:
        table = markdown_rows(handle.read())
    assert [t["slice"] for t in table] == [r["slice"] for r in evaluated["rows"]]
    for shown, row in zip(table, evaluated["rows"]):
        assert shown["examples"] == f"{row['size']:,.0f}" + (" (insufficient data)" if row["insufficient"] else "")
        if "auc" in row["metrics"]:
            assert shown["auc"].split()[0] == f"{row['metrics']['auc']:.4f}"
    assert table[0]["auc"].split()[0] == f"{evaluated['rows'][0]['metrics']['auc']:.4f}"


def test_gate_checks_follow_the_values_and_only_failures_block(evaluated):
    rows = {r["slice"]: r for r in evaluated["rows"]}
    checks = gates.evaluate(EVALUATOR, evaluated["rows"], None, evaluated["validation"])
    by_gate = {i: [c for c in checks if c.gate.startswith(f"gates[{i}] ")] for i in range(len(GATES))}
    auc = rows["overall"]["metrics"]["auc"]
    assert auc < IMPOSSIBLE_AUC
    [impossible] = by_gate[0]
    assert (impossible.slice, impossible.value, impossible.bound, impossible.status) == (
        "overall", auc, f">= {IMPOSSIBLE_AUC:g}", gates.FAIL)
    [easy] = by_gate[1]
    assert easy.status == gates.PASS and easy.value == auc
    for index, feature in ((2, "race"), (4, "age")):
        slices = [r for r in evaluated["rows"] if r["features"] == [feature]]
        assert sorted(c.slice for c in by_gate[index]) == sorted(r["slice"] for r in slices), feature
        for check in by_gate[index]:
            row = rows[check.slice]
            expected = (gates.INSUFFICIENT if row["insufficient"]
                        else gates.PASS if row["metrics"]["accuracy"] >= EASY_ACCURACY else gates.FAIL)
            assert check.status == expected, check
    rates = [rows[f"sex={v}"]["metrics"]["positive_rate@0.5"] for v in ("female", "male")]
    [ratio] = by_gate[3]
    assert ratio.value == pytest.approx(min(rates) / max(rates))
    assert ratio.status == (gates.PASS if ratio.value >= MIN_RATIO else gates.FAIL)
    assert ratio.decided_by == gates.SLUICEWAY
    failed = [c for c in checks if c.status == gates.FAIL]
    assert gates.blocking(checks, EVALUATOR) == failed
    insufficient = [c for c in checks if c.status == gates.INSUFFICIENT]
    assert insufficient  # race groups under MIN_SLICE_SIZE
    strict = EVALUATOR.model_copy(update={"insufficient_data": "block"})
    assert gates.blocking(checks, strict) == [c for c in checks if c in failed or c in insufficient]


def _execute(trained_model, folder, gate_list: list[dict]) -> tuple[dict, dict]:
    from components.evaluator.core import execute

    outputs = make_outputs(str(folder), ("evaluation", "blessing"),
                           {"evaluation_report": "evaluation.md", "fairness_report": "fairness_report.html"})
    evaluator = EvaluatorConfig.model_validate({"min_slice_size": MIN_SLICE_SIZE, "gates": gate_list})
    config = {"evaluator": evaluator, "features": features_config(), "beam": BeamConfig(), "pusher": PusherConfig()}
    figures = execute({"examples": trained_model.pipeline.examples, "model": trained_model.model}, outputs, config)
    return figures, outputs


def test_execute_returns_a_blocked_verdict_as_a_value(trained_model, tmp_path):
    figures, outputs = _execute(trained_model, tmp_path, [{"metric": "auc", "min": IMPOSSIBLE_AUC}])
    assert figures["blessed"] is False
    blessing = read_json(os.path.join(outputs["blessing"], BLESSING_FILE))
    assert blessing["blessed"] is False
    overall = read_json(os.path.join(outputs["evaluation"], EVALUATION_SUMMARY_FILE))["slices"][0]
    [failed] = [c for c in blessing["checks"] if c["status"] == gates.FAIL]
    assert (failed["metric"], failed["slice"], failed["bound"]) == ("auc", "overall", f">= {IMPOSSIBLE_AUC:g}")
    assert failed["value"] == pytest.approx(overall["metrics"]["auc"]) and failed["value"] < IMPOSSIBLE_AUC
    assert any(isinstance(v, str) and "gates[0]" in v and f"{IMPOSSIBLE_AUC:g}" in v for v in figures.values())


def test_execute_blesses_a_model_that_passes_every_gate(trained_model, eval_split, tmp_path):
    figures, outputs = _execute(trained_model, tmp_path, [
        {"metric": "auc", "min": EASY_AUC}, {"fairness": "positive_rate", "feature": "sex", "min_ratio": 0.01}])
    assert figures["blessed"] is True
    blessing = read_json(os.path.join(outputs["blessing"], BLESSING_FILE))
    assert blessing["blessed"] is True
    assert [c["status"] for c in blessing["checks"]] == [gates.PASS, gates.PASS]
    overall = read_json(os.path.join(outputs["evaluation"], EVALUATION_SUMMARY_FILE))["slices"][0]
    assert figures["eval_auc"] == round(overall["metrics"]["auc"], 4)
    assert figures["examples"] == len(eval_split["records"])
    assert os.path.getsize(outputs["fairness_report"]) > 0


def test_execute_names_a_group_the_data_holds_that_the_eval_split_does_not(trained_model, tmp_path):
    """ExampleGen records each sensitive feature's groups per split; a group with train rows and no
    eval rows is a check of its own ("no eval examples"), which blocks under insufficient_data: block."""
    import dataclasses
    import shutil

    from pipeline.specs import SPLIT_INFO_FILE

    examples = str(tmp_path / "examples")
    shutil.copytree(trained_model.pipeline.examples, examples)
    info_path = os.path.join(examples, SPLIT_INFO_FILE)
    info = read_json(info_path)
    info["groups"]["sex"]["train"]["nonbinary"] = 7   # seen in train only
    with open(info_path, "w", encoding="utf-8") as handle:
        json.dump(info, handle)
    trained = dataclasses.replace(trained_model, pipeline=dataclasses.replace(trained_model.pipeline, examples=examples))
    gate = {"fairness": "positive_rate", "feature": "sex", "min_ratio": 0.01}
    figures, outputs = _execute(trained, tmp_path / "Evaluator", [gate])
    checks = read_json(os.path.join(outputs["blessing"], BLESSING_FILE))["checks"]
    [absent] = [c for c in checks if c["slice"] == "sex=nonbinary"]
    assert absent["status"] == gates.INSUFFICIENT
    assert absent["detail"] == "group sex=nonbinary has no eval examples: left out of the comparison"
    assert figures["blessed"] is True   # the default insufficient_data: report shows it without blocking


def _bootstrap_width(statistic, label: np.ndarray, score: np.ndarray, draws: int = 400) -> float:
    generator = np.random.default_rng(0)
    values = []
    for _ in range(draws):
        chosen = generator.integers(0, len(label), len(label))
        values.append(statistic(label[chosen], score[chosen]))
    low, high = np.quantile(values, [0.025, 0.975])
    return high - low


def test_every_slice_gets_intervals_as_wide_as_resampling_says_and_small_slices_are_flagged(evaluated, eval_split):
    from sklearn.metrics import roc_auc_score

    rows = evaluated["rows"]
    for row in rows:
        for key, (low, high) in row["intervals"].items():
            assert low <= row["metrics"][key] + 1e-9 and row["metrics"][key] <= high + 1e-9, (row["slice"], key)
    overall = rows[0]
    # the closed forms are as wide as a bootstrap of the eval split's examples says
    label, score = eval_split["label"].astype(int), eval_split["score"]
    auc_width = overall["intervals"]["auc"][1] - overall["intervals"]["auc"][0]
    assert 0.7 < auc_width / _bootstrap_width(roc_auc_score, label, score) < 1.4
    accuracy_width = overall["intervals"]["accuracy"][1] - overall["intervals"]["accuracy"][0]
    assert 0.7 < accuracy_width / _bootstrap_width(lambda y, s: np.mean((s >= 0.5) == y), label, score) < 1.4
    # a small slice's interval is visibly wider than the overall one, and flagged when too wide to judge
    smallest = min((r for r in rows if "auc" in r["intervals"] and 0 < r["metrics"]["auc"] < 1),
                   key=lambda r: r["size"])
    assert smallest["intervals"]["auc"][1] - smallest["intervals"]["auc"][0] > 2 * auc_width
    # a small slice the model separates perfectly still gets an interval that says it is uncertain
    for row in rows:
        if row["metrics"].get("auc") == 1.0 and "auc" in row["intervals"]:
            assert row["intervals"]["auc"][0] < 0.99
    assert any("auc" in r["wide"] for r in rows) and "auc" not in overall["wide"]
    summary = read_json(os.path.join(evaluated["evaluation"], EVALUATION_SUMMARY_FILE))
    assert summary["intervals"]["methods"]["auc"] == "hanley-mcneil"
    assert summary["intervals"]["methods"]["positive_rate@0.5"] == "wilson"
    with open(evaluated["report"], encoding="utf-8") as handle:
        text = handle.read()
    low, high = overall["intervals"]["auc"]
    assert markdown_rows(text)[0]["auc"] == f"{overall['metrics']['auc']:.4f} [{low:.4f}, {high:.4f}]"
    assert "too wide to judge" in text and "95% confidence interval" in text


def test_a_gate_judged_on_the_lower_bound_blocks_what_the_point_estimate_passes(evaluated):
    auc = evaluated["rows"][0]["metrics"]["auc"]
    low = evaluated["rows"][0]["intervals"]["auc"][0]
    bound = round((auc + low) / 2, 4)  # below the value, above the interval's lower bound
    judged = EvaluatorConfig.model_validate({"gates": [{"metric": "auc", "min": bound},
                                                       {"metric": "auc", "min": bound, "judge": "lower_bound"}]})
    on_value, on_bound = gates.evaluate(judged, evaluated["rows"], None, gates.TfmaValidation())
    assert on_value.status == gates.PASS and on_bound.status == gates.FAIL
    assert on_bound.judged == "lower bound" and on_bound.interval[0] == pytest.approx(low)


def test_the_attributions_name_every_raw_feature_overall_and_per_group(evaluated):
    found = read_json(os.path.join(evaluated["evaluation"], "attributions.json"))
    features = features_config()
    assert {f["feature"] for f in found["features"]} == set(features.numeric) | set(features.categorical)
    assert sum(f["share"] for f in found["features"]) == pytest.approx(1.0, abs=1e-3)
    assert set(found["slices"]) == set(features.sensitive) and set(found["sensitive"]) == set(features.sensitive)
    assert found == evaluated["attributions"]
