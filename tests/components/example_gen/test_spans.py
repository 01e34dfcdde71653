"""Data arriving in spans: ``{SPAN}`` in data.source, ExampleGen reading the latest data.window spans,
what split_info.json records of them, a row's split whichever spans are read with it, and the cache
key following the spans (a new span makes ExampleGen run again). Local paths and ram:// URLs."""

from __future__ import annotations

import json
import os

import pyarrow.csv as pa_csv
import pytest

from components.example_gen.core import run_example_gen
from components.example_gen.sources import Span, cache_files, latest_span, resolve_spans, span_of, source_files
from pipeline import datagen
from pipeline.config import SPLITS
from pipeline.errors import ConfigError, DataError
from pipeline.files import file_sha256
from pipeline.loader import load_config
from pipeline.specs import SPLIT_INFO_FILE
from tests.components.example_gen.test_example_gen import canonical, split_rows
from tests.conftest import pipeline_yaml

ROWS_PER_SPAN = 400
NO_KEY = "    train: 70\n"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """1,600 generated rows: span i (1-based) of the tests holds rows (i-1)*400 .. i*400-1."""
    path = tmp_path_factory.mktemp("spans") / "all.csv"
    datagen.generate(path, rows=4 * ROWS_PER_SPAN, seed=9)
    return pa_csv.read_csv(path)


