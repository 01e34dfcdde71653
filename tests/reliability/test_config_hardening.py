"""Issue 10, "code the YAML can run" and "gate bounds that mean nothing": hostile or meaningless pipeline
files are configuration errors (exit 2) naming the YAML path, never code run, gigabytes taken or a traceback."""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from pipeline.cli import main
from pipeline.config import BEAM_CODE_OPTIONS, BEAM_RUNNERS
from pipeline.errors import ConfigError
from pipeline.loader import MAX_DEPTH, load_config
from tests.conftest import pipeline_yaml


def _errors(write_pipeline, extra: str) -> str:
    """The text of the ConfigError for the pipeline with ``extra`` sections; fails when it loads."""
    path = write_pipeline(pipeline_yaml("data/credit.csv", extra=extra))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


# -- case 1: Beam options that run code -------------------------------------------------------------------------


@pytest.fixture
def planted_module(tmp_path, monkeypatch):
    """An importable module whose function, when Beam calls it as a runner, leaves a marker file."""
    marker = tmp_path / "ran.txt"
    (tmp_path / "planted_runner.py").write_text(textwrap.dedent(f"""\
        def fn(*args, **kwargs):
            open({str(marker)!r}, "w").write("the YAML ran code")
            raise SystemExit(0)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


@pytest.mark.parametrize("command", ["validate-config", "run"])
def test_a_runner_naming_a_function_is_refused_before_anything_runs(command, write_pipeline, planted_module,
                                                                    capsys):
    path = write_pipeline(pipeline_yaml("data/credit.csv", extra="""\
        beam:
          pipeline_options: ["--direct_num_workers=1", "--runner=planted_runner.fn"]
        """))
    assert main([command, path]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: 1 configuration error" in err
    assert "beam.pipeline_options[1]: --runner=planted_runner.fn is not a Beam runner sluiceway allows" in err
    assert "expected one of DirectRunner" in err and "DataflowRunner" in err and "FlinkRunner" in err
    assert "Traceback" not in err
    assert not planted_module.exists()


@pytest.mark.parametrize("option, message", [
    ("--setup_file=./setup.py", "--setup_file is refused: Beam runs the setup.py"),
    ("--requirements_file=requirements.txt", "--requirements_file is refused: Beam pip-installs"),
    ("--extra_package=dist/evil.tar.gz", "--extra_package is refused: Beam installs the package"),
    ("--beam_plugins=evil.module", "--beam_plugins is refused: Beam imports the named modules"),
    ("--sdk_location=/tmp/patched-beam.tar.gz", "--sdk_location=/tmp/patched-beam.tar.gz is refused"),
    ("--environment_type=PROCESS", "--environment_type=PROCESS is refused; expected one of DOCKER, EXTERNAL"),
    ('--environment_config={"command": "/bin/sh"}', "--environment_config with a JSON process command is refused"),
    ("--environment_options=process_command=/bin/sh", "a process command runs as the SDK worker"),
    ("--prism_location=https://example.com/prism.zip", "--prism_location is refused: Beam downloads and runs"),
    ("--job_server_java_launcher=/bin/sh", "--job_server_java_launcher is refused"),
    ("--runn=planted_runner.fn", "--runn abbreviates --runner (Beam would read it so); write the option in full"),
    ("--setup=./setup.py", "--setup abbreviates --setup_file"),
    ("--runner", "expected --runner=NAME in one element"),
    ("DirectRunner", "expected a Beam option of the form --name=value or --name, got 'DirectRunner'"),
    ("-runner=DirectRunner", "expected a Beam option of the form --name=value or --name"),
    ("--", "expected a Beam option of the form --name=value or --name"),
])
def test_options_that_load_code_or_are_malformed_are_errors_at_their_path(write_pipeline, option, message):
    text = _errors(write_pipeline, f"beam:\n  pipeline_options: ['--direct_num_workers=1', {option!r}]\n")
    assert "beam.pipeline_options[1]: " in text and message in text
    assert "1 configuration error" in text   # the allowed option beside it is no error


def test_a_refused_option_says_the_rule(write_pipeline):
    text = _errors(write_pipeline, "beam:\n  pipeline_options: ['--beam_plugin=evil']\n")
    assert ("beam.pipeline_options[0]: --beam_plugin is refused: Beam imports the named modules (sluiceway refuses "
            "Beam options that import, install or start code; the only code a pipeline file names is "
            "transform.module_file)") in text


def test_the_clusters_beam_options_follow_the_same_rule(write_pipeline):
    text = _errors(write_pipeline, "kubeflow:\n  beam_pipeline_options: ['--runner=DataflowRunner', "
                                   "'--setup_file=./setup.py']\n")
    assert "kubeflow.beam_pipeline_options[1]: --setup_file is refused" in text


def test_runners_and_options_of_real_deployments_stay_allowed(write_pipeline):
    path = write_pipeline(pipeline_yaml("data/credit.csv", extra="""\
        beam:
          pipeline_options: ["--runner=direct", "--direct_running_mode=multi_processing", "--save_main_session",
                             "--pickle_library=cloudpickle", "--sdk_location=container"]
        kubeflow:
          beam_pipeline_options: ["--runner=DataflowRunner", "--project=p", "--region=europe-west1",
                                  "--temp_location=gs://b/tmp", "--sdk_container_image=gcr.io/p/beam:2.61",
                                  "--experiments=use_runner_v2", "--environment_type=DOCKER",
                                  "--environment_config=apache/beam_python3.11_sdk:2.61.0",
                                  "--runner=apache_beam.runners.portability.flink_runner.FlinkRunner",
                                  "--flink_master=flink:8081", "--runner=SparkRunner", "--runner=prismrunner"]
        """))
    config = load_config(path)
    assert config.beam.pipeline_options[0] == "--runner=direct"


@pytest.mark.slow   # imports apache_beam's options (about 3 s)
def test_the_allowed_runners_and_refused_options_are_beams_own_names():
    from apache_beam.options import pipeline_options as beam_options

    assert set(BEAM_RUNNERS.values()) <= set(beam_options.StandardOptions.ALL_KNOWN_RUNNERS)
    assert all(path.rsplit(".", 1)[1] == name for name, path in BEAM_RUNNERS.items())
    parser = beam_options._BeamArgumentParser()
    for options in beam_options.PipelineOptions.__subclasses__():
        options._add_argparse_args(parser)
    known = {flag[2:] for flag in parser._option_string_actions}
    assert set(BEAM_CODE_OPTIONS) <= known, set(BEAM_CODE_OPTIONS) - known


# -- case 2: aliases that expand to billions of values, nesting that exhausts recursion ---------------------------


def _laughs(levels: int = 9) -> str:
    """A "billion laughs" search space: under dropout's choices each anchor is ten aliases of the one before."""
    lines = ["tuner:", "  enabled: true", "  search_space:", "    dropout:", "      choices:",
             "        - &l0 [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1]"]
    lines += [f"        - &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_file_is_refused_quickly_with_the_anchor_named(write_pipeline, capsys):
    path = write_pipeline(pipeline_yaml("data/credit.csv", extra=_laughs()))
    assert os.path.getsize(path) < 2048
    started = time.monotonic()
    assert main(["validate-config", path]) == 2
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert f"error: {path}: 1 configuration error" in err
    assert "line 27, column 11: with its aliases expanded the file holds 1,234,567,952 values" in err
    assert "(&l8 expands to 1,111,111,111 values); expected at most 100,000" in err
    assert took < 5, took


def test_five_thousand_nested_brackets_are_an_error_not_a_recursion_error(write_pipeline, capsys):
    path = write_pipeline(pipeline_yaml("data/credit.csv", extra="tuner:\n  search_space:\n    dropout: {choices: "
                                        + "[" * 5000 + "]" * 5000 + "}\n"))
    assert main(["validate-config", path]) == 2
    err = capsys.readouterr().err
    assert f"values nested deeper than {MAX_DEPTH} levels" in err and "line 16, column 84: " in err
    assert "RecursionError" not in err and "Traceback" not in err


def test_an_alias_inside_its_own_anchor_is_an_error(write_pipeline):
    text = _errors(write_pipeline, "tuner:\n  search_space:\n    dropout: {choices: &loop [0.1, *loop]}\n")
    assert "the alias *loop is used inside the value it names (&loop)" in text


def test_a_chain_of_aliases_deeper_than_the_bound_is_an_error(write_pipeline):
    chain = ["x-chain:", "  c0: &c0 [0.1]"] + [f"  c{i}: &c{i} [*c{i - 1}]" for i in range(1, MAX_DEPTH + 2)]
    text = _errors(write_pipeline, "\n".join(chain) + "\n")
    assert f"values nested deeper than {MAX_DEPTH} levels once its aliases are expanded" in text


def test_ordinary_anchors_still_work(write_pipeline):
    config = load_config(write_pipeline(pipeline_yaml("data/credit.csv", extra="""\
        evaluator:
          gates:
            - {metric: auc, min: 0.7, per: &groups [sex]}
            - {metric: accuracy, min: 0.6, per: *groups}
        """)))
    assert config.evaluator.gates[1].per == ["sex"]


# -- case 2: choices typed per hyperparameter ----------------------------------------------------------------------


def test_each_choice_is_checked_as_the_trainer_takes_its_hyperparameter(write_pipeline):
    text = _errors(write_pipeline, """\
        tuner:
          enabled: true
          search_space:
            dropout: {choices: [0, 0.1, 1.5, "x"]}
            learning_rate: {choices: [0.01, 0]}
            batch_size: {min: 0.5, max: 64}
            embedding_dim: {choices: [8, 16.5, true]}
            hidden_units: {choices: [[64, 32], [], [0], 5]}
        """)
    for line in [
        "tuner.search_space.dropout.choices[2]: expected a number from 0 up to (not including) 1, as for "
        "trainer.dropout; got 1.5",
        'tuner.search_space.dropout.choices[3]: expected a number from 0 up to (not including) 1, as for '
        'trainer.dropout; got "x"',
        "tuner.search_space.learning_rate.choices[1]: expected a number in (0, 1], as for trainer.learning_rate; "
        "got 0",
        "tuner.search_space.batch_size.min: expected a whole number of at least 1, as for trainer.batch_size; "
        "got 0.5",
        "tuner.search_space.embedding_dim.choices[1]: expected a whole number of at least 1, as for "
        "trainer.embedding_dim; got 16.5",
        "tuner.search_space.embedding_dim.choices[2]: expected a whole number of at least 1, as for "
        "trainer.embedding_dim; got true",
        "tuner.search_space.hidden_units.choices[1]: expected a list of layer sizes",
        "tuner.search_space.hidden_units.choices[2]: expected a list of layer sizes",
        "tuner.search_space.hidden_units.choices[3]: expected a list of layer sizes",
    ]:
        assert line in text, line
    assert "9 configuration errors" in text
    assert "dropout.choices[0]" not in text and "dropout.choices[1]" not in text


def test_whole_number_choices_of_a_float_hyperparameter_become_floats(write_pipeline):
    # KerasTuner's Choice refuses values of two types: [0, 0.1] would fail when the Tuner starts
    config = load_config(write_pipeline(pipeline_yaml("data/credit.csv", extra="""\
        tuner:
          search_space:
            dropout: {choices: [0, 0.1]}
            learning_rate: {choices: [1, 0.01]}
            batch_size: {choices: [64, 128]}
        """)))
    space = config.tuner.search_space
    assert [type(v) for v in space["dropout"].choices] == [float, float]
    assert space["learning_rate"].choices == [1.0, 0.01] and type(space["learning_rate"].choices[0]) is float
    assert [type(v) for v in space["batch_size"].choices] == [int, int]


def test_non_finite_search_bounds_are_errors(write_pipeline):
    text = _errors(write_pipeline, "tuner:\n  search_space:\n    learning_rate: {min: .nan, max: 0.1}\n")
    assert "tuner.search_space.learning_rate: min is nan; expected a finite number" in text


# -- case 3: gate bounds that cannot be met or mean nothing ----------------------------------------------------------


def test_bounds_that_are_not_numbers_are_errors_at_their_path(write_pipeline, capsys):
    path = write_pipeline(pipeline_yaml("data/credit.csv", extra="""\
        evaluator:
          decision_thresholds: [.nan]
          gates:
            - {metric: auc, min: .nan}
            - {metric: auc, max: .inf}
            - {fairness: positive_rate, feature: sex, max_gap: .nan}
            - {fairness: false_positive_rate, feature: sex, min_ratio: .nan}
            - {no_regression: auc, max_drop: .nan}
            - {no_regression: auc, max_drop: .inf}
        """))
    assert main(["validate-config", path]) == 2
    err = capsys.readouterr().err
    for line in ["evaluator.decision_thresholds[0]: expected a number between 0 and 1, got nan",
                 "evaluator.gates[0].min: expected a finite number, got nan",
                 "evaluator.gates[1].max: expected a finite number, got inf",
                 "evaluator.gates[2].max_gap: expected a finite number of at least 0, got nan",
                 "evaluator.gates[3].min_ratio: expected a number between 0 and 1, got nan",
                 "evaluator.gates[4].max_drop: expected a finite number of at least 0, got nan",
                 "evaluator.gates[5].max_drop: expected a finite number, got inf"]:
        assert line in err, line


def test_bounds_outside_the_metrics_range_or_crossed_are_errors(write_pipeline):
    text = _errors(write_pipeline, """\
        evaluator:
          bands: {age: [25, .nan, 60], income: [.inf]}
          gates:
            - {metric: auc, min: 1.2}
            - {metric: auc, min: 0.9, max: 0.8}
            - {metric: accuracy, max: -0.1}
            - {metric: precision, max: 1.5}
            - {metric: calibration, min: -1}
            - {no_regression: auc, max_drop: 2}
            - {no_regression: f1, max_drop: 1, relative: true}
        """)
    for line in [
        "evaluator.bands.age: expected finite boundaries in increasing order, e.g. [25, 40, 60], got [25.0, nan, 60.0]",
        "evaluator.bands.income: expected finite boundaries in increasing order",
        "evaluator.gates[0].min: auc is between 0 and 1, so min 1.2 can never be met; expected a min between 0 and 1",
        "evaluator.gates[1].max: max 0.8 is below min 0.9: no value can pass; expected max >= min",
        "evaluator.gates[2].max: accuracy is between 0 and 1, so max -0.1 can never be met",
        "evaluator.gates[3].max: precision is between 0 and 1, so max 1.5 always holds",
        "evaluator.gates[4].min: calibration is at least 0, so min -1 always holds; expected a min of at least 0",
        "evaluator.gates[5].max_drop: auc is between 0 and 1, so it cannot drop by 1 or more: max_drop 2 never fails",
        "evaluator.gates[6].max_drop: f1 is between 0 and 1, so it cannot drop by 100% of its value or more",
    ]:
        assert line in text, line


def test_bounds_at_the_edges_of_the_range_are_allowed(write_pipeline):
    config = load_config(write_pipeline(pipeline_yaml("data/credit.csv", extra="""\
        evaluator:
          gates:
            - {metric: auc, min: 0.7, max: 1}
            - {metric: accuracy, min: 0, max: 0.99}
            - {metric: calibration, min: 0.8, max: 1.25}
            - {metric: example_count, min: 100}
            - {fairness: positive_rate, feature: sex, min_ratio: 0.8}
            - {no_regression: calibration, max_drop: 3}
            - {no_regression: auc, max_drop: 0.99}
        """)))
    assert len(config.evaluator.gates) == 7


def test_every_gate_metric_has_a_range():
    from components.evaluator.metrics import METRICS
    from pipeline.config import METRIC_RANGES

    assert set(METRIC_RANGES) == {m.name for m in METRICS}


@pytest.mark.parametrize("command", ["validate-config", "run"])
def test_a_fairness_gate_on_a_feature_not_declared_sensitive_is_a_warning(command, write_pipeline, capsys):
    path = write_pipeline(pipeline_yaml("data/credit.csv", extra="""\
        evaluator:
          gates:
            - {fairness: positive_rate, feature: region, min_ratio: 0.8}
            - {fairness: positive_rate, feature: sex, min_ratio: 0.8}
        pusher:
          destination: serving
        """))
    code = main([command, path])
    err = capsys.readouterr().err
    expected = (f"warning: {path}: evaluator.gates[0].feature: fairness gate on region, which is not in "
                "features.sensitive (sex, race); the gate is checked")
    assert expected in err
    assert "gates[1]" not in err
    if command == "validate-config":
        assert code == 0
    else:  # the run goes on (and stops at ExampleGen: this test's data file does not exist)
        assert code == 3 and "ExampleGen failed" in err
