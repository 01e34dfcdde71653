"""Loading pipeline YAML files: every error reported at once, with its YAML path and the expected form."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from pipeline.cli import main
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.loader import load_config
from tests.conftest import pipeline_yaml

MINIMAL = """\
pipeline:
  name: demo
data:
  source: data/credit.csv
features:
  label: approved
  positive: "yes"
  numeric: [age, income]
  categorical: [sex, region]
"""


def load_errors(write_pipeline, text: str) -> list[ConfigIssue]:
    """The issues ConfigError lists for ``text``; fails the test when the file loads."""
    path = write_pipeline(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == path
    return info.value.issues


def messages(issues: list[ConfigIssue]) -> list[str]:
    return [str(issue) for issue in issues]


# --- a good file -------------------------------------------------------------------------------


def test_the_conftest_pipeline_loads(write_pipeline):
    config = load_config(write_pipeline(pipeline_yaml("data/credit.csv.gz")))

    assert config.pipeline.name == "test"
    assert config.features.label == "approved"
    assert config.features.positive_value == "yes"
    assert config.features.sensitive == ["sex", "race"]
    assert config.data.split.key == "applicant_id"
    assert len(config.features.feature_names) == 14


def test_defaults_when_sections_are_left_out(write_pipeline):
    config = load_config(write_pipeline(MINIMAL))

    assert (config.data.split.train, config.data.split.eval, config.data.split.test) == (70, 15, 15)
    assert config.data.split.key is None
    assert config.data.format == "auto"
    assert config.validation.on_anomaly == "fail"
    assert config.validation.schema_path is None
    assert config.validation.skew is None
    assert config.validation.drift.numeric_jsd == pytest.approx(0.1)
    assert config.validation.drift.categorical_linf == pytest.approx(0.1)


def test_loaded_config_is_immutable(write_pipeline):
    config = load_config(write_pipeline(MINIMAL))
    with pytest.raises(ValidationError):
        config.data.split.train = 50  # type: ignore[misc]
    assert config.data.split.train == 70


# --- one error ---------------------------------------------------------------------------------


def test_word_instead_of_number_gives_path_and_expected_form(write_pipeline):
    text = MINIMAL.replace("  source: data/credit.csv\n", "  source: data/credit.csv\n  split:\n    train: seventy\n")

    issues = load_errors(write_pipeline, text)

    assert messages(issues) == ['data.split.train: expected a number between 0 and 100, got "seventy"']
    assert issues[0] == ConfigIssue("data.split.train", 'expected a number between 0 and 100, got "seventy"')


def test_error_message_starts_with_file_and_count(write_pipeline):
    text = MINIMAL.replace("  source: data/credit.csv\n", "  source: data/credit.csv\n  split:\n    train: seventy\n")
    path = write_pipeline(text)

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert str(info.value).splitlines() == [
        f"{path}: 1 configuration error",
        '  data.split.train: expected a number between 0 and 100, got "seventy"',
    ]
    assert info.value.exit_code == 2


# --- several errors at once --------------------------------------------------------------------


def test_every_error_in_the_file_is_reported_at_once(write_pipeline):
    text = """\
pipeline:
  name: demo
  rooot: runs
data:
  source: data/credit.csv
  split:
    train: seventy
features:
  label: approved
  positive: "yes"
  numeric: [age, 5]
  categorical: [sex]
validation:
  on_anomaly: explode
