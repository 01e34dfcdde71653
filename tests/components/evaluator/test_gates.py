"""Gates as TFMA thresholds: the translation, TFMA's verdict read back, and the checks built on it."""

from __future__ import annotations

import pytest

from components.evaluator import gates
from components.evaluator.core import read_validation
from components.evaluator.eval_config import band_labels, build_eval_config, slicing_spec
from pipeline.config import EvaluatorConfig, FeaturesConfig
from pipeline.errors import ConfigError
from pipeline.loader import parse_config
from tests.conftest import pipeline_yaml

FEATURES = FeaturesConfig(label="approved", positive="yes", numeric=["age"], categorical=["sex", "race"],
                          sensitive=["sex", "race"])
GATES = [
    {"metric": "auc", "min": 0.75},
    {"metric": "accuracy", "min": 0.6, "max": 0.99, "per": ["sex"]},
    {"fairness": "false_positive_rate", "feature": "race", "max_gap": 0.1},
    {"fairness": "positive_rate", "feature": "sex", "max_gap": 0.2, "reference": "male"},
    {"fairness": "positive_rate", "feature": "sex", "min_ratio": 0.8},
    {"no_regression": "auc", "max_drop": 0.01},
    {"no_regression": "recall", "max_drop": 0.05, "relative": True, "per": ["sex"]},
]
EVALUATOR = EvaluatorConfig.model_validate({"min_slice_size": 30, "gates": GATES, "bands": {"age": [30, 50]},
                                            "slices": [["sex"], ["race"], ["age"], ["sex", "age"]]})


def _config(with_baseline: bool):
    return build_eval_config(EVALUATOR, FEATURES, "approved_binary", "transform_label", "scores", with_baseline)


def _gate_metric(config, name: str):
    [metric] = [m for m in config.metrics_specs[0].metrics if f'"name": "{name}"' in m.config]
    return metric


def test_each_gate_becomes_thresholds_on_a_metric_of_its_own():
    config = _config(with_baseline=True)
    overall_auc = _gate_metric(config, "gate0_auc")
    assert overall_auc.class_name == "AUC"
    [threshold] = overall_auc.per_slice_thresholds
    assert threshold.threshold.value_threshold.lower_bound.value == 0.75
    assert not threshold.threshold.value_threshold.HasField("upper_bound")
    assert list(threshold.slicing_specs[0].feature_keys) == []  # the overall slice only
    per_sex = _gate_metric(config, "gate1_accuracy").per_slice_thresholds[0]
    assert list(per_sex.slicing_specs[0].feature_keys) == ["sex"]
    assert per_sex.threshold.value_threshold.upper_bound.value == 0.99
    # max - min across every group: all pairs of race groups within +/- 0.1
    fpr = _gate_metric(config, "gate2_false_positive_rate")
    assert fpr.class_name == "FallOut" and '"thresholds": [0.5]' in fpr.config
    [cross] = fpr.cross_slice_thresholds
    assert list(cross.cross_slicing_specs[0].baseline_spec.feature_keys) == ["race"]
    assert cross.threshold.value_threshold.lower_bound.value == pytest.approx(-0.1)
    # against a reference group
    reference = _gate_metric(config, "gate3_positive_rate").cross_slice_thresholds[0].cross_slicing_specs[0]
    assert dict(reference.baseline_spec.feature_values) == {"sex": "male"}
    assert len(config.cross_slicing_specs) == 2  # TFMA computes the pairs only when asked to
    # a ratio has no TFMA threshold: sluiceway checks it from the per-slice values
    ratio = _gate_metric(config, "gate4_positive_rate")
    assert not ratio.cross_slice_thresholds and not ratio.per_slice_thresholds
    regression = _gate_metric(config, "gate5_auc").per_slice_thresholds[0].threshold.change_threshold
    assert regression.absolute.value == pytest.approx(-0.01)
    relative = _gate_metric(config, "gate6_recall").per_slice_thresholds[0].threshold.change_threshold
    assert relative.relative.value == pytest.approx(-0.05)
    assert [m.is_baseline for m in config.model_specs] == [False, True]


def test_without_a_baseline_there_is_no_change_threshold_and_one_model():
    config = _config(with_baseline=False)
    assert len(config.model_specs) == 1
    assert not _gate_metric(config, "gate5_auc").per_slice_thresholds


