"""ExampleGen's data.csv options: files as other systems write them load with the right options, and
fail without them with a message naming file, line and column and the option that would read them."""

from __future__ import annotations

import gzip
import os

import pytest
from tfx_bsl.coders import example_coder

from components.common.artifacts import split_file
from components.common.tfrecord import read_records
from components.example_gen.core import run_example_gen
from pipeline.config import SPLITS
from pipeline.errors import DataError
from pipeline.loader import load_config

COLUMNS = ["id", "name", "age", "income", "approved"]
ROWS = 60
NAMES = ['"Smith; Jane"', '"Doe, John"', "plain", '"O\'Neil ""Jr"""']
READ_NAMES = ["Smith; Jane", "Doe, John", "plain", 'O\'Neil "Jr"']


def config(folder, source: str, csv: str = ""):
    """A pipeline over ``source`` with the given ``data.csv`` lines (YAML flow or block under csv:)."""
    text = (f"pipeline:\n  name: t\ndata:\n  source: {source}\n  split:\n    key: id\n"
            + (f"  csv: {csv}\n" if csv else "")
            + "features:\n  label: approved\n  positive: \"yes\"\n  numeric: [age, income]\n  categorical: [name]\n")
    path = os.path.join(str(folder), "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return load_config(path)


def load(folder, source: str, csv: str = "") -> dict[str, dict]:
    """Runs ExampleGen; returns every written row by id, each a dict column -> value (None when missing)."""
    loaded = config(folder, source, csv)
    examples = os.path.join(str(folder), "examples")
    run_example_gen(loaded.data, loaded.features, examples)
    rows = {}
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    for split in SPLITS:
        records = list(read_records(split_file(examples, split)))
        for row in decoder.DecodeBatch(records).to_pylist():
            values = {name: (value[0].decode() if isinstance(value[0], bytes) else value[0]) if value else None
                      for name, value in row.items()}
            rows[values["id"]] = values
    return rows


def error(folder, source: str, csv: str = "") -> str:
    loaded = config(folder, source, csv)
    with pytest.raises(DataError) as info:
        run_example_gen(loaded.data, loaded.features, os.path.join(str(folder), "examples"))
    return str(info.value)


def write(path, lines: list[str], encoding: str = "utf-8") -> str:
    data = "".join(lines).encode(encoding)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(data) if str(path).endswith(".gz") else data)
    return str(path)


def row(i: int, sep: str = ",") -> list[str]:
    """Row ``i``'s fields as a plain comma-separated file holds them."""
    age = "" if i % 7 == 0 else str(20 + i)
    return [f"r{i}", f"n{i % 4}", age, f"{1000 + i * 13.5}", "yes" if i % 3 else "no"]


def plain_lines(header: bool = True) -> list[str]:
    return ([",".join(COLUMNS) + "\n"] if header else []) + [",".join(row(i)) + "\n" for i in range(ROWS)]


def expected_row(i: int) -> dict:
    fields = row(i)
    return {"id": fields[0], "name": fields[1], "age": float(fields[2]) if fields[2] else None,
            "income": pytest.approx(float(fields[3])), "approved": fields[4]}


# --- the case: '; ' separators, quoted fields, NA markers, no header ---------------------

EXPORT_OPTIONS = "{delimiter: ';', skip_initial_space: true, null_values: [NA], header: false, columns: [id, name, age, income, approved]}"


@pytest.fixture
def export(tmp_path) -> str:
    """A file as a spreadsheet export writes it: '; ' between fields, quoted names holding ';' and
    ',' and doubled quotes, NA for a missing age, no header line."""
    lines = []
    for i in range(ROWS):
        age = "NA" if i % 7 == 0 else str(20 + i)
        lines.append(f"r{i}; {NAMES[i % 4]}; {age}; {1000 + i * 13.5}; {'yes' if i % 3 else 'no'}\n")
    return write(tmp_path / "export.csv", lines)


def test_export_loads_with_its_options(tmp_path, export):
    rows = load(tmp_path, export, EXPORT_OPTIONS)

    assert len(rows) == ROWS
    for i in range(ROWS):
        assert rows[f"r{i}"] == {"id": f"r{i}", "name": READ_NAMES[i % 4], "age": None if i % 7 == 0 else 20 + i,
                                 "income": pytest.approx(1000 + i * 13.5), "approved": "yes" if i % 3 else "no"}