"""
    issues = load_errors(write_pipeline, text)

    by_path = {issue.path: issue.message for issue in issues}
    assert len(issues) == 4, messages(issues)
    assert set(by_path) == {"pipeline.rooot", "data.split.train", "features.numeric[1]", "validation.on_anomaly"}
    assert "unknown key" in by_path["pipeline.rooot"]
    assert "did you mean 'root'" in by_path["pipeline.rooot"]
    assert by_path["data.split.train"] == 'expected a number between 0 and 100, got "seventy"'
    assert by_path["features.numeric[1]"] == "expected a column name, got 5"
    assert "'fail'" in by_path["validation.on_anomaly"] and "'warn'" in by_path["validation.on_anomaly"]
    assert '"explode"' in by_path["validation.on_anomaly"]


def test_empty_list_element_is_reported_with_its_index(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL.replace("numeric: [age, income]", 'numeric: [age, "", income]'))

    assert messages(issues) == ["features.numeric[1]: must not be empty"]


def test_missing_required_sections_are_all_reported(write_pipeline):
    issues = load_errors(write_pipeline, "pipeline:\n  name: demo\n")

    assert [issue.path for issue in issues] == ["data", "features"]
    assert all(issue.message.startswith("required") for issue in issues)
    assert "source" in issues[0].message  # says what the section holds


def test_a_bad_union_value_is_reported_once(write_pipeline):
    # features.positive accepts a string, a number or a boolean; a list matches none of them
    issues = load_errors(write_pipeline, MINIMAL.replace('positive: "yes"', "positive: [yes]"))

    assert messages(issues) == [
        "features.positive: expected the label value of the positive class (a string or number), got a list"
    ]


def test_scalar_where_a_list_is_expected_says_a_list_is_expected(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL.replace("numeric: [age, income]", "numeric: age"))

    assert [issue.path for issue in issues] == ["features.numeric"]
    assert "list" in issues[0].message, issues[0].message


# --- unknown keys ------------------------------------------------------------------------------


def test_unknown_top_level_key_is_an_error(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL + "valdation:\n  on_anomaly: warn\n")

    assert [issue.path for issue in issues] == ["valdation"]
    assert "unknown key" in issues[0].message
    assert "did you mean 'validation'" in issues[0].message


def test_unknown_nested_key_is_an_error_and_lists_the_valid_keys(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL + "validation:\n  drift:\n    numeric_jds: 0.2\n")

    assert [issue.path for issue in issues] == ["validation.drift.numeric_jds"]
    assert "did you mean 'numeric_jsd'" in issues[0].message
    assert "categorical_linf" in issues[0].message and "numeric_jsd" in issues[0].message


def test_unknown_key_without_close_match_has_no_hint(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL + "zzz: 1\n")

    assert [issue.path for issue in issues] == ["zzz"]
    assert "did you mean" not in issues[0].message
    assert "pipeline" in issues[0].message and "features" in issues[0].message


# --- not a valid YAML mapping ------------------------------------------------------------------


def test_malformed_yaml_reports_the_line(write_pipeline):
    text = "pipeline:\n  name: demo\ndata:\n  source: [data.csv\n  format: csv\nfeatures: {}\n"

    issues = load_errors(write_pipeline, text)

    assert len(issues) == 1
    assert "malformed YAML" in issues[0].message
    assert "line 5" in issues[0].message


def test_tab_indentation_reports_the_line(write_pipeline):
    issues = load_errors(write_pipeline, "pipeline:\n  name: demo\ndata:\n\tsource: x\n")

    assert len(issues) == 1
    assert "line 4" in issues[0].message and "malformed YAML" in issues[0].message


def test_duplicate_top_level_key_is_an_error(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL + "pipeline:\n  name: other\n")

    assert len(issues) == 1
    message = issues[0].message
    assert "duplicate key 'pipeline'" in message
    assert "first defined on line 1" in message
    assert "line 10" in message


def test_duplicate_nested_key_is_an_error(write_pipeline):
    text = MINIMAL.replace("  label: approved\n", "  label: approved\n  label: outcome\n")

    issues = load_errors(write_pipeline, text)

    assert len(issues) == 1
    assert "duplicate key 'label'" in issues[0].message
    assert "first defined on line 6" in issues[0].message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_an_error(write_pipeline, text):
    issues = load_errors(write_pipeline, text)

    assert len(issues) == 1
    assert "empty" in issues[0].message
    assert "pipeline" in issues[0].message  # names the keys expected


def test_top_level_list_is_an_error(write_pipeline):
    issues = load_errors(write_pipeline, "- pipeline\n- data\n")

    assert len(issues) == 1
    assert "expected a mapping" in issues[0].message
    assert issues[0].message.endswith("got a list")


def test_missing_file_is_a_config_error(tmp_path):
    path = str(tmp_path / "nowhere.yaml")

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert info.value.file == path
    assert len(info.value.issues) == 1
    assert "file not found" in info.value.issues[0].message
    assert path in str(info.value)


# --- split ratios ------------------------------------------------------------------------------


def test_split_ratios_must_add_up_to_100(write_pipeline):
    split = "    train: 60\n    eval: 20\n    test: 10\n"

    issues = load_errors(write_pipeline, pipeline_yaml("data.csv", split=split))

    assert messages(issues) == ["data.split: train + eval + test must add up to 100, got 60 + 20 + 10 = 90"]


def test_split_ratios_that_add_up_with_fractions_are_accepted(write_pipeline):
    split = "    train: 80\n    eval: 12.5\n    test: 7.5\n"

    config = load_config(write_pipeline(pipeline_yaml("data.csv", split=split)))

    assert (config.data.split.train, config.data.split.eval, config.data.split.test) == (80, 12.5, 7.5)


@pytest.mark.parametrize("value", ["0", "100", "-5", "true"])
def test_split_ratio_out_of_range_or_not_a_number(write_pipeline, value):
    split = f"    train: {value}\n"

    issues = load_errors(write_pipeline, pipeline_yaml("data.csv", split=split))

    assert [issue.path for issue in issues] == ["data.split.train"]
    assert issues[0].message.startswith("expected a number between 0 and 100, got ")


def test_split_key_cannot_be_the_label(write_pipeline):
    issues = load_errors(write_pipeline, pipeline_yaml("data.csv", split="    key: approved\n"))

    assert [issue.path for issue in issues] == ["data.split.key"]
    assert issues[0].message.startswith("'approved' cannot be the label column (features.label); expected another")


# --- features consistency ----------------------------------------------------------------------


def test_column_cannot_be_numeric_and_categorical(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL.replace("categorical: [sex, region]", "categorical: [sex, age]"))

    assert messages(issues) == ["features: age cannot be both numeric and categorical"]


def test_label_cannot_be_a_feature(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL.replace("numeric: [age, income]", "numeric: [age, income, approved]"))

    assert messages(issues) == ["features: the label 'approved' cannot also be a feature"]


def test_sensitive_feature_must_be_declared(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL + "  sensitive: [sex, race]\n")

    assert messages(issues) == ["features: sensitive features must be declared as numeric or categorical: race"]


def test_at_least_one_feature_is_required(write_pipeline):
    text = MINIMAL.replace("  numeric: [age, income]\n  categorical: [sex, region]\n", "")

    issues = load_errors(write_pipeline, text)

    assert [issue.path for issue in issues] == ["features"]
    assert "declare at least one feature" in issues[0].message


def test_feature_listed_twice_is_an_error(write_pipeline):
    issues = load_errors(write_pipeline, MINIMAL.replace("numeric: [age, income]", "numeric: [age, income, age]"))

    assert messages(issues) == ["features: numeric lists age more than once"]


def test_several_feature_problems_are_reported_together(write_pipeline):
    text = MINIMAL.replace("categorical: [sex, region]", "categorical: [sex, age, approved]") + "  sensitive: [race]\n"

    issues = load_errors(write_pipeline, text)

    assert len(issues) == 1 and issues[0].path == "features"
    assert "age cannot be both numeric and categorical" in issues[0].message
    assert "the label 'approved' cannot also be a feature" in issues[0].message
    assert "race" in issues[0].message


# --- paths -------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "conf"
    folder.mkdir(parents=True)
    path = folder / "pipeline.yaml"
    path.write_text(MINIMAL.replace("  name: demo\n", "  name: demo\n  root: ../runs\n")
                    + "validation:\n  schema: schemas/schema.pbtxt\n")

    # loading from another working directory, by a relative path, must not change the result
    monkeypatch.chdir(tmp_path)
    config = load_config(os.path.relpath(path, tmp_path))

    assert config.pipeline.root == str(tmp_path / "project" / "runs")
    assert config.data.source == str(folder / "data" / "credit.csv")
    assert config.validation.schema_path == str(folder / "schemas" / "schema.pbtxt")


def test_default_root_is_next_to_the_yaml(tmp_path, monkeypatch):
    # leaving out `root: pipelines` must mean the same as writing it
    (tmp_path / "conf").mkdir()
    implicit = tmp_path / "conf" / "implicit.yaml"
    implicit.write_text(MINIMAL)
    explicit = tmp_path / "conf" / "explicit.yaml"
    explicit.write_text(MINIMAL.replace("  name: demo\n", "  name: demo\n  root: pipelines\n"))
    monkeypatch.chdir(tmp_path)

    assert load_config(explicit).pipeline.root == str(tmp_path / "conf" / "pipelines")
    assert load_config(implicit).pipeline.root == str(tmp_path / "conf" / "pipelines")


def test_url_and_absolute_paths_stay_as_written(write_pipeline, tmp_path):
    absolute = str(tmp_path / "elsewhere" / "data.parquet")
    text = (MINIMAL.replace("  name: demo\n", "  name: demo\n  root: gs://bucket/runs\n")
            .replace("source: data/credit.csv", f"source: {absolute}")
            + "validation:\n  schema: gs://bucket/schemas/schema.pbtxt\n")

    config = load_config(write_pipeline(text))

    assert config.pipeline.root == "gs://bucket/runs"
    assert config.data.source == absolute
    assert config.validation.schema_path == "gs://bucket/schemas/schema.pbtxt"


def test_url_data_source_stays_as_written(write_pipeline):
    config = load_config(write_pipeline(MINIMAL.replace("source: data/credit.csv", "source: gs://bucket/data/*.csv")))

    assert config.data.source == "gs://bucket/data/*.csv"


def test_pusher_destination_url_stays_as_written_and_a_local_one_resolves(write_pipeline):
    url = load_config(write_pipeline(MINIMAL + "pusher:\n  destination: gs://bucket/models/credit\n"))
    other_scheme = load_config(write_pipeline(MINIMAL + "pusher:\n  destination: s3://bucket/models\n"))
    local = write_pipeline(MINIMAL + "pusher:\n  destination: serving/credit\n")

    assert url.pusher.destination == "gs://bucket/models/credit"
    assert other_scheme.pusher.destination == "s3://bucket/models"
    assert load_config(local).pusher.destination == os.path.join(os.path.dirname(local), "serving", "credit")


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_validate_config_accepts_a_good_file(write_pipeline, capsys):
    path = write_pipeline(pipeline_yaml("data/credit.csv.gz"))

    code = main(["validate-config", path])

    out, err = capsys.readouterr()
    assert code == 0
    assert "OK" in out and "'test'" in out and "14 features" in out
    assert err == ""


def test_cli_validate_config_reports_every_error_and_exits_2(write_pipeline, capsys):
    text = MINIMAL.replace("  name: demo\n", "  name: demo\n  rooot: runs\n").replace(
        "  source: data/credit.csv\n", "  source: data/credit.csv\n  split:\n    train: seventy\n")
    path = write_pipeline(text)

    code = main(["validate-config", path])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert f"{path}: 2 configuration errors" in err
    assert 'data.split.train: expected a number between 0 and 100, got "seventy"' in err
    assert "pipeline.rooot: unknown key (did you mean 'root'?)" in err
    assert "Traceback" not in err


def test_cli_validate_config_on_missing_file_exits_2(tmp_path, capsys):
    path = str(tmp_path / "missing.yaml")

    code = main(["validate-config", path])

    _, err = capsys.readouterr()
    assert code == 2
    assert path in err and "file not found" in err


def test_an_unquoted_yes_stays_the_text_yes(write_pipeline):
    # YAML 1.1 would read `yes` as a boolean; the label column holds the text "yes"
    text = pipeline_yaml("data.csv").replace('positive: "yes"', "positive: yes")
    config = load_config(write_pipeline(text))
    assert config.features.positive == "yes" and config.features.positive_value == "yes"
    assert load_config(write_pipeline(text.replace("positive: yes", "positive: true"))).features.positive_value == "true"


def _issue_text(write_pipeline, extra: str) -> str:
    with pytest.raises(ConfigError) as error:
        load_config(write_pipeline(pipeline_yaml("data.csv", extra=extra)))
    return str(error.value)


def test_a_search_space_key_that_names_no_hyperparameter_is_an_error(write_pipeline):
    text = _issue_text(write_pipeline, "tuner:\n  enabled: true\n  search_space:\n    learnin_rate: {min: 0.001, max: 0.1}\n")
    assert "tuner: search_space names no hyperparameter: learnin_rate" in text
    assert "learning_rate" in text  # the valid keys are listed


def test_an_empty_search_space_with_tuning_on_is_an_error(write_pipeline):
    text = _issue_text(write_pipeline, "tuner:\n  enabled: true\n  search_space: {}\n")
    assert "tuner: search_space is empty" in text


def test_search_ranges_must_be_well_formed(write_pipeline):
    assert "min 0.1 is above max 0.01" in _issue_text(
        write_pipeline, "tuner:\n  search_space:\n    dropout: {min: 0.1, max: 0.01}\n")
    assert "hidden_units takes choices of layer-size lists" in _issue_text(
        write_pipeline, "tuner:\n  search_space:\n    hidden_units: {min: 8, max: 64}\n")
    assert "grid search is exhaustive over choices; give choices for learning_rate" in _issue_text(
        write_pipeline, "tuner:\n  algorithm: grid\n  search_space:\n    learning_rate: {min: 0.001, max: 0.1}\n")


def test_transform_settings_must_name_declared_features(write_pipeline):
    issues = load_errors(write_pipeline, pipeline_yaml("data.csv", extra=(
        "transform:\n  per_feature: {sex: log, income: log, incme: log}\n  hash_buckets: {age: 10, region: 50}\n")))
    by_path = {issue.path: issue.message for issue in issues}
    # one error per misnamed key, the key in the path; the well-named ones are accepted
    assert set(by_path) == {"transform.per_feature.sex", "transform.per_feature.incme", "transform.hash_buckets.age"}
    assert by_path["transform.per_feature.sex"].startswith("sex is not in features.numeric (it is categorical); "
                                                           "expected one of age, income, credit_score")
    assert by_path["transform.per_feature.incme"].startswith(
        "incme is not in features.numeric (it is not declared under features)")
    assert by_path["transform.hash_buckets.age"].startswith("age is not in features.categorical (it is numeric); "
                                                            "expected one of employment_type")
    assert "transform.numeric: expected one of 'zscore'" in _issue_text(write_pipeline, "transform:\n  numeric: scale\n")


def test_evaluator_slices_must_name_declared_features(write_pipeline):
    text = _issue_text(write_pipeline, "evaluator:\n  slices: [[sex], [gender, race]]\n")
    assert "evaluator.slices[1]: names gender, not declared under features" in text
    assert "evaluator.decision_thresholds[0]: expected a number between 0 and 1, got 1.5" in _issue_text(
        write_pipeline, "evaluator:\n  decision_thresholds: [1.5]\n")


def test_gates_are_checked_for_form_and_for_the_features_they_name(write_pipeline):
    text = _issue_text(write_pipeline, """\