def test_banded_numerics_are_sliced_with_tfmas_sql_slicing():
    assert band_labels([30, 50]) == ["<30", "[30,50)", ">=50"]
    spec = slicing_spec(["sex", "age"], {"age": [30, 50]})
    assert spec.slice_keys_sql == ("SELECT STRUCT(sex, CASE WHEN age < 30.0 THEN '<30' WHEN age < 50.0 THEN "
                                   "'[30,50)' ELSE '>=50' END AS age) FROM example.sex, example.age")
    assert list(slicing_spec(["race"], {"age": [30]}).feature_keys) == ["race"]
    sql = [s.slice_keys_sql for s in _config(with_baseline=False).slicing_specs if s.slice_keys_sql]
    assert len(sql) == 2  # [age] and [sex, age]


def _validation_result():
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import validation_result_pb2
    from tensorflow_model_analysis.slicer import slicer_lib as slicer

    result = validation_result_pb2.ValidationResult(validation_ok=False)
    female = result.metric_validations_per_slice.add()
    female.slice_key.CopyFrom(slicer.serialize_slice_key((("sex", "female"),)))
    failure = female.failures.add()
    failure.metric_key.name = "gate1_accuracy"
    failure.metric_value.double_value.value = 0.55
    diff = female.failures.add()
    diff.metric_key.name = "gate6_recall"
    diff.metric_key.is_diff = True
    pair = result.metric_validations_per_slice.add()
    pair.cross_slice_key.CopyFrom(slicer.serialize_cross_slice_key(((("race", "group_a"),), (("race", "group_b"),))))
    pair.failures.add().metric_key.name = "gate2_false_positive_rate"
    # TFMA 0.47 lists validated cross-slicing specs as missing: not a missing slice
    result.missing_cross_slices.add().baseline_spec.feature_keys.append("race")
    result.missing_slices.add().feature_keys.append("sex")
    config = build_eval_config(EvaluatorConfig.model_validate({"gates": GATES}), FEATURES, "approved_binary",
                               "transform_label", "scores", True)
    assert tfma  # imported for the proto registry
    return read_validation(result, config)


def test_tfmas_failures_are_read_back_per_gate_and_slice():
    validation = _validation_result()
    assert validation.failures[1] == {"sex=female": "value 0.55"}
    assert list(validation.diff_failures[6]) == ["sex=female"]
    assert list(validation.failures[2]) == [("race=group_a", "race=group_b")]
    # the missing [sex] spec belongs to the gates whose thresholds use it; no cross-slice entry
    assert set(validation.missing) == {1, 6}


def _row(name, features, size, **metrics):
    return {"slice": name, "features": features, "size": size, "insufficient": size < 30, "metrics": metrics}


ROWS = [_row("overall", [], 3000, auc=0.8, accuracy=0.7, recall=0.6),
        _row("sex=female", ["sex"], 1400, accuracy=0.55, recall=0.5, **{"positive_rate@0.5": 0.30}),
        _row("sex=male", ["sex"], 1580, accuracy=0.8, recall=0.7, **{"positive_rate@0.5": 0.40}),
        _row("sex=other", ["sex"], 20, accuracy=0.2, recall=0.1, **{"positive_rate@0.5": 0.9}),
        _row("race=group_a", ["race"], 900, **{"false_positive_rate@0.5": 0.10}),
        _row("race=group_b", ["race"], 900, **{"false_positive_rate@0.5": 0.25}),
        _row("race=group_c", ["race"], 900, **{"false_positive_rate@0.5": 0.15})]