def test_export_without_options_suggests_them(tmp_path, export):
    message = error(tmp_path, export)

    assert message.startswith(f"{export}: missing column(s) id, approved, age, income, name")
    assert ("line 1 is separated by ';' rather than ',', has a space after each delimiter and looks like data, not "
            "column names") in message
    assert ("set data.csv.delimiter: ';', data.csv.skip_initial_space: true, data.csv.header: false and "
            "data.csv.columns: [...] (its 5 column names in file order)") in message


def test_export_without_skip_initial_space_names_the_line_and_the_option(tmp_path, export):
    message = error(tmp_path, export, "{delimiter: ';', header: false, columns: [id, name, age, income, approved]}")

    # line 1's quoted name "Smith; Jane" is read as two fields
    assert message.startswith(f"{export}: line 1 has 6 fields; expected 5 like data.csv.columns (5 names)")
    assert "a quoted field after a space" in message and "set data.csv.skip_initial_space: true" in message


# --- one option at a time ------------------------------------------------------------------------


def test_semicolon_file_with_header_suggests_the_delimiter(tmp_path):
    source = write(tmp_path / "semi.csv", [line.replace(",", ";") for line in plain_lines()])

    message = error(tmp_path, source)
    rows = load(tmp_path, source, "{delimiter: ';'}")

    assert "line 1 is separated by ';' rather than ','" in message and "set data.csv.delimiter: ';'" in message
    assert "header" not in message.split("line 1")[1]  # the column names are there: no header advice
    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}


def test_tab_separated_file_with_empty_fields_and_spaces(tmp_path):
    lines = ["\t".join(COLUMNS) + "\n"] + ["\t".join(f" {field} " if field else "" for field in row(i)) + "\n"
                                           for i in range(ROWS)]
    source = write(tmp_path / "tabs.csv", lines)

    rows = load(tmp_path, source, "{delimiter: \"\\t\", trim_whitespace: true}")

    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}  # an empty age stays missing, not shifted


def test_headerless_file_loads_with_columns(tmp_path):
    source = write(tmp_path / "plain.csv", plain_lines(header=False))

    rows = load(tmp_path, source, "{header: false, columns: [id, name, age, income, approved]}")

    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}


def test_headerless_file_without_the_option_suggests_header_false(tmp_path):
    source = write(tmp_path / "plain.csv", plain_lines(header=False))

    message = error(tmp_path, source)

    assert "line 1 looks like data, not column names" in message
    assert "set data.csv.header: false and data.csv.columns: [...] (its 5 column names in file order)" in message
    assert "delimiter" not in message


def test_header_false_on_a_file_with_a_header_says_so(tmp_path):
    source = write(tmp_path / "plain.csv", plain_lines())

    message = error(tmp_path, source, "{header: false, columns: [id, name, age, income, approved]}")

    assert message.startswith(f"{source}: line 1: column 'age' has the value 'age'; expected a number")
    assert "line 1 holds the column names: set data.csv.header: true and remove data.csv.columns" in message


def test_declared_column_missing_from_columns(tmp_path):
    source = write(tmp_path / "plain.csv", plain_lines(header=False))

    message = error(tmp_path, source, "{header: false, columns: [id, name, years, income, approved]}")

    assert message == (f"{source}: column(s) age declared in the pipeline YAML (features / data.split.key) are not "
                       "in data.csv.columns (id, name, years, income, approved)")


def test_question_mark_marker_suggests_null_values(tmp_path):
    lines = [line.replace(",,", ",?,") for line in plain_lines()]  # every missing age is '?'
    source = write(tmp_path / "marks.csv", lines)

    message = error(tmp_path, source)
    rows = load(tmp_path, source, "{null_values: ['?', '']}")

    assert message.startswith(f"{source}: line 2: column 'age' has the value '?'; expected a number")
    assert "if '?' marks a missing value, add it to data.csv.null_values (now: ['', 'NA', 'N/A'" in message
    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}


def test_custom_null_values_replace_the_default_ones(tmp_path):
    lines = [line.replace(",,", ",NA,") for line in plain_lines()]
    source = write(tmp_path / "na.csv", lines)

    message = error(tmp_path, source, "{null_values: ['?']}")  # neither NA nor '' is missing now

    assert "line 2: column 'age' has the value 'NA'" in message
    assert "add it to data.csv.null_values (now: ['?'])" in message


