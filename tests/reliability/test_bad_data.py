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


def write_yaml(folder, source: str, extra: str = "") -> str:
    path = os.path.join(str(folder), "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(pipeline_yaml(json.dumps(str(source)), extra=extra))
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