def test_checks_take_tfmas_verdict_and_report_small_slices_as_insufficient():
    validation = gates.TfmaValidation(failures={1: {"sex=female": "value 0.55"},
                                                2: {("race=group_a", "race=group_b"): "value -0.15"}})
    evaluator = EvaluatorConfig.model_validate({"gates": GATES[:5]})
    checks = gates.evaluate(evaluator, ROWS, None, validation)
    by_gate = {}
    for check in checks:
        by_gate.setdefault(int(check.gate[6]), []).append(check)
    assert [c.status for c in by_gate[0]] == ["pass"]
    accuracy = {c.slice: c.status for c in by_gate[1]}
    assert accuracy == {"sex=female": "fail", "sex=male": "pass", "sex=other": "insufficient data"}
    # max - min: one check, low vs high group, failed because TFMA failed a pair
    [gap] = by_gate[2]
    assert gap.slice == "race=group_a vs race=group_b" and gap.status == "fail" and gap.decided_by == "TFMA"
    assert gap.value == pytest.approx(0.15)
    reference = {c.slice: c.status for c in by_gate[3]}
    assert reference == {"sex=other": "insufficient data", "sex=female vs sex=male": "pass"}
    ratio = next(c for c in by_gate[4] if c.status != "insufficient data")
    assert ratio.decided_by == "sluiceway" and ratio.status == "fail" and ratio.value == pytest.approx(0.75)
    blocked = gates.blocking(checks, evaluator)
    assert {(c.gate[:8], c.slice) for c in blocked} == {("gates[1]", "sex=female"),
                                                        ("gates[2]", "race=group_a vs race=group_b"),
                                                        ("gates[4]", "sex=female vs sex=male")}


def test_regression_checks_wait_for_a_baseline_and_then_follow_tfmas_change_thresholds():
    evaluator = EvaluatorConfig.model_validate({"gates": [GATES[5]]})
    first = gates.evaluate(evaluator, ROWS, None, gates.TfmaValidation())
    assert [c.status for c in first] == ["no baseline"]
    baseline = [_row("overall", [], 3000, auc=0.85)]
    later = gates.evaluate(evaluator, ROWS, baseline, gates.TfmaValidation(diff_failures={0: {"overall": "x"}}))
    [check] = later
    assert check.status == "fail" and check.baseline == 0.85 and check.bound == ">= 0.8400 (baseline - max_drop)"


def test_a_gate_whose_slices_tfma_never_saw_fails():
    evaluator = EvaluatorConfig.model_validate({"gates": [GATES[1]]})
    checks = gates.evaluate(evaluator, [ROWS[0]], None, gates.TfmaValidation(missing={0: ["feature_keys: \"sex\""]}))
    [check] = checks
    assert check.status == "fail" and "no slice" in check.detail


def test_no_regression_on_calibration_checks_the_distance_from_one():
    evaluator = EvaluatorConfig.model_validate({"gates": [{"no_regression": "calibration", "max_drop": 0.02}]})
    baseline = [_row("overall", [], 3000, calibration=0.96)]  # 0.04 from 1.0

    def check(candidate: float):
        [found] = gates.evaluate(evaluator, [_row("overall", [], 3000, calibration=candidate)], baseline,
                                 gates.TfmaValidation())
        return found

    # higher is not better: 1.05 is 0.05 from 1.0, within 0.04 + 0.02
    assert check(1.05).status == "pass"
    # nor is it worse: 1.07 drifted 0.07 away, more than 0.04 + 0.02, though it rose
    assert check(1.07).status == "fail"
    assert check(0.93).status == "fail"  # as far below as 1.07 is above
    assert check(0.99).status == "pass"
    failed = check(1.07)
    assert failed.decided_by == "sluiceway" and failed.baseline == 0.96
    assert failed.bound.startswith("|calibration - 1| <= 0.0600")
    assert "distance from 1.0: 0.0700 vs baseline 0.0400" in failed.detail
    relative = EvaluatorConfig.model_validate({"gates": [{"no_regression": "calibration", "max_drop": 0.5,
                                                          "relative": True}]})
    [found] = gates.evaluate(relative, [_row("overall", [], 3000, calibration=1.07)], baseline, gates.TfmaValidation())
    assert found.status == "fail"  # 0.07 > 0.04 x 1.5


