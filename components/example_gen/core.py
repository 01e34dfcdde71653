"""ExampleGen: reads the data source streaming and writes gzip TFRecords of tf.Example per split.

Rows are read as Arrow record batches (pyarrow's CSV reader with the ``data.csv`` options, see
``csv_reader``; pyarrow's Parquet reader; or TFRecord files of tf.Example) and encoded with tfx_bsl's
``RecordBatchToExamples``, so memory stays bounded by the batch size whatever the size of the data.
Files are local or at a URL (``storage``: ``gs://...`` through ``tf.io.gfile``), streamed either way.
What is checked and recorded of the label depends on the task (``labels``). A row's split is a hash of its key column (or of the
whole encoded row): the same row lands in the same split on every run and when rows are appended.
With ``{SPAN}`` in ``data.source`` it reads the latest ``data.window`` spans (``sources``); a row's
split does not depend on which spans are read with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components.common.artifacts import split_file
from components.common.tfrecord import CorruptRecordError, TFRecordWriter, read_records
from components.example_gen import storage
from components.example_gen.csv_reader import CsvFile, require_columns
from components.example_gen.labels import LabelSummary, counts_by_split
from components.example_gen.sources import Span, resolve_spans, source_files, spans_text
from pipeline.config import SPLITS, DataConfig, FeaturesConfig, Section
from pipeline.errors import DataError
from pipeline.specs import SPLIT_INFO_FILE

_BUCKETS = 10_000
_EXTENSIONS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": None,
    ".parquet": "parquet",
    ".pq": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecord.gz": "tfrecord",
    ".tfrecords": "tfrecord",
    ".gz": None,
}
_PROGRESS_SECONDS = 5.0


@dataclass(frozen=True)
class ExampleGenResult:
    """What ExampleGen wrote.

    Attributes:
        rows: Rows written per split.
        files: The source files read.
        label_counts: Rows per label value, over all splits (empty for a regression task).
        non_finite: Non-finite numbers read as missing per column (``data.non_finite: missing``).
        label_counts_by_split: Rows per label value in each split (binary and multiclass tasks).
        label_stats: Count, missing, min, max and mean of the label per split (regression task).
        spans: What ``split_info.json`` records of each span read (``data.source`` with ``{SPAN}``),
            else None.
    """

    rows: dict[str, int]
    files: list[str]
    label_counts: dict[str, int]
    non_finite: dict[str, int] = field(default_factory=dict)
    label_counts_by_split: dict[str, dict[str, int]] = field(default_factory=dict)
    label_stats: dict[str, dict] = field(default_factory=dict)
    spans: list[dict] | None = None


def file_format(path: str, declared: str) -> str:
    """The format of ``path``: ``declared`` unless it is ``auto``, else decided by extension."""
    if declared != "auto":
        return declared
    lower = path.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            if _EXTENSIONS[ext] is None:
                break
            return _EXTENSIONS[ext]
    raise DataError(
        f"{path}: unknown data format; expected a file ending in .csv, .csv.gz, .parquet, .tfrecord or .tfrecord.gz, "
        "or set data.format to csv, parquet or tfrecord"
    )


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs ExampleGen as a pipeline step; see ``run_example_gen``. Returns its figures."""
    result = run_example_gen(config["data"], config["features"], outputs["examples"], progress)
    figures = {f"rows_{split}": count for split, count in result.rows.items()}
    figures["rows"] = sum(result.rows.values())
    figures["files"] = len(result.files)
    figures["non_finite_as_missing"] = sum(result.non_finite.values())
    if result.non_finite:
        progress(f"WARNING: {_non_finite_text(result.non_finite)} read as missing values (data.non_finite: missing)")
    return figures


