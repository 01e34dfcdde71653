"""ExampleGen reads data.source as a URL (files, folders, globs) through tf.io.gfile, tested offline on
TensorFlow's in-process ram:// file system: the same rows as from a local copy, and the same errors."""

from __future__ import annotations

import gzip
import hashlib
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from components.common.artifacts import split_file
from components.example_gen.sources import cache_files
from pipeline.config import SPLITS
from tests.components.example_gen.test_csv_options import ROWS, config, error, expected_row, load, plain_lines


@pytest.fixture
def bucket(tmp_path) -> str:
    """A ram:// folder of this test's own (the file system lives as long as the process)."""
    url = f"ram://bucket/{tmp_path.name}"
    tf.io.gfile.makedirs(url)
    return url


def put(url: str, data: bytes) -> str:
    with tf.io.gfile.GFile(url, "wb") as handle:
        handle.write(data)
    return url


def text(lines: list[str]) -> bytes:
    return "".join(lines).encode()


def test_csv_file_at_a_url_reads_like_a_local_one(tmp_path, bucket):
    data = text(plain_lines())
    url = put(f"{bucket}/credit.csv", data)

    rows = load(tmp_path, url)

    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}
    with open(tmp_path / "examples" / "split_info.json", encoding="utf-8") as handle:
        info = json.load(handle)
    assert info["sources"] == [url]
    assert info["source_sha256"] == {url: hashlib.sha256(data).hexdigest()}


def test_folder_at_a_url_reads_its_files_not_hidden_ones_or_subfolders(tmp_path, bucket):
    lines = plain_lines()
    put(f"{bucket}/data/part-0.csv", text(lines[:25]))
    put(f"{bucket}/data/part-1.csv.gz", gzip.compress(text(lines[:1] + lines[25:])))
    put(f"{bucket}/data/.part-2.csv", b"not,read\n")
    put(f"{bucket}/data/old/part-0.csv", b"not,read\n")

    rows = load(tmp_path, f"{bucket}/data")
    loaded = config(tmp_path, f"{bucket}/data")

    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}
    assert cache_files({"data": loaded.data}) == [f"{bucket}/data/part-0.csv", f"{bucket}/data/part-1.csv.gz"]


def test_glob_at_a_url(tmp_path, bucket):
    lines = plain_lines()
    put(f"{bucket}/a.csv", text(lines[:30]))
    put(f"{bucket}/b.csv", text(lines[:1] + lines[30:]))
    put(f"{bucket}/notes.txt", b"not read\n")

    rows = load(tmp_path, f"{bucket}/*.csv")

    assert rows == {f"r{i}": expected_row(i) for i in range(ROWS)}


def test_csv_options_at_a_url(tmp_path, bucket):
    lines = ["# exported\n"] + [line.replace(",n1,", ",Zürich,") for line in plain_lines()]
    url = put(f"{bucket}/latin1.csv.gz", gzip.compress("".join(lines).encode("latin-1")))

    rows = load(tmp_path, url, "{encoding: latin-1, comment: '#'}")

    assert rows["r1"]["name"] == "Zürich" and len(rows) == ROWS


def test_parquet_and_tfrecord_at_a_url(tmp_path, bucket):
    local = tmp_path / "credit.csv"
    local.write_bytes(text(plain_lines()))
    sink = pa.BufferOutputStream()
    pq.write_table(pa_csv.read_csv(str(local)), sink)
    parquet_url = put(f"{bucket}/credit.parquet", sink.getvalue().to_pybytes())
    (tmp_path / "p").mkdir()
    (tmp_path / "t").mkdir()

    from_parquet = load(tmp_path / "p", parquet_url)
    examples = str(tmp_path / "p" / "examples")
    records = b"".join(open(split_file(examples, split), "rb").read() for split in SPLITS)  # gzip members
    from_tfrecord = load(tmp_path / "t", put(f"{bucket}/credit.tfrecord.gz", records))

    assert from_parquet == from_tfrecord == {f"r{i}": expected_row(i) for i in range(ROWS)}


def test_truncated_gzip_at_a_url(tmp_path, bucket):
    data = gzip.compress(text(plain_lines() * 40))
    url = put(f"{bucket}/cut.csv.gz", data[: len(data) // 2])

    message = error(tmp_path, url)

    assert message.startswith(f"{url}: the compressed data breaks off or is damaged")


def test_missing_url_file(tmp_path, bucket):
    message = error(tmp_path, f"{bucket}/none.csv")

    assert message == f"data.source: {bucket}/none.csv: no such file; expected a CSV, Parquet or TFRecord file, a folder or a glob"


def test_url_glob_matching_nothing(tmp_path, bucket):
    message = error(tmp_path, f"{bucket}/*.csv")

    assert message == f"data.source: {bucket}/*.csv: no files match"


def test_unknown_scheme(tmp_path):
    message = error(tmp_path, "nosuch://bucket/credit.csv")

    assert message.startswith("data.source: nosuch://bucket/credit.csv: cannot list: ")
    assert "nosuch" in message.split("cannot list: ")[1]
