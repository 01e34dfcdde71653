"""Issue 10, "data that passes validation but is wrong" and "errors that are tracebacks" in data:
each test reproduces a case that used to pass silently or crash with a raw traceback, and asserts
what the user now sees (the file and column named, exit code 3, or a recorded warning)."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow.parquet as pq
import pytest

from components.example_gen.core import run_example_gen
from pipeline import datagen
from pipeline.cli import main
from pipeline.errors import DataError
from pipeline.loader import load_config
from tests.conftest import pipeline_yaml

ROWS = 300


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bad_data")


@pytest.fixture(scope="module")
def clean_lines(data_dir) -> list[str]:
    """ROWS generated rows as unquoted CSV lines, header first (no value holds a comma)."""
    path = str(data_dir / "clean.csv")
    datagen.generate(path, rows=ROWS, seed=4)
    with open(path, encoding="utf-8", newline="") as handle:
        return [line.replace('"', "") for line in handle]


@pytest.fixture(scope="module")
def clean_gz(data_dir) -> bytes:
    path = str(data_dir / "clean.csv.gz")
    datagen.generate(path, rows=3000, seed=4)
    with open(path, "rb") as handle:
        return handle.read()


def write_yaml(folder, source: str, extra: str = "", data: str = "") -> str:
    """The conftest pipeline YAML over ``source``; ``data`` adds lines to the data section."""
    path = os.path.join(str(folder), "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(pipeline_yaml(json.dumps(str(source)), extra=extra, split="    key: applicant_id\n" + data))
    return path


def example_gen(folder, source: str, extra: str = "", progress=lambda _: None):
    config = load_config(write_yaml(folder, source, extra))
    return run_example_gen(config.data, config.features, os.path.join(str(folder), "examples"), progress)


def data_error(folder, source: str, extra: str = "") -> str:
    with pytest.raises(DataError) as info:
        example_gen(folder, source, extra)
    return str(info.value)


def cli_data_error(folder, source: str, capsys) -> str:
    """Runs ``sluiceway run --until ExampleGen``; asserts exit 3 and returns stderr."""
    code = main(["run", write_yaml(folder, source), "--until", "ExampleGen"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    return err


def set_field(line: str, header: list[str], column: str, value: str) -> str:
    fields = line.rstrip("\r\n").split(",")
    fields[header.index(column)] = value
    return ",".join(fields) + "\n"


def write_lines(path, lines: list[str]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)
    return str(path)


# --- case 2: damaged files are data errors naming the file ---------------------------------------


def test_truncated_csv_gz_is_exit_3_naming_the_file(tmp_path, clean_gz, capsys):
    source = tmp_path / "cut.csv.gz"
    source.write_bytes(clean_gz[: len(clean_gz) * 2 // 3])  # was: OSError: Truncated compressed stream, exit 1

    err = cli_data_error(tmp_path, str(source), capsys)

    assert f"{source}: the compressed data breaks off or is damaged" in err
    assert "expected a complete gzip file" in err


def test_huge_first_line_is_exit_3_naming_the_file(tmp_path, clean_lines, capsys):
    # was: _csv.Error: field larger than field limit (131072), exit 1
    source = write_lines(tmp_path / "huge-header.csv", ["x" * 2_000_000 + clean_lines[0], *clean_lines[1:]])

    err = cli_data_error(tmp_path, source, capsys)

    assert f"{source}: line 1 is longer than 1,048,576 characters; expected a CSV header line" in err


def test_header_with_a_field_over_the_csv_limit_names_the_file(tmp_path, clean_lines):
    source = write_lines(tmp_path / "wide-header.csv", ['"' + "x" * 200_000 + '",' + clean_lines[0], *clean_lines[1:]])

    message = data_error(tmp_path, source)

    assert source in message and "line 1 cannot be read as a CSV header" in message


def test_row_longer_than_the_reader_block_names_the_file(tmp_path, clean_lines):
    header = clean_lines[0].rstrip("\n").split(",")
    lines = list(clean_lines)
    lines[5] = set_field(lines[5], header, "employment_type", "y" * 20_000_000)  # block: 8 MB at batch_rows 65536
    source = write_lines(tmp_path / "huge-field.csv", lines)

    message = data_error(tmp_path, source)

    assert source in message and "a row after the first 4 rows is too long to parse (over 8,388,608 bytes" in message


def test_corrupt_parquet_pages_are_exit_3_naming_the_file(tmp_path, capsys):
    clean = str(tmp_path / "clean.parquet")
    datagen.generate(clean, rows=ROWS, seed=4)
    data = bytearray(open(clean, "rb").read())
    for index in range(200, len(data) // 2, 7):  # damage the column chunks, keep the footer
        data[index] ^= 0xFF
    source = tmp_path / "damaged.parquet"
    source.write_bytes(bytes(data))
    assert pq.ParquetFile(str(source)).metadata.num_rows == ROWS  # the footer still reads

    err = cli_data_error(tmp_path, str(source), capsys)

    assert f"{source}: the Parquet data is damaged" in err and "expected a complete, uncorrupted Parquet file" in err


def test_a_huge_non_numeric_value_is_shown_shortened(tmp_path, clean_lines):
    header = clean_lines[0].rstrip("\n").split(",")
    lines = list(clean_lines)
    lines[5] = set_field(lines[5], header, "income", "y" * 3_000_000)
    source = write_lines(tmp_path / "huge-value.csv", lines)

    message = data_error(tmp_path, source)

    assert f"column 'income' has the value '{'y' * 60}... (3,000,000 characters)'; expected a number" in message
    assert len(message) < 1000


# --- case 1: non-finite numbers ------------------------------------------------------------------


def with_values(lines: list[str], column: str, values: dict[int, str]) -> list[str]:
    header = lines[0].rstrip("\n").split(",")
    out = list(lines)
    for line, value in values.items():  # line numbers count the header as line 1
        out[line - 1] = set_field(out[line - 1], header, column, value)
    return out


def test_inf_in_a_csv_numeric_column_is_exit_3_naming_column_count_and_line(tmp_path, clean_lines, capsys):
    # was: no error, no anomaly, the model trained on inf (AUC 0.84 -> 0.67)
    lines = with_values(clean_lines, "income", {7: "inf", 40: "-inf", 41: "NAN", 90: "1e400"})
    lines = with_values(lines, "age", {12: "1e39"})  # finite as a double, inf as the float32 of a tf.Example
    source = write_lines(tmp_path / "inf.csv", lines)

    err = cli_data_error(tmp_path, source, capsys)

    assert (f"{source}: non-finite numbers (inf, -inf, NaN or beyond float32's range) in numeric column(s): "
            "'age' 1 (first on line 12), 'income' 4 (first on line 7)") in err
    assert "set data.non_finite: missing" in err


def test_non_finite_as_missing_when_the_yaml_says_so(tmp_path, clean_lines):
    from components.example_gen.core import execute
    from tests.components.example_gen.test_example_gen import split_rows

    lines = with_values(clean_lines, "income", {7: "inf", 40: "-inf", 41: "NAN"})
    source = write_lines(tmp_path / "inf.csv", lines)
    config = load_config(write_yaml(tmp_path, source, data="  non_finite: missing\n"))
    lines_seen: list[str] = []
    examples = str(tmp_path / "examples")

    figures = execute({}, {"examples": examples}, {"data": config.data, "features": config.features}, lines_seen.append)

    assert figures["non_finite_as_missing"] == 3 and figures["rows"] == ROWS
    assert lines_seen == ["WARNING: 3 non-finite numbers (inf, -inf or NaN) in 'income' 3 read as missing values "
                          "(data.non_finite: missing)"]
    info = json.load(open(os.path.join(examples, "split_info.json")))
    assert info["non_finite_as_missing"] == {"income": 3}
    rows = [row for split in ("train", "eval", "test") for row in split_rows(examples, split)]
    incomes = [row["income"] for row in rows]
    assert sum(value is None for value in incomes) >= 3
    assert all(value is None or abs(value[0]) < float("inf") for value in incomes)


def parquet_with_non_finite(folder) -> str:
    import pyarrow as pa

    clean = str(folder / "clean-nf.parquet")
    datagen.generate(clean, rows=ROWS, seed=4)
    table = pq.read_table(clean)
    income = table.column("income").to_pylist()
    income[4], income[9] = float("inf"), float("nan")  # a real NaN, not a null: what Spark and others store
    table = table.set_column(table.schema.get_field_index("income"), "income", pa.array(income, pa.float64()))
    path = str(folder / "non-finite.parquet")
    pq.write_table(table, path)
    return path


def write_tfrecord(table, path: str) -> str:
    """``table`` as tf.Example records: numbers as float_list, text as bytes_list, nulls absent."""
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    from components.common.tfrecord import TFRecordWriter

    arrays = []
    for name in table.column_names:
        values = table.column(name).to_pylist()
        numeric = pa.types.is_floating(table.schema.field(name).type) or pa.types.is_integer(table.schema.field(name).type)
        kind = pa.float32() if numeric else pa.binary()
        arrays.append(pa.array([None if v is None else [v if numeric else v.encode()] for v in values], pa.list_(kind)))
    records = example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays(arrays, names=table.column_names))
    with TFRecordWriter(path) as writer:
        writer.write_many(records)
    return path


def tfrecord_with_non_finite(folder) -> str:
    import pyarrow as pa

    table = pq.read_table(str(_generated_parquet(folder)))
    income = table.column("income").to_pylist()
    income[2] = float("-inf")
    table = table.set_column(table.schema.get_field_index("income"), "income", pa.array(income, pa.float64()))
    return write_tfrecord(table, str(folder / "non-finite.tfrecord"))


@pytest.mark.parametrize("make, first, count", [(parquet_with_non_finite, "row 5", 2),
                                                (tfrecord_with_non_finite, "record 3", 1)],
                         ids=["parquet", "tfrecord"])
def test_non_finite_in_parquet_and_tfrecord_is_a_data_error(tmp_path, make, first, count):
    source = make(tmp_path)

    message = data_error(tmp_path, source)

    assert f"{source}: non-finite numbers" in message and f"'income' {count} (first on {first})" in message


# --- case 3: an empty string is a missing value in every format ----------------------------------


def test_empty_strings_are_missing_values_in_csv_parquet_and_tfrecord(tmp_path):
    # was: Parquet's "" became a category, "values missing from the schema" in the ExampleValidator
    import pyarrow as pa

    from tests.components.example_gen.test_example_gen import rows_by_id

    table = pq.read_table(str(_generated_parquet(tmp_path)))
    column = table.column("employment_type").to_pylist()
    emptied = [index for index in range(0, ROWS, 10) if column[index] is not None]
    for index in emptied:
        column[index] = ""
    table = table.set_column(table.schema.get_field_index("employment_type"), "employment_type",
                             pa.array(column, pa.string()))
    parquet = str(tmp_path / "empty.parquet")
    pq.write_table(table, parquet)
    csv_path = str(tmp_path / "empty.csv")
    table.to_pandas().to_csv(csv_path, index=False)
    tfrecord = write_tfrecord(table, str(tmp_path / "empty.tfrecord"))
    ids = {table.column("applicant_id")[index].as_py().encode() for index in emptied}

    seen = {}
    for name, source in (("csv", csv_path), ("parquet", parquet), ("tfrecord", tfrecord)):
        config = load_config(write_yaml(tmp_path, source))
        examples = str(tmp_path / f"examples-{name}")
        run_example_gen(config.data, config.features, examples)
        rows = {key: row for split in rows_by_id(examples).values() for key, row in split.items()}
        assert len(rows) == ROWS
        seen[name] = {key: rows[key]["employment_type"] for key in ids}
    assert seen["parquet"] == seen["tfrecord"] == seen["csv"] == dict.fromkeys(ids)  # missing, not b""


def _generated_parquet(folder):
    path = folder / "generated.parquet"
    datagen.generate(str(path), rows=ROWS, seed=4)
    return path


# --- cases 5 and 6: checks on the train statistics before training (SchemaGen) ------------------


def feature_stats(dataset, name: str, values: dict[str, int] | None = None, numbers: tuple | None = None,
                  missing: int = 0):
    """Adds one feature's TFDV statistics to ``dataset``: a categorical one (``values``: counts) or a
    numeric one (``numbers``: min, max)."""
    feature = dataset.features.add()
    feature.path.step.append(name)
    if values is not None:
        stats = feature.string_stats
        stats.unique = len(values)
        for label, count in sorted(values.items(), key=lambda item: -item[1]):
            bucket = stats.rank_histogram.buckets.add()
            bucket.label, bucket.sample_count = label, count
        present = sum(values.values())
    else:
        stats = feature.num_stats
        stats.min, stats.max = numbers
        present = 100
    stats.common_stats.num_non_missing, stats.common_stats.num_missing = present, missing


def split_stats(sex: dict[str, int], *, income=(0.0, 9.0), employment: dict[str, int] | None = None,
                leave_out: tuple[str, ...] = ()):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from tests.components.conftest import CATEGORICAL, NUMERIC

    dataset = statistics_pb2.DatasetFeatureStatistics(num_examples=100)
    for name in NUMERIC:
        if name not in leave_out:
            feature_stats(dataset, name, numbers=income if name == "income" else (0.0, 1.0))
    for name in CATEGORICAL:
        if name not in leave_out:
            feature_stats(dataset, name, {"sex": sex, "employment_type": employment}.get(name) or {"a": 60, "b": 40})
    return dataset


def evaluator_section(gates: list[dict], **more):
    from pipeline.config import EvaluatorConfig

    return EvaluatorConfig.model_validate({"gates": gates, **more})


def test_fairness_reference_absent_from_the_data_is_a_config_error_before_training():
    # was: found by the Evaluator after training ("reference group sex=nonbinary has no examples")
    from components.schema_gen.data_checks import check
    from pipeline.errors import ConfigError
    from tests.components.conftest import features_config

    train = split_stats({"female": 50, "male": 50})
    evaluator = evaluator_section([{"metric": "auc", "min": 0.5},
                                   {"fairness": "positive_rate", "feature": "sex", "max_gap": 0.1,
                                    "reference": "nonbinary"}])

    with pytest.raises(ConfigError) as info:
        check(train, train, evaluator, features_config())

    assert info.value.exit_code == 2
    assert str(info.value) == ("the pipeline YAML: 1 configuration error\n  evaluator.gates[1].reference: 'nonbinary' "
                               "is not a group of sex in the data; expected one of the groups that exist (train "
                               "split: female (50), male (50))")


def test_a_multiclass_fairness_class_absent_from_train_is_a_config_error_before_training():
    # else the Evaluator would find it, after training
    from components.schema_gen.data_checks import check
    from pipeline.config import FeaturesConfig
    from pipeline.errors import ConfigError
    from tests.components.conftest import CATEGORICAL, NUMERIC

    train = split_stats({"female": 50, "male": 50})
    feature_stats(train, "risk", {"low": 40, "medium": 35, "high": 25})
    features = FeaturesConfig(label="risk", task="multiclass", numeric=NUMERIC, categorical=CATEGORICAL,
                              sensitive=["sex"])
    evaluator = evaluator_section([{"fairness": "false_negative_rate", "feature": "sex", "class": "severe",
                                    "max_gap": 0.1}])

    with pytest.raises(ConfigError) as info:
        check(train, train, evaluator, features)

    assert str(info.value) == ("the pipeline YAML: 1 configuration error\n  evaluator.gates[0].class: 'severe' is not "
                               "a class of the label risk in the train split; expected one of its classes: high (25), "
                               "low (40), medium (35)")
    fine = evaluator_section([{"fairness": "false_negative_rate", "feature": "sex", "class": "high", "max_gap": 0.1}])
    assert check(train, train, fine, features).constant == {}


def test_fairness_reference_without_eval_examples_and_empty_slice_features_are_config_errors():
    from components.schema_gen.data_checks import check
    from pipeline.errors import ConfigError
    from tests.components.conftest import features_config

    train = split_stats({"female": 50, "male": 50})
    evaluated = split_stats({"male": 30}, leave_out=("race",))
    evaluator = evaluator_section([{"fairness": "positive_rate", "feature": "sex", "max_gap": 0.1, "reference": "female"},
                                   {"metric": "auc", "min": 0.5, "per": ["race"]}], slices=[["sex"], ["race"]])

    with pytest.raises(ConfigError) as info:
        check(train, evaluated, evaluator, features_config())

    issues = {issue.path: issue.message for issue in info.value.issues}
    assert issues["evaluator.gates[0].reference"].startswith(
        "'female' has no examples in the eval split (evaluator.split), so the gate could only fail after training; "
        "groups there: male (30)")
    assert issues["evaluator.gates[1].per"].startswith("race has no value in the eval split")
    assert issues["evaluator.slices[1]"].startswith("race has no value in the eval split")


def test_a_sensitive_group_without_eval_examples_is_reported():
    from components.schema_gen.data_checks import check
    from tests.components.conftest import features_config

    train = split_stats({"female": 45, "male": 50, "other": 5})
    evaluated = split_stats({"female": 20, "male": 25})
    evaluator = evaluator_section([{"fairness": "positive_rate", "feature": "sex", "min_ratio": 0.8}])

    found = check(train, evaluated, evaluator, features_config())

    assert found.absent_groups == {"sex": ["other"]}
    assert found.warnings() == ["group sex=other has no eval examples: the Evaluator cannot judge it (fairness "
                                "gates and slices leave it out)"]


def test_constant_and_all_missing_features_are_found_from_train_statistics():
    from components.schema_gen.data_checks import check
    from tests.components.conftest import features_config

    train = split_stats({"female": 50, "male": 50}, income=(4.0, 4.0), employment={"salaried": 100},
                        leave_out=("age",))

    found = check(train, train, evaluator_section([]), features_config())

    assert found.constant == {"income": "4", "employment_type": "'salaried'"} and found.all_missing == ["age"]
    assert found.feature_warnings() == [
        "feature 'income' has one value in every train row (4): the model learns nothing from it and serves "
        "arbitrary scores for other values; drop it from features or fix the data",
        "feature 'employment_type' has one value in every train row ('salaried'): the model learns nothing from "
        "it and serves arbitrary scores for other values; drop it from features or fix the data",
        "feature 'age' is missing in every train row: the model learns nothing from it; drop it from features "
        "or fix the data"]


@pytest.mark.slow
def test_schema_gen_warns_or_fails_on_a_constant_column_and_checks_gate_references(tmp_path, clean_lines, capsys):
    # was: a constant income passed every check and the model served nonsense for other incomes
    header = clean_lines[0].rstrip("\n").split(",")
    lines = [clean_lines[0]] + [set_field(line, header, "income", "52000") for line in clean_lines[1:]]
    source = json.dumps(write_lines(tmp_path / "constant.csv", lines))
    until = ["--until", "SchemaGen"]
    loose = "validation:\n  on_anomaly: warn\n"

    def yaml(extra: str) -> str:
        path = tmp_path / "pipeline.yaml"
        path.write_text(pipeline_yaml(source, extra=extra))
        return str(path)

    assert main(["run", yaml(loose), *until]) == 0
    out = capsys.readouterr().out
    assert "WARNING: feature 'income' has one value in every train row (52000)" in out
    schema_dirs = [os.path.join(root, "schema") for root, dirs, _ in os.walk(tmp_path / "runs") if "schema" in dirs]
    recorded = json.load(open(os.path.join(schema_dirs[0], "data_checks.json")))
    assert recorded["constant"] == {"income": "52000"}

    assert main(["run", yaml(loose + "  on_constant: fail\n"), *until]) == 3
    err = capsys.readouterr().err
    assert "SchemaGen failed: the train split: feature 'income' has one value in every train row (52000)" in err
    assert "(validation.on_constant: fail; set it to warn to go on)" in err

    gate = ("evaluator:\n  gates:\n    - {fairness: positive_rate, feature: sex, max_gap: 0.2, reference: nonbinary}\n")
    assert main(["run", yaml(loose + gate), *until]) == 2
    err = capsys.readouterr().err
    assert "evaluator.gates[0].reference: 'nonbinary' is not a group of sex in the data; expected one of the " \
           "groups that exist (train split: female (" in err


def test_a_fairness_gate_lists_groups_without_eval_examples_in_its_checks_and_report(tmp_path, clean_lines):
    # was: a group with 0 eval examples was not mentioned anywhere by the fairness gate
    from components.evaluator import gates, report
    from pipeline.config import EvaluatorConfig
    from tests.components.conftest import features_config

    header = clean_lines[0].rstrip("\n").split(",")
    lines = list(clean_lines)
    lines[3] = set_field(lines[3], header, "sex", "nonbinary")  # one row: lands in one split only
    example_gen(tmp_path, write_lines(tmp_path / "groups.csv", lines))
    examples = str(tmp_path / "examples")
    recorded = json.load(open(os.path.join(examples, "split_info.json")))["groups"]["sex"]
    assert sum(counts.get("nonbinary", 0) for counts in recorded.values()) == 1
    assert sum(sum(counts.values()) for counts in recorded.values()) <= ROWS
    known = gates.data_groups(examples)
    assert known["sex"] == ["female", "male", "nonbinary"]

    def row(name, size, rate):
        return {"slice": name, "features": ["sex"] if name != "overall" else [], "size": size,
                "insufficient": size < 30, "metrics": {"positive_rate@0.5": rate, "auc": 0.8}}

    rows = [row("overall", 200, 0.4), row("sex=female", 100, 0.35), row("sex=male", 100, 0.45)]
    evaluator = EvaluatorConfig.model_validate(
        {"gates": [{"fairness": "positive_rate", "feature": "sex", "min_ratio": 0.7}]})

    checks = gates.evaluate(evaluator, rows, None, gates.TfmaValidation(), groups=known)

    [absent] = [c for c in checks if c.slice == "sex=nonbinary"]
    assert absent.status == gates.INSUFFICIENT and absent.decided_by == gates.SLUICEWAY
    assert absent.detail == "group sex=nonbinary has no eval examples: left out of the comparison"
    assert [c.status for c in checks if c is not absent] == [gates.PASS]
    page = report.render(rows, None, [c.as_dict() for c in checks], True, evaluator, features_config(), "eval")
    assert "group sex=nonbinary has no eval examples" in page
    blocking = EvaluatorConfig.model_validate({**evaluator.model_dump(), "insufficient_data": "block"})
    assert gates.blocking(checks, blocking) == [absent]


# --- case 4: Unicode column names ------------------------------------------------------------------


def test_tf_names_are_safe_distinct_and_leave_ascii_names_alone():
    import re

    from components.common.keras_model import tf_name

    assert tf_name("credit_score") == "credit_score" and tf_name("loan.v2-x") == "loan.v2-x"
    names = ["einkommen_€", "größe", "grösse", "年齢", "credit score", "_private", "a/b", "€"]
    safe = [tf_name(name) for name in names]
    assert all(re.fullmatch(r"[A-Za-z0-9.][A-Za-z0-9_.\-]*", name) for name in safe), safe
    assert len(set(safe)) == len(names)
    assert safe[0].startswith("einkommen_") and safe[1].startswith("groe") and safe[4].startswith("credit_score_")
    assert tf_name("größe") == safe[1]  # stable: the same name always gives the same TF name


UNICODE = {"income": "einkommen_€", "age": "年齢", "credit_score": "credit score", "employment_type": "größe / art"}


@pytest.mark.slow
def test_unicode_column_names_train_and_serve_raw_examples_under_the_users_names(tmp_path):
    # was: Transform failed with "'vocabulary_größe / art_unpruned_vocab_size' is not a valid scope
    # name", and the Trainer with "'credit score_column/' is not a valid root scope name"
    import csv

    import tensorflow as tf

    from components.example_gen.core import execute as run_example_gen_step
    from components.schema_gen.core import execute as schema_gen
    from components.statistics_gen.core import execute as statistics_gen
    from components.trainer.core import execute as trainer
    from components.transform.core import execute as transform
    from components.tuner.core import execute as tuner
    from pipeline.config import (BeamConfig, DataConfig, EvaluatorConfig, FeaturesConfig, TransformConfig,
                                 TunerConfig, ValidationConfig)
    from tests.components.conftest import make_outputs, raw_records, trainer_config

    raw = str(tmp_path / "raw.csv")
    datagen.generate(raw, rows=600, seed=5)
    with open(raw, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    rows[0] = [UNICODE.get(name, name) for name in rows[0]]
    source = str(tmp_path / "unicode.csv")
    with open(source, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    features = FeaturesConfig(label="approved", positive="yes",
                              numeric=["年齢", "einkommen_€", "credit score", "debt_to_income"],
                              categorical=["größe / art", "sex", "race"], sensitive=["sex", "race"])
    config = {"data": DataConfig.model_validate({"source": source, "split": {"key": "applicant_id"}}),
              "features": features, "beam": BeamConfig(), "validation": ValidationConfig(),
              "transform": TransformConfig(), "evaluator": EvaluatorConfig(), "tuner": TunerConfig(),
              "trainer": trainer_config()}
    root = str(tmp_path)
    gen = make_outputs(os.path.join(root, "ExampleGen"), ("examples",))
    run_example_gen_step({}, gen, config)
    stats = make_outputs(os.path.join(root, "StatisticsGen"), ("statistics",), {"statistics_view": "statistics.html"})
    statistics_gen({"examples": gen["examples"]}, stats, config)
    schema = make_outputs(os.path.join(root, "SchemaGen"), ("schema",))
    schema_gen({"statistics": stats["statistics"]}, schema, config)
    graph = make_outputs(os.path.join(root, "Transform"), ("transform_graph", "transformed_examples"))
    transform({"examples": gen["examples"], "schema": schema["schema"]}, graph, config)
    tuned = make_outputs(os.path.join(root, "Tuner"), ("best_hyperparameters",), {"trials": "trials.md"})
    tuner({"transformed_examples": graph["transformed_examples"], "transform_graph": graph["transform_graph"]},
          tuned, config)
    model = make_outputs(os.path.join(root, "Trainer"), ("model", "model_run"))
    figures = trainer({"transformed_examples": graph["transformed_examples"],
                       "transform_graph": graph["transform_graph"], "hyperparameters": tuned["best_hyperparameters"]},
                      model, config)

    assert figures["eval_auc"] > 0.6
    import tensorflow_data_validation as tfdv

    names = {feature.name for feature in tfdv.load_schema_text(os.path.join(schema["schema"], "schema.pbtxt")).feature}
    assert {"年齢", "einkommen_€", "credit score", "größe / art"} <= names  # the user's names where the user reads
    loaded = tf.saved_model.load(model["model"])
    transformed = loaded.signatures["transform_features"].structured_outputs
    assert {"年齢", "einkommen_€", "credit score", "größe / art"} <= set(transformed)
    serve = loaded.signatures["serving_default"]
    example = tf.train.Example.FromString(raw_records(gen["examples"], "eval")[0])
    scores = []
    for income in (5_000.0, 500_000.0):  # a raw tf.Example keyed by the Unicode names, income changed
        example.features.feature["einkommen_€"].float_list.value[:] = [income]
        scores.append(float(serve(examples=tf.constant([example.SerializeToString()]))["scores"][0, 0]))
    assert abs(scores[0] - scores[1]) > 1e-4, "the model does not read the feature named einkommen_€"


def write_statistics(folder, train, evaluated) -> str:
    """An ExampleStatistics artifact holding ``train`` for train and ``evaluated`` for eval and test."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from components.common.artifacts import stats_path

    statistics = str(folder / "statistics")
    for split, dataset in (("train", train), ("eval", evaluated), ("test", evaluated)):
        os.makedirs(os.path.dirname(stats_path(statistics, split)))
        with open(stats_path(statistics, split), "wb") as handle:
            handle.write(statistics_pb2.DatasetFeatureStatisticsList(datasets=[dataset]).SerializeToString())
    return statistics