def test_calibration_regression_is_not_a_tfma_change_threshold():
    # TFMA's change thresholds know only higher or lower is better: none is set for calibration,
    # and TFMA's view of its slices does not decide the check
    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"no_regression": "calibration", "max_drop": 0.02, "per": ["sex"]}, {"no_regression": "auc"}]})
    config = build_eval_config(evaluator, FEATURES, "approved_binary", "transform_label", "scores", True)
    assert not _gate_metric(config, "gate0_calibration").per_slice_thresholds
    assert _gate_metric(config, "gate1_auc").per_slice_thresholds
    candidate = [dict(r, metrics={"calibration": 1.01}) for r in ROWS]
    baseline = [dict(r, metrics={"calibration": 1.0, "auc": 0.8}) for r in ROWS]
    checks = gates.evaluate(evaluator, candidate, baseline, gates.TfmaValidation(missing={0: ["feature_keys: \"sex\""]}))
    per_sex = {c.slice: (c.status, c.decided_by) for c in checks if c.gate.startswith("gates[0]")}
    assert per_sex == {"sex=female": ("pass", "sluiceway"), "sex=male": ("pass", "sluiceway"),
                       "sex=other": ("insufficient data", "sluiceway")}


def test_no_regression_on_example_count_is_a_config_error_at_its_path():
    text = pipeline_yaml("data.csv", extra="""\
        evaluator:
          gates:
            - {metric: example_count, min: 1000}
            - {no_regression: example_count, max_drop: 10}
            - {no_regression: calibration, max_drop: 0.01}
        """)
    with pytest.raises(ConfigError) as info:
        parse_config(text, "pipeline.yaml")
    [issue] = info.value.issues
    assert issue.path == "evaluator.gates[1].no_regression"
    assert issue.message.startswith("example_count cannot regress")
    assert "expected one of auc, accuracy, precision, recall, f1, calibration" in issue.message


def test_threshold_metrics_are_computed_and_gated_at_the_configured_decision_threshold():
    evaluator = EvaluatorConfig.model_validate({"decision_thresholds": [0.3, 0.5], "gates": [
        {"metric": "accuracy", "min": 0.6}, {"metric": "auc", "min": 0.7}, {"no_regression": "f1"},
        {"fairness": "positive_rate", "feature": "sex", "max_gap": 0.1, "threshold": 0.5}]})
    config = build_eval_config(evaluator, FEATURES, "approved_binary", "transform_label", "scores", True)
    by_class = {m.class_name: m.config for m in config.metrics_specs[0].metrics if '"name": "gate' not in m.config}
    # TFMA's classes default to 0.5: the configured threshold is passed to each
    assert by_class["BinaryAccuracy"] == '{"threshold": 0.3}'
    assert by_class["Precision"] == by_class["Recall"] == by_class["F1Score"] == '{"thresholds": [0.3]}'
    assert by_class["AUC"] == by_class["Calibration"] == ""
    assert '"threshold": 0.3' in _gate_metric(config, "gate0_accuracy").config
    assert '"thresholds": [0.3]' in _gate_metric(config, "gate2_f1").config
    assert '"thresholds": [0.5]' in _gate_metric(config, "gate3_positive_rate").config  # its own threshold
    checks = gates.evaluate(evaluator, ROWS, None, gates.TfmaValidation())
    assert {c.metric for c in checks if c.gate.startswith("gates[0]")} == {"accuracy@0.3"}
    assert {c.metric for c in checks if c.gate.startswith("gates[1]")} == {"auc"}


def _interval_row(slice_: str, features: list[str], size: float, metrics: dict, intervals: dict) -> dict:
    return {"slice": slice_, "features": features, "size": size, "insufficient": size < 30, "metrics": metrics,
            "intervals": intervals, "wide": []}


def test_a_gate_judged_on_the_lower_bound_blocks_a_point_estimate_that_passes():
    rows = [_interval_row("overall", [], 400, {"auc": 0.77}, {"auc": [0.72, 0.82]})]
    on_value = EvaluatorConfig.model_validate({"gates": [{"metric": "auc", "min": 0.75}]})
    on_bound = EvaluatorConfig.model_validate({"gates": [{"metric": "auc", "min": 0.75, "judge": "lower_bound"}]})
    [passed] = gates.evaluate(on_value, rows, None, gates.TfmaValidation())
    [failed] = gates.evaluate(on_bound, rows, None, gates.TfmaValidation())
    assert passed.status == gates.PASS and passed.judged == "value" and passed.decided_by == gates.TFMA
    assert failed.status == gates.FAIL and failed.value == 0.77 and failed.interval == (0.72, 0.82)
    assert failed.judged == "lower bound" and failed.decided_by == gates.SLUICEWAY
    assert "lower bound of the interval: 0.7200" in failed.detail
    assert gates.blocking([failed], on_bound) == [failed]
    # the TFMA EvalConfig carries no threshold for it: sluiceway decides on the interval
    config = build_eval_config(on_bound, FEATURES, "approved_binary", "transform_label", "scores")
    assert not _gate_metric(config, "gate0_auc").per_slice_thresholds
    # an upper-bound judgement of a max passes only when the whole interval is below it
    upper = EvaluatorConfig.model_validate({"gates": [{"metric": "auc", "max": 0.8, "judge": "upper_bound"}]})
    assert gates.evaluate(upper, rows, None, gates.TfmaValidation())[0].status == gates.FAIL