def test_marker_with_spaces_suggests_trimming(tmp_path):
    lines = [line.replace(",,", ", NA ,") for line in plain_lines()]
    source = write(tmp_path / "spaced.csv", lines)

    message = error(tmp_path, source)
    rows = load(tmp_path, source, "{trim_whitespace: true}")

    assert "line 2: column 'age' has the value 'NA'" in message
    assert "a missing-value marker with spaces around it: set data.csv.trim_whitespace: true" in message
    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}


def test_spaced_column_names_suggest_trimming(tmp_path):
    lines = plain_lines()
    lines[0] = " , ".join(COLUMNS) + "\n"
    source = write(tmp_path / "spaced-header.csv", lines)

    message = error(tmp_path, source)

    assert "line 1 has spaces around its fields: set data.csv.trim_whitespace: true" in message


@pytest.mark.parametrize("value", ["1,234.5", "3,5", "1.234,5"])
def test_thousands_separators_and_decimal_commas_are_out_of_scope(tmp_path, value):
    lines = plain_lines()
    fields = lines[4].rstrip("\n").split(",")
    fields[3] = f'"{value}"'
    lines[4] = ",".join(fields) + "\n"
    source = write(tmp_path / "locale.csv", lines)

    message = error(tmp_path, source)

    assert message.startswith(f"{source}: line 5: column 'income' has the value '{value}'; expected a number")
    assert "numbers with thousands separators or a decimal comma are not read: write them as 1234.5" in message


def test_no_quoting_keeps_quote_characters(tmp_path):
    lines = plain_lines()
    lines[1:] = [line.replace(",n", ',"n', 1) for line in lines[1:]]  # names read '"n0' with quote: null
    source = write(tmp_path / "quotes.csv", lines)

    rows = load(tmp_path, source, "{quote: null}")

    assert rows["r5"]["name"] == '"n1'


def test_single_quote_as_the_quote_character(tmp_path):
    lines = plain_lines()
    lines[1:] = [line.replace(",n1,", ",'n1, or so',") for line in lines[1:]]
    source = write(tmp_path / "single.csv", lines)

    rows = load(tmp_path, source, '{quote: "\'"}')

    assert rows["r1"]["name"] == "n1, or so" and rows["r2"]["name"] == "n2" and len(rows) == ROWS


# --- comment lines -------------------------------------------------------------------------------


def commented_lines() -> list[str]:
    lines = plain_lines()
    return ["# exported 2026-12-01\n", "# by the loan system\n", lines[0], *lines[1:30], "# page 2\n", *lines[30:]]


def test_comment_lines_are_skipped(tmp_path):
    source = write(tmp_path / "comments.csv.gz", commented_lines())

    rows = load(tmp_path, source, "{comment: '#'}")

    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}


def test_error_lines_count_the_comment_lines(tmp_path):
    lines = commented_lines()
    fields = lines[40].rstrip("\n").split(",")  # file line 41: row 37
    fields[3] = "lots"
    lines[40] = ",".join(fields) + "\n"
    source = write(tmp_path / "comments.csv", lines)

    message = error(tmp_path, source, "{comment: '#'}")

    assert message.startswith(f"{source}: line 41: column 'income' has the value 'lots'")


def test_short_row_after_comments_names_its_file_line(tmp_path):
    lines = commented_lines()
    lines[40] = lines[40].rstrip("\n").rsplit(",", 1)[0] + "\n"
    source = write(tmp_path / "comments.csv", lines)

    message = error(tmp_path, source, "{comment: '#'}")

    assert message == f"{source}: line 41 has 4 fields; expected 5 like the header"


def test_a_comment_line_first_suggests_the_comment_option(tmp_path):
    source = write(tmp_path / "comments.csv", commented_lines())

    message = error(tmp_path, source)

    assert "line 1 starts with '#': if it is a comment, set data.csv.comment: '#'" in message


# --- encodings -----------------------------------------------------------------------------------


def latin1_lines() -> list[str]:
    return [line.replace(",n1,", ",Zürich,").replace(",n2,", ",Genève,") for line in plain_lines()]