def write_span(table, path, index: int) -> str:
    """Writes the rows of span ``index`` (1-based) to the CSV ``path``."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    pa_csv.write_csv(table.slice((index - 1) * ROWS_PER_SPAN, ROWS_PER_SPAN), str(path))
    return str(path)


def load(folder, source: str, window: int | None = None, split: str = "    key: applicant_id\n",
         name: str = "pipeline.yaml"):
    text = pipeline_yaml(json.dumps(source), split=split)
    if window is not None:
        text = text.replace("  split:\n", f"  window: {window}\n  split:\n")
    path = os.path.join(str(folder), name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return load_config(path)


def config_error(folder, source: str, window) -> str:
    with pytest.raises(ConfigError) as info:
        load(folder, source, window)
    return str(info.value)


def example_gen(folder, config, out: str = "examples"):
    lines: list[str] = []
    examples = os.path.join(str(folder), out)
    result = run_example_gen(config.data, config.features, examples, lines.append)
    with open(os.path.join(examples, SPLIT_INFO_FILE), encoding="utf-8") as handle:
        return result, json.load(handle), lines, examples


def split_of_rows(examples: str) -> dict[tuple, str]:
    """Each written row (its values) -> the split it is in."""
    return {canonical(row): split for split in SPLITS for row in split_rows(examples, split)}


# --- the config ---------------------------------------------------------------------------------


def test_window_defaults_to_1_and_takes_a_span_pattern(tmp_path):
    assert load(tmp_path, "data/credit.csv").data.window == 1
    config = load(tmp_path, "data/span-{SPAN}/*.csv", window=3)
    assert config.data.window == 3
    assert config.data.source == str(tmp_path / "data" / "span-{SPAN}" / "*.csv")


def test_a_window_without_span_in_the_source_is_a_config_error_naming_data_window(tmp_path):
    message = config_error(tmp_path, "data/credit.csv", 2)
    assert "data.window: window 2 takes the latest spans of a data.source holding {SPAN}" in message
    assert "data/span-{SPAN}/*.csv" in message


def test_span_twice_in_the_source_is_a_config_error_naming_data_source(tmp_path):
    message = config_error(tmp_path, "data/{SPAN}/credit-{SPAN}.csv", 1)
    assert "data.source: holds {SPAN} 2 times; expected it at most once" in message


@pytest.mark.parametrize("window, expected", [(0, "greater than or equal to 1"), ('"2"', "valid integer"),
                                              (1.5, "valid integer"), ("true", "valid integer")])
def test_window_is_a_strict_positive_integer(tmp_path, window, expected):
    message = config_error(tmp_path, "data/span-{SPAN}.csv", window)
    assert "data.window:" in message and expected in message


# --- which spans ---------------------------------------------------------------------------------


def test_the_latest_window_spans_by_number_zero_padded_names_included(tmp_path, table):
    for name, index in (("span-1", 1), ("span-002", 2), ("span-10", 3)):
        write_span(table, tmp_path / "data" / name / "part-0.csv", index)
    os.makedirs(tmp_path / "data" / "span-x")  # not a number: not a span
    write_span(table, tmp_path / "data" / "span-4-old" / "part-0.csv", 4)  # not only a number: not a span
    write_span(table, tmp_path / "data" / "span-11" / "notes.txt", 4)  # no file of the pattern: not a span
    data = tmp_path / "data"

    config = load(tmp_path, "data/span-{SPAN}/*.csv", window=2)

    assert resolve_spans(config.data) == [
        Span(2, f"{data}/span-002/*.csv", (f"{data}/span-002/part-0.csv",)),
        Span(10, f"{data}/span-10/*.csv", (f"{data}/span-10/part-0.csv",)),
    ]
    assert latest_span(config.data).number == 10
    assert source_files(config.data) == cache_files({"data": config.data}) == [f"{data}/span-002/part-0.csv",
                                                                              f"{data}/span-10/part-0.csv"]
    assert [span.number for span in resolve_spans(load(tmp_path, "data/span-{SPAN}/*.csv", window=5).data)] == [1, 2, 10]


def test_spans_as_files_and_as_folders(tmp_path, table):
    write_span(table, tmp_path / "files" / "credit-9.csv", 1)
    write_span(table, tmp_path / "files" / "credit-12.csv", 2)
    write_span(table, tmp_path / "folders" / "span-3" / "a.csv", 1)
    write_span(table, tmp_path / "folders" / "span-3" / "b.csv", 2)
    write_span(table, tmp_path / "folders" / "span-3" / ".hidden.csv", 3)

    files = resolve_spans(load(tmp_path, "files/credit-{SPAN}.csv", window=2).data)
    assert [(span.number, span.files) for span in files] == [(9, (str(tmp_path / "files" / "credit-9.csv"),)),
                                                             (12, (str(tmp_path / "files" / "credit-12.csv"),))]
    [folder] = resolve_spans(load(tmp_path, "folders/span-{SPAN}").data)
    assert folder == Span(3, str(tmp_path / "folders" / "span-3"),
                          (str(tmp_path / "folders" / "span-3" / "a.csv"), str(tmp_path / "folders" / "span-3" / "b.csv")))


def test_a_glob_after_the_span_does_not_take_other_spans_files(tmp_path, table):
    write_span(table, tmp_path / "credit-1.csv", 1)
    write_span(table, tmp_path / "credit-1-part2.csv", 2)
    write_span(table, tmp_path / "credit-12.csv", 3)

    spans = resolve_spans(load(tmp_path, "credit-{SPAN}*.csv", window=2).data)

    assert [(span.number, [os.path.basename(f) for f in span.files]) for span in spans] == [
        (1, ["credit-1-part2.csv", "credit-1.csv"]), (12, ["credit-12.csv"])]


def test_two_names_of_one_span_number_are_an_error_naming_both(tmp_path, table):
    write_span(table, tmp_path / "data" / "span-7" / "part-0.csv", 1)
    write_span(table, tmp_path / "data" / "span-007" / "part-0.csv", 2)

    with pytest.raises(DataError) as info:
        resolve_spans(load(tmp_path, "data/span-{SPAN}/*.csv").data)

    message = str(info.value)
    assert message.startswith(f"data.source: {tmp_path}/data/span-{{SPAN}}/*.csv: ")
    assert f"{tmp_path}/data/span-007/part-0.csv and {tmp_path}/data/span-7/part-0.csv are both span 7" in message


def test_no_span_is_an_error_naming_data_source_and_the_pattern(tmp_path, table):
    write_span(table, tmp_path / "data" / "credit.csv", 1)
    config = load(tmp_path, "data/span-{SPAN}/*.csv")

    for call in (resolve_spans, latest_span, source_files):
        with pytest.raises(DataError) as info:
            call(config.data)
        assert str(info.value).startswith(f"data.source: {tmp_path}/data/span-{{SPAN}}/*.csv: no span matches "
                                          f"(looked for {tmp_path}/data/span-*/*.csv)")
    with pytest.raises(DataError, match="no span matches"):
        run_example_gen(config.data, config.features, str(tmp_path / "examples"))
    assert not os.path.exists(tmp_path / "examples" / SPLIT_INFO_FILE)


def test_without_span_nothing_changes(tmp_path, table):
    path = write_span(table, tmp_path / "credit.csv", 1)
    config = load(tmp_path, "credit.csv")

    assert resolve_spans(config.data) == [] and span_of(config.data, path) is None
    with pytest.raises(DataError, match="holds no {SPAN}"):
        latest_span(config.data)
    result, info, lines, _ = example_gen(tmp_path, config)

    assert "spans" not in info and "window" not in info and result.spans is None
    assert info["sources"] == [path] and info["source_sha256"] == {path: file_sha256(path)}
    assert not any("span" in line for line in lines)


def test_span_of_names_the_span_of_a_file_or_folder(tmp_path, monkeypatch):
    config = load(tmp_path, "data/span-{SPAN}/*.csv")
    data = tmp_path / "data"
    assert span_of(config.data, str(data / "span-3" / "part-0.csv")) == 3
    assert span_of(config.data, str(data / "span-003")) == 3
    assert span_of(config.data, str(data / "span-3") + "/") == 3
    assert span_of(config.data, str(data / "span-3" / "*.csv")) == 3
    assert span_of(config.data, str(data / "span-3" / "notes.txt")) is None
    assert span_of(config.data, str(data / "span-3" / "old" / "part-0.csv")) is None
    assert span_of(config.data, str(data / "span-x" / "part-0.csv")) is None
    assert span_of(config.data, str(tmp_path / "elsewhere" / "span-3" / "part-0.csv")) is None
    monkeypatch.chdir(tmp_path)
    assert span_of(config.data, "data/span-4/part-0.csv") == 4
    folders = load(tmp_path, "data/span-{SPAN}", name="folders.yaml")
    assert span_of(folders.data, str(data / "span-5" / "part-0.csv")) == 5
    assert span_of(folders.data, str(data / "span-5")) == 5
    files = load(tmp_path, "data/credit-{SPAN}.csv.gz", name="files.yaml")
    assert span_of(files.data, str(data / "credit-0042.csv.gz")) == 42
    assert span_of(files.data, str(data / "credit-42.csv")) is None


# --- ExampleGen over spans ---------------------------------------------------------------------


def test_example_gen_records_each_span_it_reads(tmp_path, table):
    paths = [write_span(table, tmp_path / "data" / f"span-{i}" / "part-0.csv", i) for i in (1, 2, 3)]
    extra = write_span(table, tmp_path / "data" / "span-3" / "part-1.csv", 4)
    config = load(tmp_path, "data/span-{SPAN}/*.csv", window=2)

    result, info, lines, _ = example_gen(tmp_path, config)

    data = tmp_path / "data"
    assert info["window"] == 2
    assert info["spans"] == [
        {"number": 2, "source": f"{data}/span-2/*.csv", "files": [paths[1]], "rows": ROWS_PER_SPAN,
         "sha256": {paths[1]: file_sha256(paths[1])}},
        {"number": 3, "source": f"{data}/span-3/*.csv", "files": [paths[2], extra], "rows": 2 * ROWS_PER_SPAN,
         "sha256": {paths[2]: file_sha256(paths[2]), extra: file_sha256(extra)}},
    ]
    assert result.spans == info["spans"]
    assert info["sources"] == [paths[1], paths[2], extra]
    assert info["source_sha256"] == {path: file_sha256(path) for path in info["sources"]}
    assert sum(split["rows"] for split in info["splits"].values()) == 3 * ROWS_PER_SPAN
    assert "reading spans 2-3 (window 2): 1,200 rows" in lines


def test_a_window_larger_than_the_spans_reads_them_all_and_says_so(tmp_path, table):
    for i in (4, 6):
        write_span(table, tmp_path / "data" / f"credit-{i}.csv", i // 2)
    config = load(tmp_path, "data/credit-{SPAN}.csv", window=3)

    _, info, lines, _ = example_gen(tmp_path, config)

    assert [span["number"] for span in info["spans"]] == [4, 6]
    assert f"data.window is 3 but {tmp_path}/data/credit-{{SPAN}}.csv has 2 spans: reading them all" in lines
    assert "reading spans 4, 6 (window 3): 800 rows" in lines


@pytest.mark.parametrize("split", ["    key: applicant_id\n", NO_KEY], ids=["key", "whole-row"])
def test_a_row_lands_in_the_same_split_whichever_spans_are_in_the_window(tmp_path, table, split):
    for i in (1, 2):
        write_span(table, tmp_path / "data" / f"span-{i}" / "part.csv", i)
    config = load(tmp_path, "data/span-{SPAN}/*.csv", window=2, split=split)
    _, before, _, first = example_gen(tmp_path, config, out="before")
    write_span(table, tmp_path / "data" / "span-3" / "part.csv", 3)  # a new span arrives: the window is 2-3
    _, after, _, second = example_gen(tmp_path, config, out="after")
    alone = load(tmp_path, "data/span-{SPAN}/*.csv", window=1, split=split, name="alone.yaml")
    _, _, _, third = example_gen(tmp_path, alone, out="alone")  # span 3 alone

    assert [s["number"] for s in before["spans"]] == [1, 2] and [s["number"] for s in after["spans"]] == [2, 3]
    splits_before, splits_after, splits_alone = split_of_rows(first), split_of_rows(second), split_of_rows(third)
    span_2 = set(splits_before) & set(splits_after)
    span_3 = set(splits_alone)
    assert len(span_2) == ROWS_PER_SPAN and len(span_3) == ROWS_PER_SPAN
    assert {row: splits_before[row] for row in span_2} == {row: splits_after[row] for row in span_2}
    assert {row: splits_after[row] for row in span_3} == splits_alone
    assert set(splits_before.values()) == set(SPLITS)


def test_a_new_span_changes_the_cache_key_and_example_gen_runs_again(tmp_path, table):
    from pipeline.runner import run_pipeline

    for i in (1, 2):
        write_span(table, tmp_path / "data" / f"span-{i}" / "part.csv", i)
    config = load(tmp_path, "data/span-{SPAN}/*.csv", window=2)
    config_file = str(tmp_path / "pipeline.yaml")
    before = cache_files({"data": config.data})
    lines: list[str] = []

    first = run_pipeline(config, config_file, until="ExampleGen", echo=lines.append)
    again = run_pipeline(config, config_file, until="ExampleGen", echo=lines.append)
    write_span(table, tmp_path / "data" / "span-3" / "part.csv", 3)
    after = cache_files({"data": config.data})
    new_span = run_pipeline(config, config_file, until="ExampleGen", echo=lines.append)

    assert before == [str(tmp_path / "data" / f"span-{i}" / "part.csv") for i in (1, 2)]
    assert after == [str(tmp_path / "data" / f"span-{i}" / "part.csv") for i in (2, 3)]
    assert [run.outcome("ExampleGen").state for run in (first, again, new_span)] == ["executed", "cached", "executed"]
    assert any("reading spans 1-2 (window 2): 800 rows" in line for line in lines)
    assert any("reading spans 2-3 (window 2): 800 rows" in line for line in lines)


# --- URLs ----------------------------------------------------------------------------------------


def test_spans_at_a_url(tmp_path, table):
    import tensorflow as tf

    bucket = f"ram://bucket/{tmp_path.name}"

    def put(url: str, index: int) -> str:
        local = write_span(table, tmp_path / "local" / f"{index}.csv", index)
        with open(local, "rb") as source, tf.io.gfile.GFile(url, "wb") as target:
            target.write(source.read())
        return url

    put(f"{bucket}/span-1/part-0.csv", 1)
    second = put(f"{bucket}/span-02/part-0.csv", 2)
    third = put(f"{bucket}/span-3/part-0.csv", 3)
    folders = load(tmp_path, f"{bucket}/span-{{SPAN}}", window=2, name="folders.yaml")
    globs = load(tmp_path, f"{bucket}/span-{{SPAN}}/*.csv", window=2, name="globs.yaml")

    assert [(s.number, s.source, s.files) for s in resolve_spans(folders.data)] == [
        (2, f"{bucket}/span-02", (second,)), (3, f"{bucket}/span-3", (third,))]
    assert [(s.number, s.files) for s in resolve_spans(globs.data)] == [(2, (second,)), (3, (third,))]
    assert latest_span(globs.data).number == 3
    assert span_of(globs.data, third) == 3 and span_of(folders.data, f"{bucket}/span-02/") == 2
    assert span_of(globs.data, f"{bucket}/other/part-0.csv") is None
    _, info, lines, _ = example_gen(tmp_path, globs)
    assert [(s["number"], s["files"], s["rows"]) for s in info["spans"]] == [(2, [second], ROWS_PER_SPAN),
                                                                            (3, [third], ROWS_PER_SPAN)]
    assert info["spans"][1]["sha256"] == {third: file_sha256(third)}
    assert "reading spans 2-3 (window 2): 800 rows" in lines