def run_example_gen(data: DataConfig, features: FeaturesConfig, examples_dir: str,
                    progress: Callable[[str], None] = lambda _: None) -> ExampleGenResult:
    """Reads the configured source and writes one gzip TFRecord file of tf.Example per split.

    Args:
        data: The ``data`` section: source (a path or URL), format, CSV options, split ratios and key.
        features: The ``features`` section: which columns to keep, the label and its task.
        examples_dir: Output folder (the Examples artifact): ``Split-<name>/`` per split and
            ``split_info.json`` with the row counts, the sources and their SHA-256, the label's
            counts (or figures, for regression) per split and the sensitive groups; with
            ``{SPAN}`` in ``data.source`` also ``window`` and ``spans``, a list with per span read
            ``number``, ``source`` (the pattern with the span's text), ``files``, ``rows`` and
            ``sha256`` (file -> SHA-256).
        progress: Receives a line every few seconds on large inputs, and which spans are read.

    Returns:
        Rows per split, files read and the label's counts (or figures, for regression) per split.

    Raises:
        DataError: A missing, empty or malformed file, an absent column, a wrong column type, or
            a label no model can learn (see ``labels``); the message names the file.
    """
    spans = resolve_spans(data)
    files = [path for span in spans for path in span.files] if spans else source_files(data)
    if spans and len(spans) < data.window:
        progress(f"data.window is {data.window} but {data.source} has {_plural(len(spans), 'span')}: reading "
                 f"{'it' if len(spans) == 1 else 'them all'}")
    file_rows_read: dict[str, int] = {}
    columns = columns_read(data, features)
    bounds = _split_bounds(data)
    rows = dict.fromkeys(SPLITS, 0)
    labels = LabelSummary(features)
    non_finite: Counter = Counter()
    groups: dict[str, dict[str, Counter]] = {name: {split: Counter() for split in SPLITS} for name in features.sensitive}
    os.makedirs(examples_dir, exist_ok=True)
    writers = {}
    for split in SPLITS:
        os.makedirs(os.path.dirname(split_file(examples_dir, split)), exist_ok=True)
        writers[split] = TFRecordWriter(split_file(examples_dir, split))
    from tfx_bsl.coders import example_coder  # heavy-ish import, only when the step runs

    started = last_report = time.monotonic()
    total = 0
    try:
        for path in files:
            fmt = file_format(path, data.format)
            file_rows = 0
            batches, where = open_file(path, fmt, columns, data, features, example_coder)
            found = NonFinite(path, where, [name for name, kind in columns.items() if kind == pa.float64()])
            for batch in batches:
                batch = found.check(batch, file_rows, fill=data.non_finite == "missing")
                records = example_coder.RecordBatchToExamples(as_feature_lists(batch))
                keys = _split_keys(batch, data.split.key, path)
                per_split: dict[str, list[bytes]] = {split: [] for split in SPLITS}
                chunks = [per_split[split] for split in SPLITS]
                indexes = []
                for key, record in zip(keys, records):
                    bucket = int.from_bytes(hashlib.md5(key).digest()[:8], "little") % _BUCKETS
                    index = 0 if bucket < bounds[0] else 1 if bucket < bounds[1] else 2
                    indexes.append(index)
                    chunks[index].append(record)
                row_splits = np.array(indexes, dtype=np.int8)
                labels.add(batch, row_splits)
                _count_groups(groups, batch, row_splits, features.sensitive)
                for split, chunk in per_split.items():
                    writers[split].write_many(chunk)
                    rows[split] += len(chunk)
                file_rows += batch.num_rows
                total += batch.num_rows
                now = time.monotonic()
                if now - last_report >= _PROGRESS_SECONDS:
                    progress(f"{total:,} rows read ({total / (now - started):,.0f} rows/s)")
                    last_report = now
            file_rows_read[path] = file_rows
            if file_rows == 0:
                header = "a header but " if fmt == "csv" and data.csv.header else ""
                raise DataError(f"{path}: has {header}no rows; expected at least one data row")
            if found.counts and data.non_finite == "fail":
                raise found.error()
            non_finite.update(found.counts)
    finally:
        for writer in writers.values():
            writer.close()
    labels.check(files[0] if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more)")
    empty = [split for split in SPLITS if rows[split] == 0]
    if empty:
        raise DataError(f"{files[0] if len(files) == 1 else data.source}: the {' and '.join(empty)} split(s) got no "
                        f"rows out of {total:,}; expected data large enough for every split (data.split ratios "
                        f"{data.split.train:g}/{data.split.eval:g}/{data.split.test:g})")
    sha256 = {path: storage.sha256(path) for path in files}
    info = {
        "splits": {split: {"rows": rows[split], "file": os.path.relpath(split_file(examples_dir, split), examples_dir)}
                   for split in SPLITS},
        "ratios": {split: getattr(data.split, split) for split in SPLITS},
        "split_key": data.split.key,
        "sources": files,
        "source_sha256": sha256,
        **_span_info(spans, data.window, file_rows_read, sha256),
        "label": features.label,
        "task": features.task,
        **labels.info(),
        "non_finite_as_missing": dict(sorted(non_finite.items())),
        "groups": {name: {split: dict(sorted(counts.items())) for split, counts in by_split.items()}
                   for name, by_split in groups.items()},
    }
    if spans:
        progress(f"reading {spans_text([span.number for span in spans])} (window {data.window}): {total:,} rows")
    with open(os.path.join(examples_dir, SPLIT_INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)
    return ExampleGenResult(rows=rows, files=files, label_counts=dict(labels.total_counts()),
                            non_finite=dict(non_finite), label_counts_by_split=info.get("label_counts_by_split", {}),
                            label_stats=info.get("label_stats", {}), spans=info.get("spans"))


def _span_info(spans: list[Span], window: int, file_rows: Mapping[str, int], sha256: Mapping[str, str]) -> dict:
    """What ``split_info.json`` records of the spans read: nothing without ``{SPAN}``."""
    if not spans:
        return {}
    return {"window": window,
            "spans": [{"number": span.number, "source": span.source, "files": list(span.files),
                       "rows": sum(file_rows[path] for path in span.files),
                       "sha256": {path: sha256[path] for path in span.files}} for span in spans]}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _count_groups(groups: dict[str, dict[str, Counter]], batch: pa.RecordBatch, row_splits: np.ndarray,
                  sensitive: list[str]) -> None:
    """Adds the rows per value of each sensitive feature, per split (missing values are not a group)."""
    for name in sensitive:
        for split, value, count in counts_by_split(batch.column(batch.schema.get_field_index(name)), row_splits):
            if value is not None:
                groups[name][split][value] += count


class NonFinite:
    """Finds inf, -inf and NaN in the numeric columns of one file's batches (and values beyond
    float32's range, which the tf.Example encoding turns into inf); counts them per column with the
    first row, and can make them missing."""

    def __init__(self, path: str, where: Callable[[int], str], numeric: list[str]):
        self.path, self.where_row, self.numeric = path, where, numeric
        self.counts: Counter = Counter()
        self.first: dict[str, int] = {}

    def check(self, batch: pa.RecordBatch, rows_before: int, fill: bool) -> pa.RecordBatch:
        arrays = list(batch.columns)
        changed = False
        for name in self.numeric:
            index = batch.schema.get_field_index(name)
            column = arrays[index]
            values = np.asarray(pc.fill_null(column, 0.0), dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                bad = ~np.isfinite(values.astype(np.float32))
            if not bad.any():
                continue
            self.counts[name] += int(bad.sum())
            self.first.setdefault(name, rows_before + int(np.argmax(bad)) + 1)
            if fill:
                arrays[index] = pc.if_else(pa.array(bad), pa.scalar(None, column.type), column)
                changed = True
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema) if changed else batch

    def where(self, name: str) -> str:
        return self.where_row(self.first[name])

    def error(self) -> DataError:
        listed = ", ".join(f"'{name}' {count:,} (first on {self.where(name)})" for name, count in self.counts.items())
        return DataError(f"{self.path}: non-finite numbers (inf, -inf, NaN or beyond float32's range) in numeric "
                         f"column(s): {listed}; expected finite numbers, or set data.non_finite: missing to read "
                         "them as missing values")


def _non_finite_text(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    listed = ", ".join(f"'{name}' {count:,}" for name, count in sorted(counts.items()))
    return f"{total:,} non-finite number{'s' if total != 1 else ''} (inf, -inf or NaN) in {listed}"


def as_feature_lists(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Wraps each column in the list<float32|binary> shape tf.Example encoding needs; nulls stay missing."""
    arrays = []
    for column in batch.columns:
        valid = ~np.asarray(column.is_null(), dtype=bool)
        offsets = np.zeros(len(column) + 1, dtype=np.int32)
        np.cumsum(valid, out=offsets[1:])
        values = column.drop_null().cast(pa.float32() if pa.types.is_floating(column.type) else pa.binary())
        arrays.append(pa.ListArray.from_arrays(pa.array(offsets, mask=np.append(~valid, False)), values))
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def columns_read(data: DataConfig, features: FeaturesConfig) -> dict[str, pa.DataType]:
    """Columns ExampleGen keeps, with the Arrow type each is read as."""
    columns: dict[str, pa.DataType] = {}
    if data.split.key:
        columns[data.split.key] = pa.string()
    columns[features.label] = pa.float64() if features.task == "regression" else pa.string()
    for name in features.numeric:
        columns[name] = pa.float64()
    for name in features.categorical:
        columns[name] = pa.string()
    return columns


def _split_bounds(data: DataConfig) -> tuple[int, int]:
    train = round(data.split.train / 100 * _BUCKETS)
    return train, train + round(data.split.eval / 100 * _BUCKETS)


def _split_keys(batch: pa.RecordBatch, key: str | None, path: str) -> list[bytes]:
    """What each row's split is a hash of: its key, or all its values (never the encoded bytes,
    whose feature order the encoder does not fix)."""
    if key is not None:
        values = batch.column(batch.schema.get_field_index(key))
        if values.null_count:
            raise DataError(f"{path}: split key column '{key}' has {values.null_count} empty value(s); "
                            "expected a value in every row (data.split.key)")
        return values.cast(pa.binary()).to_pylist()
    # one text per row: every value in column order, with a marker no text value can hold for missing
    parts = [column.cast(pa.string()) for column in batch.columns]
    joined = pc.binary_join_element_wise(*parts, "\x1f", null_handling="replace", null_replacement="\x00")
    return joined.cast(pa.binary()).to_pylist()


def open_file(path: str, fmt: str, columns: dict[str, pa.DataType], data: DataConfig, features: FeaturesConfig,
              example_coder) -> tuple[Iterator[pa.RecordBatch], Callable[[int], str]]:
    """Record batches of exactly ``columns``, in that order and of those types, whatever the format,
    and where a row (1-based) is in the file, in words ("line 12", "record 11", "row 11")."""
    if storage.size(path) == 0:
        raise DataError(f"{path}: the file is empty; expected {fmt} data")
    roles = _number_roles(features)
    if fmt == "csv":  # the CSV reader already reads an empty field as missing
        reader = CsvFile(path, data.csv, columns, roles, data.batch_rows)
        return reader.batches(), reader.where
    if fmt == "parquet":
        batches, where = _read_parquet(path, columns, roles, data.batch_rows), lambda row: f"row {row}"
    else:
        batches, where = _read_tfrecord(path, columns, roles, data.batch_rows, example_coder), lambda row: f"record {row}"
    strings = [index for index, kind in enumerate(columns.values()) if kind == pa.string()]
    return (_empty_as_missing(batch, strings) for batch in batches), where


def _number_roles(features: FeaturesConfig) -> dict[str, str]:
    """Why each numeric column must hold numbers, as error messages say it."""
    roles = {name: "it is declared under features.numeric" for name in features.numeric}
    if features.task == "regression":
        roles[features.label] = "it is the label (features.label) of a regression task"
    return roles


def _empty_as_missing(batch: pa.RecordBatch, strings: list[int]) -> pa.RecordBatch:
    """One rule for every format: an empty string is a missing value, as an empty CSV field is."""
    arrays = list(batch.columns)
    for index in strings:
        empty = pc.equal(arrays[index], "")
        if pc.any(empty).as_py():
            arrays[index] = pc.if_else(empty, pa.scalar(None, pa.string()), arrays[index])
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _read_parquet(path: str, columns: dict[str, pa.DataType], roles: Mapping[str, str],
                  batch_rows: int) -> Iterator[pa.RecordBatch]:
    with storage.open_binary(path) as handle:
        yield from _read_parquet_file(path, handle, columns, roles, batch_rows)


def _read_parquet_file(path: str, handle, columns: dict[str, pa.DataType], roles: Mapping[str, str],
                       batch_rows: int) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(handle)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
    schema = parquet.schema_arrow
    require_columns(path, schema.names, columns)
    target = pa.schema([(name, kind) for name, kind in columns.items()])
    for name, kind in columns.items():
        actual = schema.field(name).type
        if kind == pa.float64() and not (pa.types.is_integer(actual) or pa.types.is_floating(actual)
                                         or pa.types.is_decimal(actual) or pa.types.is_null(actual)):
            raise DataError(f"{path}: column '{name}' has type {actual}; expected a number ({roles[name]})")
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{path}: has a schema but no rows; expected at least one data row")
    rows = 0
    batches = parquet.iter_batches(batch_size=batch_rows, columns=list(columns))
    while True:
        try:
            batch = next(batches, None)
        except (OSError, pa.ArrowException) as exc:  # damaged pages: "Corrupt snappy compressed data", bad thrift
            raise DataError(f"{path}: the Parquet data is damaged after {rows:,} rows ({exc}); expected a complete, "
                            "uncorrupted Parquet file") from None
        if batch is None:
            return
        try:
            converted = pa.RecordBatch.from_arrays([batch.column(batch.schema.get_field_index(n)).cast(t)
                                                    for n, t in columns.items()], schema=target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"{path}: cannot convert the columns to the declared types: {exc}") from None
        rows += batch.num_rows
        yield converted


def _read_tfrecord(path: str, columns: dict[str, pa.DataType], roles: Mapping[str, str], batch_rows: int,
                   example_coder) -> Iterator[pa.RecordBatch]:
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    target = pa.schema(list(columns.items()))
    checked = False

    def decode(records: list[bytes]) -> pa.RecordBatch:
        nonlocal checked
        try:
            batch = decoder.DecodeBatch(records)
        except Exception as exc:  # the decoder raises plain RuntimeError/ValueError on bad protos
            raise DataError(f"{path}: records are not tf.Example protos: {exc}") from None
        if not checked:
            require_columns(path, batch.schema.names, columns)
            checked = True
        arrays = []
        for name, kind in columns.items():
            if name in batch.schema.names:
                arrays.append(_single_values(path, name, batch.column(batch.schema.get_field_index(name)), kind,
                                             roles.get(name)))
            else:  # absent from every example of this batch: all missing
                arrays.append(pa.nulls(batch.num_rows, kind))
        return pa.RecordBatch.from_arrays(arrays, schema=target)

    pending: list[bytes] = []
    try:
        for record in _records(path):
            pending.append(record)
            if len(pending) >= batch_rows:
                yield decode(pending)
                pending = []
    except CorruptRecordError as exc:
        raise DataError(f"{exc}; expected TFRecord files of tf.Example") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read as TFRecord: {exc}") from None
    if pending:
        yield decode(pending)


def _records(path: str) -> Iterator[bytes]:
    """The records of a TFRecord file: sluiceway's own reader for a local file, TensorFlow's for a URL."""
    if not storage.is_url(path):
        yield from read_records(path)
        return
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(path, compression_type="GZIP" if storage.is_gzip(path) else "")
    index = 0
    try:
        for chunk in dataset.batch(4096):
            for record in chunk.numpy():
                index += 1
                yield record
    except tf.errors.DataLossError as exc:  # cut short or a bad checksum
        raise CorruptRecordError(f"{path}: truncated or damaged after record {index}: {exc.message}") from None
    except tf.errors.OpError as exc:
        raise DataError(f"{path}: cannot read as TFRecord: {exc.message}") from None


def _single_values(path: str, name: str, column: pa.Array, kind: pa.DataType, role: str | None) -> pa.Array:
    """A tf.Example feature column (a list per row) as one value per row, null where missing."""
    lengths = np.asarray(pc.fill_null(pc.list_value_length(column), 0), dtype=np.int64)
    if len(lengths) and lengths.max() > 1:
        raise DataError(f"{path}: feature '{name}' holds {lengths.max()} values in some example; "
                        "expected at most one value per example")
    present = lengths == 1
    values = column.flatten()
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        values = values.cast(pa.string()) if kind == pa.string() else values
    if kind == pa.float64() and not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise DataError(f"{path}: feature '{name}' holds {values.type} values; expected a number ({role})")
    try:
        values = values.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"{path}: feature '{name}' cannot be read as {kind}: {exc}") from None
    if present.all():
        return values
    positions = np.where(present, np.cumsum(present) - 1, 0)
    taken = values.take(pa.array(positions)) if len(values) else pa.nulls(len(present), kind)
    return pc.if_else(pa.array(present), taken, pa.scalar(None, kind))