@pytest.mark.parametrize("name", ["latin1.csv", "latin1.csv.gz"])
def test_latin1_file_loads_with_its_encoding(tmp_path, name):
    source = write(tmp_path / name, latin1_lines(), encoding="latin-1")

    rows = load(tmp_path, source, "{encoding: latin-1}")

    assert rows["r1"]["name"] == "Zürich" and rows["r2"]["name"] == "Genève"
    assert len(rows) == ROWS


def test_latin1_file_read_as_utf8_names_line_column_and_the_option(tmp_path):
    source = write(tmp_path / "latin1.csv", latin1_lines(), encoding="latin-1")

    message = error(tmp_path, source)

    assert message.startswith(f"{source}: line 3: column 'name' is not valid UTF-8 text (data.csv.encoding: utf-8)")
    assert "set data.csv.encoding to the encoding the file was written in (e.g. latin-1 or cp1252)" in message


def test_latin1_header_read_as_utf8_suggests_the_option(tmp_path):
    lines = plain_lines()
    lines[0] = lines[0].replace("name", "name,Straße")
    lines[1:] = [line.replace(",n", ",x,n", 1) for line in lines[1:]]
    source = write(tmp_path / "latin1-header.csv", lines, encoding="latin-1")

    message = error(tmp_path, source)

    assert message.startswith(f"{source}: line 1: the bytes 0xdf are not utf-8 text")
    assert "set data.csv.encoding" in message


def test_bytes_the_declared_encoding_lacks_name_line_and_column(tmp_path):
    lines = plain_lines()
    source = str(tmp_path / "cp1252.csv")
    with open(source, "wb") as handle:
        handle.write("".join(lines[:5]).encode())
        handle.write(b"r99,caf\x81,30,100.0,yes\n")  # 0x81 is undefined in cp1252
        handle.write("".join(lines[5:]).encode())

    message = error(tmp_path, source, "{encoding: cp1252}")

    assert message.startswith(f"{source}: line 6, column 'name': the bytes 0x81 are not cp1252 text")


def test_utf16_file_with_options(tmp_path):
    lines = [line.replace(",", "; ") for line in commented_lines()]
    source = write(tmp_path / "utf16.csv", lines, encoding="utf-16")

    rows = load(tmp_path, source, "{encoding: utf-16, delimiter: ';', skip_initial_space: true, comment: '#'}")

    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}


# --- streaming: chunk boundaries, quotes inside unquoted values -----------------------------------


def test_long_file_with_comments_and_spaces_counts_lines_across_chunks(tmp_path):
    """Over 1 MB (the text layer's chunk): comment lines and '; ' separators throughout; an error near the
    end names its line in the file."""
    lines = ["; ".join(COLUMNS) + "\n"]
    for i in range(20_000):
        if i % 1000 == 0:
            lines.append(f"# block {i // 1000}\n")
        lines.append("; ".join(row(i)) + f"; {'x' * 40}\n")  # a 41-character sixth column nobody reads
    lines[0] = lines[0].rstrip("\n") + "; notes\n"
    source = write(tmp_path / "long.csv", lines)
    assert os.path.getsize(source) > 1 << 20
    options = "{delimiter: ';', skip_initial_space: true, comment: '#'}"

    rows = load(tmp_path, source, options)
    bad = lines.index("; ".join(row(19_500)) + f"; {'x' * 40}\n")
    lines[bad] = lines[bad].replace(f"; {1000 + 19_500 * 13.5};", "; lots;")
    message = error(tmp_path, write(tmp_path / "bad.csv", lines), options)

    assert len(rows) == 20_000 and rows["r19999"] == expected_row(19_999)
    assert f"bad.csv: line {bad + 1}: column 'income' has the value 'lots'" in message


def test_a_quote_inside_an_unquoted_value_with_skip_initial_space(tmp_path):
    height = "5'11\""  # one quote character, in an unquoted value: the line's quotes do not pair up
    lines = [f"r{i}; {NAMES[i % 4] if i % 5 else height}; {20 + i}; {1000 + i}; {'yes' if i % 3 else 'no'}\n"
             for i in range(ROWS)]
    source = write(tmp_path / "inches.csv", ["id; name; age; income; approved\n"] + lines)

    rows = load(tmp_path, source, "{delimiter: ';', skip_initial_space: true}")

    assert rows["r0"]["name"] == height and rows["r1"]["name"] == READ_NAMES[1] and rows["r4"]["name"] == READ_NAMES[0]
    assert len(rows) == ROWS