def test_a_significance_judged_fairness_gate_blocks_only_a_gap_the_data_shows():
    def sex_rows(female_interval, male_interval):
        return [_interval_row("overall", [], 1000, {"positive_rate@0.5": 0.5}, {}),
                _interval_row("sex=female", ["sex"], 60, {"positive_rate@0.5": 0.30}, {"positive_rate@0.5": female_interval}),
                _interval_row("sex=male", ["sex"], 940, {"positive_rate@0.5": 0.52}, {"positive_rate@0.5": male_interval})]

    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"fairness": "positive_rate", "feature": "sex", "max_gap": 0.1, "judge": "significant"}]})
    [noisy] = gates.evaluate(evaluator, sex_rows([0.05, 0.62], [0.49, 0.55]), None, gates.TfmaValidation())
    [shown] = gates.evaluate(evaluator, sex_rows([0.20, 0.42], [0.49, 0.55]), None, gates.TfmaValidation())
    assert noisy.value == pytest.approx(0.22) and noisy.status == gates.PASS and "not significant" in noisy.detail
    assert shown.status == gates.FAIL and "excludes 0: significant" in shown.detail
    assert shown.judged == "significant gap" and shown.interval[1] < 0  # female - male: below zero
    # no TFMA cross-slice threshold for it
    config = build_eval_config(evaluator, FEATURES, "approved_binary", "transform_label", "scores")
    assert not config.cross_slicing_specs


def test_judging_an_interval_needs_intervals():
    with pytest.raises(ConfigError) as error:
        parse_config(pipeline_yaml("data.csv", extra="""\
            evaluator:
              intervals: {method: "off"}
              gates:
                - {metric: auc, min: 0.7, judge: lower_bound}
            """), "pipeline.yaml")
    assert "evaluator.gates[0].judge" in str(error.value) and "intervals" in str(error.value)


def test_an_attribution_gate_bounds_a_features_share_with_or_without_its_proxies():
    attributions = {"method": "permutation importance", "examples": 1000,
                    "features": [{"feature": "income", "importance": 0.06, "share": 0.6},
                                 {"feature": "sex", "importance": 0.03, "share": 0.3},
                                 {"feature": "region", "importance": 0.01, "share": 0.1}],
                    "sensitive": {"sex": {"share": 0.3, "rank": 2, "importance": 0.03,
                                          "proxies": [{"feature": "region", "association": 0.4,
                                                       "measure": "cramers v", "share": 0.1}]}}}
    evaluator = EvaluatorConfig.model_validate({"gates": [
        {"attribution": "sex", "max_share": 0.35}, {"attribution": "sex", "max_share": 0.35, "with_proxies": True},
        {"attribution": "sex", "max_share": 0.05}]})
    alone, with_proxies, strict = gates.evaluate(evaluator, [], None, gates.TfmaValidation(),
                                                 attributions=attributions)
    assert (alone.status, alone.value) == (gates.PASS, pytest.approx(0.3))
    assert (with_proxies.status, with_proxies.value) == (gates.FAIL, pytest.approx(0.4))
    assert "proxies (association >= 0.1): region" in with_proxies.detail and with_proxies.decided_by == gates.SLUICEWAY
    assert strict.status == gates.FAIL and strict.bound == "<= 0.05"
    [missing] = gates.evaluate(evaluator.model_copy(update={"gates": evaluator.gates[:1]}), [], None,
                               gates.TfmaValidation(), attributions=None)
    assert missing.status == gates.INSUFFICIENT
