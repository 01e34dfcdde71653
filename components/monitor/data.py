"""The data a monitor run judges: read as ExampleGen reads data, written as one split of examples.

The files are read with ExampleGen's readers and the ``data`` section's options (CSV dialect, missing
values, non-finite numbers), so a value means in monitoring what it meant in training. Unlike
ExampleGen, every row goes to one split (nothing is held out: the data is judged, not learned from),
and the label column may be absent (logged serving requests): then only drift is judged.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

from components.common.artifacts import split_file
from components.common.tfrecord import TFRecordWriter
from components.example_gen import sources, storage
from components.example_gen.core import NonFinite, as_feature_lists, columns_read, file_format, open_file
from components.example_gen.csv_reader import MissingColumns
from pipeline.config import DataConfig, FeaturesConfig, MonitoringConfig
from pipeline.errors import DataError
from pipeline.specs import SPLIT_INFO_FILE

_PROGRESS_SECONDS = 5.0


@dataclass(frozen=True)
class JudgedData:
    """What was read: the source as given, its span of ``data.source`` (or ``None``), files, rows,
    whether every file has the label column, and each file's SHA-256."""

    source: str
    span: Optional[int]
    files: list[str]
    rows: int
    labelled: bool
    sha256: dict[str, str]


def source_of(monitoring: MonitoringConfig, data: DataConfig) -> tuple[str, Optional[int], list[str]]:
    """The data to judge: ``monitoring.source`` (``--data``), or the latest span of ``data.source``;
    with the span it is of ``data.source`` (``None`` when it is none) and its files.

    Raises:
        DataError: No source is given and ``data.source`` has no ``{SPAN}``, or nothing matches.
    """
    if monitoring.source:
        files = sources.source_files(data.model_copy(update={"source": monitoring.source}),
                                     "monitoring.source (sluiceway monitor --data)")
        return monitoring.source, sources.span_of(data, monitoring.source), files
    if sources.SPAN not in data.source:
        raise DataError("monitor: give the data to judge with --data PATH (or monitoring.source); data.source "
                        f"({data.source}) has no {sources.SPAN} placeholder, so there is no latest span to default to")
    span = sources.latest_span(data)
    return span.source, span.number, list(span.files)


def read(monitoring: MonitoringConfig, data: DataConfig, features: FeaturesConfig, examples_dir: str, split: str,
         progress: Callable[[str], None] = lambda _: None) -> JudgedData:
    """Writes every row of the data to judge into ``examples_dir`` as the split ``split`` (gzip TFRecords
    of tf.Example) with a ``split_info.json`` holding the sensitive groups.

    Raises:
        DataError: A file is missing, empty or malformed (named, as ExampleGen names it).
    """
    from tfx_bsl.coders import example_coder

    source, span, files = source_of(monitoring, data)
    reading = data.model_copy(update={"format": monitoring.format, "split": data.split.model_copy(update={"key": None})})
    with_label = columns_read(reading, features)
    without_label = {name: kind for name, kind in with_label.items() if name != features.label}
    os.makedirs(os.path.dirname(split_file(examples_dir, split)), exist_ok=True)
    rows, labelled, started, last = 0, True, time.monotonic(), time.monotonic()
    groups: dict[str, Counter] = {name: Counter() for name in features.sensitive}
    writer = TFRecordWriter(split_file(examples_dir, split))
    try:
        for path in files:
            fmt = file_format(path, reading.format)
            batches, where, has_label = _open_either(path, fmt, with_label, without_label, reading, features,
                                                     example_coder)
            labelled = labelled and has_label
            found = NonFinite(path, where, [name for name in features.numeric])
            file_rows = 0
            for batch in batches:
                batch = found.check(batch, file_rows, fill=reading.non_finite == "missing")
                writer.write_many(example_coder.RecordBatchToExamples(as_feature_lists(batch)))
                for name in features.sensitive:
                    values = batch.column(batch.schema.get_field_index(name)).drop_null().to_pylist()
                    groups[name].update(str(v) for v in values)
                file_rows += batch.num_rows
                rows += batch.num_rows
                if time.monotonic() - last >= _PROGRESS_SECONDS:
                    progress(f"{rows:,} rows read")
                    last = time.monotonic()
            if file_rows == 0:
                raise DataError(f"{path}: has no rows; expected at least one data row")
            if found.counts and reading.non_finite == "fail":
                raise found.error()
    finally:
        writer.close()
    with open(os.path.join(examples_dir, SPLIT_INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump({"splits": {split: {"rows": rows}}, "source": source, "span": span,
                   "groups": {name: {split: dict(sorted(counts.items()))} for name, counts in groups.items()}},
                  handle, indent=2)
    progress(f"read {rows:,} rows from {len(files)} file(s) in {time.monotonic() - started:.1f}s")
    return JudgedData(source, span, files, rows, labelled, {path: storage.sha256(path) for path in files})


def _open_either(path, fmt, with_label, without_label, data, features, example_coder):
    """The file's batches with the label column when it has one, else without it (logged requests).
    Only the label's absence is forgiven: any other problem, of the label's values too, is the error."""
    try:
        batches, where = open_file(path, fmt, with_label, data, features, example_coder)
        first = next(batches, None)   # the readers check the columns when they start
        return _chain(first, batches), where, True
    except MissingColumns as exc:
        if exc.missing != [features.label]:
            raise
    batches, where = open_file(path, fmt, without_label, data, features, example_coder)
    first = next(batches, None)
    return _chain(first, batches), where, False


def _chain(first, rest):
    if first is not None:
        yield first
    yield from rest


def statistics(examples_file: str, beam, output_path: str, progress: Callable[[str], None] = lambda _: None):
    """TFDV statistics of the examples in ``examples_file``, also written to ``output_path``."""
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions

    progress("computing statistics of the new data with TFDV")
    os.makedirs(os.path.dirname(output_path), exist_ok=True)
    return tfdv.generate_statistics_from_tfrecord(
        data_location=examples_file, output_path=output_path,
        pipeline_options=PipelineOptions(list(beam.pipeline_options)))