def test_a_feature_missing_in_every_train_row_stops_schema_gen_with_an_inferred_schema(tmp_path):
    # was: no word of it, and TFDV's inferred schema typed the numeric 'age' as STRING from no values
    from components.schema_gen.core import execute
    from pipeline.config import EvaluatorConfig, ValidationConfig
    from tests.components.conftest import features_config

    stats = split_stats({"female": 50, "male": 50}, leave_out=("age",))
    config = {"features": features_config(), "validation": ValidationConfig(), "evaluator": EvaluatorConfig()}
    statistics = write_statistics(tmp_path, stats, stats)

    with pytest.raises(DataError) as info:
        execute({"statistics": statistics}, {"schema": str(tmp_path / "schema")}, config)

    assert info.value.exit_code == 3
    assert str(info.value) == ("the train split: feature 'age' is missing in every train row: the model learns "
                               "nothing from it; drop it from features or fix the data; an inferred schema cannot "
                               "type such a feature (curate one with validation.schema, or fix the data)")


def test_schema_gen_records_its_warnings_and_figures(tmp_path):
    from components.schema_gen.core import DATA_CHECKS_FILE, execute
    from pipeline.config import EvaluatorConfig, ValidationConfig
    from tests.components.conftest import features_config

    train = split_stats({"female": 45, "male": 50, "other": 5}, income=(4.0, 4.0))
    evaluated = split_stats({"female": 20, "male": 25})
    config = {"features": features_config(), "validation": ValidationConfig(), "evaluator": EvaluatorConfig()}
    lines: list[str] = []

    figures = execute({"statistics": write_statistics(tmp_path, train, evaluated)},
                      {"schema": str(tmp_path / "schema")}, config, lines.append)

    assert figures["constant_features"] == 1 and figures["absent_groups"] == 1 and figures["all_missing_features"] == 0
    assert lines == ["WARNING: feature 'income' has one value in every train row (4): the model learns nothing from "
                     "it and serves arbitrary scores for other values; drop it from features or fix the data",
                     "WARNING: group sex=other has no eval examples: the Evaluator cannot judge it (fairness gates "
                     "and slices leave it out)"]
    recorded = json.load(open(tmp_path / "schema" / DATA_CHECKS_FILE))
    assert recorded["constant"] == {"income": "4"} and recorded["absent_groups"] == {"sex": ["other"]}