evaluator:
  gates:
    - {metric: auc}
    - {fairness: positive_rate, feature: sex, max_gap: 0.1, min_ratio: 0.8}
    - {nonsense: 1}
    - {metric: aucc, min: 1}
""")
    assert "evaluator.gates[0]: gate on auc: give min, max or both" in text
    assert "evaluator.gates[1]: fairness gate on positive_rate: give exactly one of max_gap or min_ratio" in text
    assert "evaluator.gates[2]: expected a gate with one of the keys metric, fairness, no_regression or attribution" in text
    assert "evaluator.gates[3].metric: expected one of auc, accuracy" in text
    assert "evaluator.gates[1].feature: names gender, not declared under features" in _issue_text(
        write_pipeline, "evaluator:\n  gates:\n    - {metric: auc, min: 0.7, per: [sex]}\n"
                        "    - {fairness: positive_rate, feature: gender, min_ratio: 0.8}\n")
    assert "evaluator.gates[0].per: names gendr, not declared under features" in _issue_text(
        write_pipeline, "evaluator:\n  gates:\n    - {no_regression: auc, per: [gendr]}\n")
    assert ("evaluator.gates[0].threshold: decision threshold 0.3 missing from evaluator.decision_thresholds [0.5]"
            in _issue_text(write_pipeline, "evaluator:\n  gates:\n    - {fairness: positive_rate, feature: sex, "
                                           "min_ratio: 0.8, threshold: 0.3}\n"))


def test_numeric_slices_need_bands_in_increasing_order_on_numeric_features(write_pipeline):
    assert "evaluator.slices[1]: uses the numeric feature(s) age: slice them by bands" in _issue_text(
        write_pipeline, "evaluator:\n  slices: [[sex], [age]]\n")
    assert ("evaluator.bands.age: expected boundaries in increasing order, e.g. [25, 40, 60], got [40.0, 25.0]"
            in _issue_text(write_pipeline, "evaluator:\n  bands: {age: [40, 25]}\n"))
    assert "evaluator.bands.sex: sex is not in features.numeric (it is categorical)" in _issue_text(
        write_pipeline, "evaluator:\n  bands: {sex: [1]}\n")
    config = load_config(write_pipeline(pipeline_yaml("data.csv", extra=(
        "evaluator:\n  bands: {age: [25, 40, 60]}\n  slices: [[sex], [sex, age]]\n"
        "  gates:\n    - {metric: auc, min: 0.6, per: [age]}\n"))))
    assert config.evaluator.bands == {"age": [25.0, 40.0, 60.0]}


# --- checks between sections: one error per YAML path, reported alongside every other error -----

FOUR_CROSS_SECTION_MISTAKES = """\
transform:
  per_feature: {region: log}
