"""ExampleGen: deterministic splits, every input format giving the same examples, clear errors on bad data."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tfx_bsl.coders import example_coder

from components.common.artifacts import split_file
from components.common.tfrecord import TFRecordWriter, read_records
from components.example_gen.core import execute, run_example_gen
from pipeline import datagen
from pipeline.config import SPLITS
from pipeline.errors import DataError
from pipeline.loader import load_config
from tests.conftest import pipeline_yaml

KEY_SPLIT = "    key: applicant_id\n"
NO_KEY_SPLIT = "    train: 70\n"


# --- helpers -----------------------------------------------------------------------------------


def make_config(folder, source: str, split: str = KEY_SPLIT, extra: str = ""):
    """Loads the conftest pipeline YAML over ``source``, written into ``folder``."""
    path = os.path.join(str(folder), "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(pipeline_yaml(json.dumps(str(source)), split=split, extra=extra))
    return load_config(path)


def run(folder, source: str, split: str = KEY_SPLIT, out: str = "examples", extra: str = ""):
    config = make_config(folder, source, split, extra)
    examples = os.path.join(str(folder), out)
    result = run_example_gen(config.data, config.features, examples)
    return examples, result


def decode(records: list[bytes]) -> pa.RecordBatch:
    return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)


def split_rows(examples: str, split: str) -> list[dict]:
    """The rows of one split, each a dict feature -> list of values (None when missing)."""
    records = list(read_records(split_file(examples, split)))
    return decode(records).to_pylist() if records else []


def rows_by_id(examples: str) -> dict[str, dict[bytes, dict]]:
    out = {}
    for split in SPLITS:
        rows = split_rows(examples, split)
        out[split] = {row["applicant_id"][0]: row for row in rows}
        assert len(out[split]) == len(rows), f"duplicate applicant_id in {split}"
    return out


def ids_by_split(examples: str) -> dict[str, set[bytes]]:
    return {split: set(rows) for split, rows in rows_by_id(examples).items()}


def canonical(row: dict) -> tuple:
    return tuple(sorted((name, None if values is None else tuple(values)) for name, values in row.items()))


def file_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def csv_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return handle.read().splitlines(keepends=True)


def write_text(path, lines: list[str]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)
    return str(path)


# --- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("example_gen_data")


@pytest.fixture(scope="module")
def same_data(data_dir) -> dict[str, str]:
    """The same 2,000 generated rows as CSV, gzip CSV and Parquet."""
    paths = {}
    for ext in (".csv", ".csv.gz", ".parquet"):
        paths[ext] = str(data_dir / f"credit{ext}")
        datagen.generate(paths[ext], rows=2000, seed=3)
    return paths


@pytest.fixture(scope="module")
def big_csv(data_dir) -> str:
    path = str(data_dir / "credit-20k.csv")
    datagen.generate(path, rows=20_000, seed=5)
    return path


@pytest.fixture(scope="module")
def small_lines(data_dir) -> list[str]:
    """300 generated rows as unquoted CSV lines (header first), to build bad files from."""
    path = str(data_dir / "small.csv")
    datagen.generate(path, rows=300, seed=2)
    lines = [line.replace('"', "") for line in csv_lines(path)]  # no value holds a comma or a quote
    assert len(lines) == 301 and len(lines[0].split(",")) == 16
    return lines


def replace_field(line: str, header: list[str], column: str, value: str) -> str:
    fields = line.rstrip("\r\n").split(",")
    fields[header.index(column)] = value
    return ",".join(fields) + "\n"


# --- split determinism -------------------------------------------------------------------------


def test_two_runs_write_the_same_examples_in_the_same_order(tmp_path, credit_csv):
    # Not byte-identical files: tfx_bsl's encoder does not fix the order of features inside a
    # tf.Example, so equal examples may serialise differently. Their content and order are equal.
    first, _ = run(tmp_path, credit_csv, out="first")
    second, _ = run(tmp_path, credit_csv, out="second")

    for split in SPLITS:
        assert [canonical(r) for r in split_rows(first, split)] == [canonical(r) for r in split_rows(second, split)], (
            f"Split-{split} differs between two runs on the same data")


def test_two_runs_put_every_row_in_the_same_split(tmp_path, credit_csv):
    first, _ = run(tmp_path, credit_csv, out="first")
    second, _ = run(tmp_path, credit_csv, out="second")

    first_ids, second_ids = ids_by_split(first), ids_by_split(second)
    assert first_ids == second_ids
    assert sum(len(ids) for ids in first_ids.values()) == 4000


def test_appended_rows_leave_earlier_rows_in_their_split(tmp_path, credit_csv):
    lines = csv_lines(credit_csv)
    before = write_text(tmp_path / "before.csv", lines[:3001])
    after = write_text(tmp_path / "after.csv", lines)

    old = ids_by_split(run(tmp_path, before, out="old")[0])
    new = ids_by_split(run(tmp_path, after, out="new")[0])

    for split in SPLITS:
        assert old[split] <= new[split], f"rows left {split} when rows were appended"
    old_ids = set().union(*old.values())
    added = {split: new[split] - old_ids for split in SPLITS}
    assert sum(len(ids) for ids in added.values()) == 1000
    assert all(added[split] for split in SPLITS)  # the new rows are split too


def test_without_a_key_the_split_is_deterministic(tmp_path, credit_csv):
    first, first_result = run(tmp_path, credit_csv, split=NO_KEY_SPLIT, out="first")
    second, second_result = run(tmp_path, credit_csv, split=NO_KEY_SPLIT, out="second")

    assert first_result.rows == second_result.rows
    for split in SPLITS:
        rows_first = Counter(canonical(row) for row in split_rows(first, split))
        rows_second = Counter(canonical(row) for row in split_rows(second, split))
        assert rows_first == rows_second, f"{split} holds different rows on the second run"


def test_without_a_key_the_key_column_is_not_written(tmp_path, credit_csv):
    examples, result = run(tmp_path, credit_csv, split=NO_KEY_SPLIT)

    assert sum(result.rows.values()) == 4000
    names = set(decode(list(read_records(split_file(examples, "train")))).schema.names)
    assert names == set(datagen.NUMERIC) | set(datagen.CATEGORICAL) | {"approved"}


@pytest.mark.parametrize("ratios, split", [
    ((70, 15, 15), KEY_SPLIT),
    ((80, 10, 10), "    train: 80\n    eval: 10\n    test: 10\n" + KEY_SPLIT),
    ((70, 15, 15), NO_KEY_SPLIT),
], ids=["70-15-15", "80-10-10", "70-15-15-no-key"])
def test_split_sizes_follow_the_ratios(tmp_path, big_csv, ratios, split):
    _, result = run(tmp_path, big_csv, split=split)

    total = sum(result.rows.values())
    assert total == 20_000
    for name, percent in zip(SPLITS, ratios):
        share = 100 * result.rows[name] / total
        assert abs(share - percent) <= 2, f"{name}: {share:.1f}% of rows, configured {percent}%"


# --- outputs -----------------------------------------------------------------------------------


def test_split_info_and_figures_match_the_files(tmp_path, credit_csv):
    config = make_config(tmp_path, credit_csv)
    examples = str(tmp_path / "examples")

    figures = execute({}, {"examples": examples}, {"data": config.data, "features": config.features})

    with open(os.path.join(examples, "split_info.json"), encoding="utf-8") as handle:
        info = json.load(handle)
    counted = {split: sum(1 for _ in read_records(split_file(examples, split))) for split in SPLITS}
    assert {split: info["splits"][split]["rows"] for split in SPLITS} == counted
    assert {split: figures[f"rows_{split}"] for split in SPLITS} == counted
    assert figures["rows"] == sum(counted.values()) == 4000
    assert figures["files"] == 1
    for split in SPLITS:
        assert os.path.join(examples, info["splits"][split]["file"]) == split_file(examples, split)
    assert info["ratios"] == {"train": 70, "eval": 15, "test": 15}
    assert info["split_key"] == "applicant_id"
    assert info["sources"] == [credit_csv]
    labels = Counter(row["approved"][0].decode() for split in SPLITS for row in split_rows(examples, split))
    assert info["label_counts"] == dict(labels)
    assert set(labels) == {"yes", "no"}


def test_feature_types_values_and_missing_values(tmp_path, same_data):
    source = same_data[".csv"]
    table = pq.read_table(same_data[".parquet"]).to_pylist()  # the same rows, with real nulls
    expected = {row["applicant_id"].encode(): row for row in table}
    examples, _ = run(tmp_path, source)

    written = {}
    for split in SPLITS:
        batch = decode(list(read_records(split_file(examples, split))))
        for name in datagen.NUMERIC:
            value_type = batch.schema.field(name).type.value_type
            assert value_type == pa.float32(), f"{name} is {value_type}, expected a float_list"
        for name in (*datagen.CATEGORICAL, "approved", "applicant_id"):
            value_type = batch.schema.field(name).type.value_type
            assert pa.types.is_large_binary(value_type), f"{name} is {value_type}, expected a bytes_list"
        written.update({row["applicant_id"][0]: row for row in batch.to_pylist()})

    assert written.keys() == expected.keys()
    missing_seen = Counter()
    for key, row in written.items():
        source_row = expected[key]
        for name in datagen.NUMERIC:
            if source_row[name] is None:
                assert not row[name], f"{key!r} {name}: missing in the CSV, written as {row[name]}"
                missing_seen[name] += 1
            else:
                assert row[name] == [pytest.approx(source_row[name], rel=1e-6)]
        for name in (*datagen.CATEGORICAL, "approved"):
            if source_row[name] is None:
                assert not row[name], f"{key!r} {name}: missing in the CSV, written as {row[name]}"
                missing_seen[name] += 1
            else:
                assert row[name] == [source_row[name].encode()]
    assert set(missing_seen) == set(datagen.NULLABLE)  # the test did see missing values


def test_undeclared_columns_are_not_written(tmp_path, credit_csv):
    extra = "features:\n  label: approved\n  positive: \"yes\"\n  numeric: [age]\n  categorical: [sex]\n"
    config_text = (f"pipeline:\n  name: t\ndata:\n  source: {credit_csv}\n{extra}")
    path = tmp_path / "pipeline.yaml"
    path.write_text(config_text)
    config = load_config(path)

    run_example_gen(config.data, config.features, str(tmp_path / "examples"))

    rows = split_rows(str(tmp_path / "examples"), "train")
    assert rows and all(set(row) == {"age", "sex", "approved"} for row in rows)


# --- formats -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_reference(tmp_path_factory, same_data):
    folder = tmp_path_factory.mktemp("reference")
    return rows_by_id(run(folder, same_data[".csv"])[0])


@pytest.mark.parametrize("ext", [".csv.gz", ".parquet"])
def test_formats_give_the_same_rows_per_split(tmp_path, same_data, csv_reference, ext):
    examples, result = run(tmp_path, same_data[ext])

    assert rows_by_id(examples) == csv_reference
    assert result.rows == {split: len(rows) for split, rows in csv_reference.items()}


def test_folder_of_csv_parts_gives_the_same_rows(tmp_path, same_data, csv_reference):
    lines = csv_lines(same_data[".csv"])
    folder = tmp_path / "parts"
    folder.mkdir()
    write_text(folder / "part-0.csv", lines[:800])
    write_text(folder / "part-1.csv", lines[:1] + lines[800:])

    examples, result = run(tmp_path, str(folder))

    assert rows_by_id(examples) == csv_reference
    assert len(result.files) == 2


def test_tfrecord_source_gives_the_same_rows_per_split(tmp_path, same_data, csv_reference):
    produced, _ = run(tmp_path, same_data[".csv"], out="from-csv")
    source = str(tmp_path / "examples.tfrecord.gz")
    with TFRecordWriter(source) as writer:
        for split in SPLITS:
            writer.write_many(list(read_records(split_file(produced, split))))

    examples, result = run(tmp_path, source, out="from-tfrecord")

    assert rows_by_id(examples) == csv_reference
    assert sum(result.rows.values()) == 2000


def test_tfrecord_source_is_written_like_csv(tmp_path):
    """Undeclared features are dropped and numeric features become float_list, as for CSV input."""
    count = 200
    ids = [f"r{i}" for i in range(count)]
    ages = [20 + i % 50 for i in range(count)]
    cities = [f"c{i % 4}" for i in range(count)]
    labels = ["yes" if i % 3 else "no" for i in range(count)]
    notes = [f"n{i}" for i in range(count)]
    csv_source = write_text(tmp_path / "rows.csv", ["id,age,city,approved,notes\n"] + [
        f"{row[0]},{row[1]},{row[2]},{row[3]},{row[4]}\n" for row in zip(ids, ages, cities, labels, notes)])

    def as_list(values, kind):
        return pa.array([[v.encode() if isinstance(v, str) else v] for v in values], pa.list_(kind))

    batch = pa.RecordBatch.from_arrays(
        [as_list(ids, pa.binary()), as_list(ages, pa.int64()), as_list(cities, pa.binary()),
         as_list(labels, pa.binary()), as_list(notes, pa.binary())],
        names=["id", "age", "city", "approved", "notes"])
    tfrecord_source = str(tmp_path / "rows.tfrecord.gz")
    with TFRecordWriter(tfrecord_source) as writer:
        writer.write_many(example_coder.RecordBatchToExamples(batch))

    outputs = {}
    for name, source in (("csv", csv_source), ("tfrecord", tfrecord_source)):
        config_path = tmp_path / f"{name}.yaml"
        config_path.write_text(f"pipeline:\n  name: t\ndata:\n  source: {source}\n  split:\n    key: id\n"
                               "features:\n  label: approved\n  positive: \"yes\"\n  numeric: [age]\n"
                               "  categorical: [city]\n")
        config = load_config(config_path)
        outputs[name] = str(tmp_path / name)
        run_example_gen(config.data, config.features, outputs[name])

    for split in SPLITS:
        from_csv = decode(list(read_records(split_file(outputs["csv"], split))))
        from_tfrecord = decode(list(read_records(split_file(outputs["tfrecord"], split))))
        assert sorted(from_tfrecord.schema.names) == ["age", "approved", "city", "id"]
        assert from_tfrecord.schema.field("age").type.value_type == pa.float32()
        key = lambda row: row["id"]  # noqa: E731
        assert sorted(from_tfrecord.to_pylist(), key=key) == sorted(from_csv.to_pylist(), key=key)


# --- bad input ---------------------------------------------------------------------------------


def expect_data_error(folder, source: str, split: str = KEY_SPLIT) -> str:
    config = make_config(folder, source, split)
    with pytest.raises(DataError) as info:
        run_example_gen(config.data, config.features, str(folder / "examples"))
    return str(info.value)


def test_missing_file(tmp_path):
    source = str(tmp_path / "no-such.csv")

    message = expect_data_error(tmp_path, source)

    assert source in message and "no such file" in message


def test_glob_matching_nothing(tmp_path):
    (tmp_path / "data").mkdir()
    source = str(tmp_path / "data" / "*.csv")

    message = expect_data_error(tmp_path, source)

    assert source in message and "no files match" in message


def test_empty_folder(tmp_path):
    (tmp_path / "data").mkdir()
    source = str(tmp_path / "data")

    message = expect_data_error(tmp_path, source)

    assert source in message and "no files match" in message


@pytest.mark.parametrize("name, content", [("empty.csv", b""), ("empty.csv.gz", gzip.compress(b""))])
def test_empty_file(tmp_path, name, content):
    source = tmp_path / name
    source.write_bytes(content)

    message = expect_data_error(tmp_path, str(source))

    assert str(source) in message and "empty" in message


def test_header_only(tmp_path, small_lines):
    source = write_text(tmp_path / "header.csv", small_lines[:1])

    message = expect_data_error(tmp_path, source)

    assert source in message and "no rows" in message


def test_absent_label_column(tmp_path, small_lines):
    header = small_lines[0].rstrip("\n").split(",")
    keep = [i for i, name in enumerate(header) if name != "approved"]
    lines = [",".join(line.rstrip("\n").split(",")[i] for i in keep) + "\n" for line in small_lines]
    source = write_text(tmp_path / "no-label.csv", lines)

    message = expect_data_error(tmp_path, source)

    assert source in message and "approved" in message and "missing column" in message


def test_row_with_wrong_number_of_fields(tmp_path, small_lines):
    lines = list(small_lines)
    lines[41] = lines[41].rstrip("\n").rsplit(",", 1)[0] + "\n"  # line 42 lacks its last field
    source = write_text(tmp_path / "short-row.csv", lines)

    message = expect_data_error(tmp_path, source)

    assert source in message
    assert "line 42" in message and "15 fields" in message and "expected 16" in message


def test_non_numeric_value_in_numeric_column(tmp_path, small_lines):
    header = small_lines[0].rstrip("\n").split(",")
    lines = list(small_lines)
    lines[56] = replace_field(lines[56], header, "credit_score", "unknown")  # line 57
    source = write_text(tmp_path / "bad-number.csv", lines)

    message = expect_data_error(tmp_path, source)

    assert source in message
    assert "'credit_score'" in message, message
    assert "line 57" in message, message
    assert "'unknown'" in message


def test_non_numeric_value_after_an_undeclared_column(tmp_path, small_lines):
    # the file has a column the pipeline does not use, before the bad one
    lines = [("notes," if i == 0 else "n/a,") + line for i, line in enumerate(small_lines)]
    header = lines[0].rstrip("\n").split(",")
    lines[119] = replace_field(lines[119], header, "income", "lots")  # line 120
    source = write_text(tmp_path / "bad-number.csv", lines)

    message = expect_data_error(tmp_path, source)

    assert source in message
    assert "'income'" in message, message
    assert "line 120" in message, message


def test_unknown_extension(tmp_path, small_lines):
    source = write_text(tmp_path / "credit.txt", small_lines)

    message = expect_data_error(tmp_path, source)

    assert source in message and "unknown data format" in message


def test_declared_format_overrides_the_extension(tmp_path, small_lines):
    source = write_text(tmp_path / "credit.txt", small_lines)
    config = make_config(tmp_path, source)
    data = config.data.model_copy(update={"format": "csv"})

    result = run_example_gen(data, config.features, str(tmp_path / "examples"))

    assert sum(result.rows.values()) == 300


def test_label_never_takes_the_positive_value(tmp_path, small_lines):
    header = small_lines[0].rstrip("\n").split(",")
    lines = small_lines[:1] + [replace_field(line, header, "approved", "no" if i % 2 else "maybe")
                               for i, line in enumerate(small_lines[1:])]
    source = write_text(tmp_path / "no-positive.csv", lines)

    message = expect_data_error(tmp_path, source)

    assert source in message
    assert "never takes the positive value 'yes'" in message
    assert "'no'" in message and "'maybe'" in message  # shows the values seen


def test_label_with_one_class_only(tmp_path, small_lines):
    header = small_lines[0].rstrip("\n").split(",")
    lines = small_lines[:1] + [replace_field(line, header, "approved", "yes") for line in small_lines[1:]]
    source = write_text(tmp_path / "all-yes.csv", lines)

    message = expect_data_error(tmp_path, source)

    assert source in message and "one class only" in message


def test_too_few_rows_for_every_split_is_an_error_not_an_empty_split(tmp_path, small_lines):
    yes = next(line for line in small_lines[1:] if line.rstrip().endswith(",yes"))
    no = next(line for line in small_lines[1:] if line.rstrip().endswith(",no"))
    source = write_text(tmp_path / "two-rows.csv", [small_lines[0], yes, no])  # two rows cannot fill three splits

    message = expect_data_error(tmp_path, source)

    assert source in message and "got no rows out of 2" in message and "70/15/15" in message


def test_parquet_numeric_column_holding_strings(tmp_path, same_data):
    table = pq.read_table(same_data[".parquet"])
    index = table.schema.get_field_index("income")
    table = table.set_column(index, "income", table.column("income").cast(pa.string()))
    source = str(tmp_path / "string-income.parquet")
    pq.write_table(table, source)

    message = expect_data_error(tmp_path, source)

    assert source in message and "'income'" in message and "string" in message


def test_not_a_parquet_file(tmp_path, small_lines):
    source = write_text(tmp_path / "credit.parquet", small_lines)

    message = expect_data_error(tmp_path, source)

    assert source in message and "Parquet" in message


def test_corrupt_tfrecord_source(tmp_path, credit_csv):
    produced, _ = run(tmp_path, credit_csv, out="produced")
    data = gzip.decompress(file_bytes(split_file(produced, "train")))
    source = tmp_path / "cut.tfrecord"
    source.write_bytes(data[: len(data) // 2])

    message = expect_data_error(tmp_path, str(source))

    assert str(source) in message and "truncated" in message


def test_empty_key_value(tmp_path, small_lines):
    header = small_lines[0].rstrip("\n").split(",")
    lines = list(small_lines)
    lines[10] = replace_field(lines[10], header, "applicant_id", "")
    source = write_text(tmp_path / "no-id.csv", lines)

    message = expect_data_error(tmp_path, source)

    assert source in message and "'applicant_id'" in message and "empty" in message


def test_empty_key_value_is_fine_without_a_key(tmp_path, small_lines):
    header = small_lines[0].rstrip("\n").split(",")
    lines = list(small_lines)
    lines[10] = replace_field(lines[10], header, "applicant_id", "")
    source = write_text(tmp_path / "no-id.csv", lines)

    _, result = run(tmp_path, source, split=NO_KEY_SPLIT)

    assert sum(result.rows.values()) == 300


def test_csv_with_a_byte_order_mark_reads_like_one_without(tmp_path, small_lines):
    # spreadsheet programs save "CSV UTF-8" with a BOM before the header
    plain = write_text(tmp_path / "plain.csv", small_lines)
    with open(tmp_path / "bom.csv", "w", encoding="utf-8-sig", newline="") as handle:
        handle.writelines(small_lines)

    expected = rows_by_id(run(tmp_path, plain, out="plain")[0])
    assert rows_by_id(run(tmp_path, str(tmp_path / "bom.csv"), out="bom")[0]) == expected