evaluator:
  slices: [[sex], [age]]
  gates:
    - {metric: auc, min: 0.7}
    - {metric: auc, min: 0.6, per: [gender]}
"""


def test_cli_validate_config_prints_each_cross_section_mistake_with_its_path(write_pipeline, capsys):
    path = write_pipeline(pipeline_yaml("data.csv", split="    key: approved\n", extra=FOUR_CROSS_SECTION_MISTAKES))

    code = main(["validate-config", path])

    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2
    assert lines[0] == f"error: {path}: 4 configuration errors"
    assert [line.split(":", 1)[0].strip() for line in lines[1:]] == [
        "data.split.key", "transform.per_feature.region", "evaluator.slices[1]", "evaluator.gates[1].per"]
    assert "'approved' cannot be the label column" in lines[1]
    assert "region is not in features.numeric (it is categorical)" in lines[2]
    assert "uses the numeric feature(s) age: slice them by bands, e.g. evaluator.bands: {age: [25, 40, 60]}" in lines[3]
    assert "names gender, not declared under features" in lines[4]


def test_cross_section_mistakes_are_reported_beside_a_field_that_failed(write_pipeline):
    extra = FOUR_CROSS_SECTION_MISTAKES + "trainer:\n  epochs: many\n"

    issues = load_errors(write_pipeline, pipeline_yaml("data.csv", split="    key: approved\n", extra=extra))

    assert [issue.path for issue in issues] == ["trainer.epochs", "data.split.key", "transform.per_feature.region",
                                                "evaluator.slices[1]", "evaluator.gates[1].per"]
    assert len(set(issues)) == len(issues)


def test_a_section_that_failed_is_left_out_of_the_cross_section_checks(write_pipeline):
    # the evaluator section has an error of its own: its slices are not checked against features,
    # while transform's mistake, between two valid sections, is still reported
    extra = "transform:\n  hash_buckets: {age: 10}\nevaluator:\n  slices: [[gender]]\n  min_slice_size: 0\n"

    issues = load_errors(write_pipeline, pipeline_yaml("data.csv", extra=extra))

    assert [issue.path for issue in issues] == ["evaluator.min_slice_size", "transform.hash_buckets.age"]
    # without valid features nothing can be checked against them, and nothing is made up
    broken = MINIMAL.replace("numeric: [age, income]", "numeric: [age, 5]") + "transform:\n  per_feature: {sex: log}\n"
    assert [issue.path for issue in load_errors(write_pipeline, broken)] == ["features.numeric[1]"]


def test_several_mistakes_at_one_path_are_one_error(write_pipeline):
    issues = load_errors(write_pipeline, pipeline_yaml("data.csv", extra="evaluator:\n  slices: [[gender, age]]\n"))

    assert [issue.path for issue in issues] == ["evaluator.slices[0]"]
    assert "names gender, not declared under features" in issues[0].message
    assert "uses the numeric feature(s) age: slice them by bands" in issues[0].message


def test_the_config_model_itself_reports_cross_section_errors_by_path(write_pipeline):
    # what the loader reports is what the model says when used directly (e.g. by a KFP component)
    from pipeline.config import PipelineConfig

    data = {"pipeline": {"name": "demo"}, "data": {"source": "x.csv", "split": {"key": "approved"}},
            "features": {"label": "approved", "positive": "yes", "numeric": ["age"], "categorical": ["sex"]},
            "evaluator": {"bands": {"sex": [1]}}}
    with pytest.raises(ValidationError) as info:
        PipelineConfig.model_validate(data)
    assert [error["loc"] for error in info.value.errors()] == [("data", "split", "key"), ("evaluator", "bands", "sex")]
