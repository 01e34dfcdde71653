"""BulkInferrer: scores CSV, Parquet or TFRecord files with a sluiceway SavedModel, streaming.

``score`` reads the files batch by batch as ExampleGen reads them (``reading``), encodes each batch as
raw tf.Examples with tfx_bsl's ``RecordBatchToExamples`` (ExampleGen's encoding), calls the model's
``serving_default`` on them (``predictions``) and appends the rows to the output (``output``), so
memory is bounded by a batch (``data.batch_rows`` rows) whatever the size of the data
(``benchmarks/bench_predict.py``: a peak RSS of about 1 GB scoring 1,000,000 rows, most of it
TensorFlow's and the model's, and the same at 2,000,000).

The output's columns: the columns to keep (``keep``, e.g. an id), in the order given, with their
values as read (a feature as ExampleGen reads it, any other column as text), then the task's
prediction columns:

- binary: ``probability`` (float32, the probability of ``features.positive``), ``predicted`` (bool,
  ``probability >= decision_threshold``);
- multiclass: ``probability_<class>`` (float32) per class in the model's class order, ``predicted``
  (string, the most probable class);
- regression: ``predicted`` (float32, in the label's units).

Rows are in input order (files in the order given), rows left out as bad (``on_bad_row="skip"``)
excepted. Beside the output, ``<output>.lineage.json`` records where the predictions came from:

- ``format``: ``sluiceway predictions 1`` (this layout);
- ``output``: ``path``, ``format``, ``sha256`` (of the output file), ``rows``, ``columns`` (name -> type);
- ``model``: ``path``, ``fingerprint`` (``components.common.model_fingerprint``), ``task``, and
  ``positive`` and ``decision_threshold`` (binary) or ``classes`` (multiclass);
- ``annotations``: what the caller passed (e.g. the model's version, the run);
- ``inputs``: per file ``path``, ``format``, ``sha256``, ``rows_read``, ``rows_scored``, ``rows_skipped``;
- ``rows``: ``read``, ``scored``, ``skipped``; ``on_bad_row``; ``bad_rows``: the first rows left out
  (``file``, ``where``, ``column``, ``value``, ``expected``); ``non_finite_as_missing`` per column;
- ``started``, ``finished`` (UTC, ISO 8601), ``seconds``.

Both files are written under temporary names beside the destination and renamed when complete (the
output first, then its lineage file; the lineage's ``output.sha256`` says whether the two belong
together), so a failure leaves no partial file and an existing output as it was.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from typing import Callable, Mapping, Sequence

import pyarrow as pa

from components.bulk_inferrer import output as outputs
from components.bulk_inferrer.output import lineage_path
from components.bulk_inferrer.predictions import Scorer, model_classes, prediction_fields
from components.bulk_inferrer.reading import ON_BAD_ROW, RowReader, columns_to_read
from components.common.model_fingerprint import model_fingerprint
from components.example_gen import storage
from components.example_gen.core import as_feature_lists, file_format
from components.example_gen import sources
from components.pusher.versions import join, latest, read_manifest, versions
from pipeline.config import BulkInferenceConfig, DataConfig, FeaturesConfig, PusherConfig, Section
from pipeline.errors import ConfigError, ConfigIssue, DataError
from pipeline.files import atomic_path, file_sha256
from pipeline.specs import PUSH_RECORD_FILE

INPUT_FORMATS = ("auto", "csv", "parquet", "tfrecord")
LINEAGE_FORMAT = "sluiceway predictions 1"
SOURCE_FIELD = "bulk_inference.source (sluiceway predict --data)"  # what an error calls the data to score
PREDICTIONS_NAME = "predictions"  # the artifact's file: predictions.parquet or predictions.csv
_PROGRESS_SECONDS = 5.0


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the BulkInferrer as a pipeline step: scores ``bulk_inference.source`` (see ``score``) into its
    ``predictions`` artifact (``predictions.<format>`` and its lineage file; with ``bulk_inference.output``
    the predictions are written there and copied into the artifact).

    Args:
        inputs: Optionally ``pushed_model``, the Pusher's record: the pipeline scores with the version it
            pushed (or found already serving). Without it (``sluiceway predict``), ``bulk_inference.model``
            says which model.

    Returns:
        ``rows_scored``, ``rows_skipped``, ``rows_per_second``, ``model`` (which model scored, in words),
        ``model_version`` (empty for a model that is not a pushed version), ``model_fingerprint``,
        ``data_sha256`` (of every input file's path and SHA-256, as the lineage file lists them), ``file``
        (the predictions' name in the artifact), ``output`` (``bulk_inference.output``, or empty).

    Raises:
        ConfigError: ``bulk_inference.source`` is not set.
        DataError: The model cannot be found (nothing serves, no such version), or the data is bad.
    """
    settings: BulkInferenceConfig = config["bulk_inference"]
    data: DataConfig = config["data"]
    if not settings.source:
        raise ConfigError("bulk_inference.source", [ConfigIssue(
            "bulk_inference.source", "expected the data to score (a file, folder or glob), or sluiceway predict "
                                     "--data PATH")])
    model_dir, model = choose_model(inputs.get("pushed_model"), settings.model, config["pusher"])
    files = sources.source_files(data.model_copy(update={"source": settings.source}), SOURCE_FIELD)
    folder = outputs["predictions"]
    os.makedirs(folder, exist_ok=True)
    in_artifact = os.path.join(folder, f"{PREDICTIONS_NAME}.{settings.output_format}")
    target = settings.output or in_artifact
    if settings.output:
        in_artifact = os.path.join(folder, os.path.basename(settings.output))
    figures = score(model_dir, files, target, data=data, features=config["features"],
                    decision_threshold=config["evaluator"].decision_thresholds[0], fmt=settings.format,
                    keep=settings.keep, on_bad_row=settings.on_bad_row, annotations=model, progress=progress)
    if settings.output:  # the artifact holds the same bytes (a Dataset in Kubeflow)
        for source, copy in ((figures["output"], in_artifact), (figures["lineage"], lineage_path(in_artifact))):
            with atomic_path(copy) as temporary:
                shutil.copyfile(source, temporary)
    with open(figures["lineage"], encoding="utf-8") as handle:
        record = json.load(handle)
    data_sha256 = hashlib.sha256(json.dumps(sorted((entry["path"], entry["sha256"]) for entry in record["inputs"]))
                                 .encode()).hexdigest()
    return {"rows_scored": figures["rows_scored"], "rows_skipped": figures["rows_skipped"],
            "rows_per_second": int(figures["rows_per_second"]), "model": model["model"],
            "model_version": str(model.get("version") or ""), "model_fingerprint": record["model"]["fingerprint"],
            "data_sha256": data_sha256,
            "file": os.path.basename(in_artifact), "output": settings.output or ""}


def choose_model(pushed_model: str | None, choice: str, pusher: PusherConfig) -> tuple[str, dict]:
    """The model that scores, and what the lineage records of it (``model`` in words, ``version``,
    ``destination``, ``run``): the Pusher's version, or ``choice``: ``latest``, a version number in
    ``pusher.destination``, or a SavedModel folder.

    Raises:
        DataError: The Pusher pushed nothing, nothing serves, there is no such version, or the folder
            holds no SavedModel.
    """
    if pushed_model:
        with open(os.path.join(pushed_model, PUSH_RECORD_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
        if not record.get("path"):
            raise DataError(f"BulkInferrer: the Pusher pushed no model ({record.get('reason', 'no reason given')}); "
                            "expected a version to score with")
        return record["path"], _version_record(record["path"], pusher.destination, int(record["version"]))
    destination = pusher.destination
    if choice == "latest" or choice.isdigit():
        if not destination:
            raise DataError(f"BulkInferrer: bulk_inference.model is {choice}, a version in pusher.destination, which "
                            "is not set; expected pusher.destination, or a SavedModel folder as the model")
        if choice == "latest":
            path = latest(destination)
            if path is None:
                raise DataError(f"BulkInferrer: no model serves in {destination} yet; push one (sluiceway run) or "
                                "name a SavedModel folder (--model PATH)")
            return path, _version_record(path, destination, int(os.path.basename(path.rstrip("/"))))
        if int(choice) not in versions(destination):
            found = ", ".join(map(str, versions(destination))) or "none"
            raise DataError(f"BulkInferrer: {destination} has no version {choice} (it has: {found})")
        path = join(destination, choice)
        return path, _version_record(path, destination, int(choice))
    if not storage.is_url(choice) and not os.path.isfile(os.path.join(choice, "saved_model.pb")):
        raise DataError(f"BulkInferrer: {choice} is not a SavedModel folder (no saved_model.pb); expected latest, a "
                        f"version number in pusher.destination, or a SavedModel folder")
    return choice, {"model": f"the SavedModel in {_absolute(choice)}"}


def _version_record(path: str, destination: str | None, version: int) -> dict:
    manifest = read_manifest(path) or {}
    return {"model": f"version {version} of {destination}", "version": version, "destination": destination,
            "run": manifest.get("run")}


def score(model_dir: str, files: Sequence[str], output: str, *, data: DataConfig, features: FeaturesConfig,
          decision_threshold: float = 0.5, fmt: str = "auto", keep: Sequence[str] = (), on_bad_row: str = "fail",
          output_format: str = "auto", batch_rows: int | None = None,
          annotations: Mapping[str, object] | None = None,
          progress: Callable[[str], None] = lambda _: None) -> dict:
    """Scores every row of ``files`` with the model and writes the predictions to ``output``.

    Args:
        model_dir: The folder of a SavedModel the sluiceway Trainer exported (or a pushed version of it).
        files: The files to score, already resolved (``components.example_gen.sources.source_files``).
        output: The file to write (see the module's docstring for its columns); its folder is made if
            missing. Its lineage goes to ``<output>.lineage.json``.
        data: The ``data`` section: how files are read (CSV options, ``non_finite``, ``batch_rows``).
        features: The ``features`` section: the features the model reads and the task.
        decision_threshold: Binary: the probability from which ``predicted`` is true.
        fmt: The input format (``auto``: by each file's extension; ``csv``, ``parquet``, ``tfrecord``).
        keep: Columns to copy to the output before the predictions (e.g. an id), in this order.
        on_bad_row: A row that cannot be scored (a value that is not a number, or non-finite under
            ``data.non_finite: fail``): ``fail`` stops with an error naming it; ``skip`` leaves it out
            and lists it in the figures.
        output_format: ``auto`` (by the output's extension), ``parquet`` or ``csv``.
        batch_rows: Rows per batch; ``data.batch_rows`` by default.
        annotations: Recorded under ``annotations`` in the lineage file (JSON values, e.g. the model's
            version).
        progress: Receives a line every few seconds (rows scored, rows/s) and a last one.

    Returns:
        Figures: ``rows_read``, ``rows_scored``, ``rows_skipped``, ``bad_rows`` (the first rows left
        out, as in the lineage file), ``non_finite_as_missing``, ``files``, ``seconds``,
        ``rows_per_second``, ``output`` and ``lineage`` (the absolute paths written), ``columns``.

    Raises:
        DataError: A file is missing, empty or malformed, lacks a feature or a column to keep, or holds
            a row that cannot be scored (``on_bad_row="fail"``); the message names the file (and the
            line, column and value).
        OutputError: The output cannot be written there or so (its format, a kept column named like a
            prediction column).
        ModelMismatch: The model's outputs are not those of ``features.task``.
        ModelUnreadable: The model's files cannot be read.
        ValueError: An argument outside its choices (``fmt``, ``on_bad_row``, ``output_format``,
            ``decision_threshold`` in [0, 1], ``batch_rows`` >= 1).
    """
    _check_choices(fmt, on_bad_row, output_format, decision_threshold, batch_rows)
    started, started_at = time.monotonic(), _now()
    reading = data.model_copy(update={"format": fmt, "batch_rows": batch_rows or data.batch_rows})
    kind = outputs.output_format(output, output_format)
    classes = model_classes(model_dir, features)
    _check_keep(output, keep, prediction_fields(features.task, classes))
    _check_files(files)
    destination = outputs.check_destination(output, files)
    lineage_file = outputs.lineage_path(destination)
    columns = columns_to_read(reading, features, keep)
    from tfx_bsl.coders import example_coder  # heavy imports only when scoring runs

    rows = RowReader(reading, features, columns, keep, on_bad_row, example_coder)
    inputs: list[dict] = []
    with contextlib.ExitStack() as stack:  # closes in reverse: the output is renamed, then its lineage
        temp_lineage = outputs.enter_replacement(stack, lineage_file, outputs.lineage_path(output))
        temp_output = outputs.enter_replacement(stack, destination, output)
        fingerprint = model_fingerprint(model_dir)
        scorer = Scorer(model_dir, features, decision_threshold, classes)
        schema = pa.schema([*(pa.field(name, columns[name]) for name in keep), *scorer.fields])
        progress(f"scoring {len(files)} file(s) with {model_dir} ({features.task}) into {output}")
        writer = outputs.RowWriter(temp_output, schema, kind, output)
        scored, last = 0, time.monotonic()
        try:
            for path in files:
                file_fmt = file_format(path, reading.format)
                entry = {"path": _absolute(path), "format": file_fmt, "sha256": storage.sha256(path)}
                file_scored, skipped_before = 0, rows.bad.count
                for batch in rows.batches(path, file_fmt):
                    writer.write(_scored(batch, keep, features, scorer, schema, example_coder))
                    file_scored += batch.num_rows
                    scored += batch.num_rows
                    if time.monotonic() - last >= _PROGRESS_SECONDS:
                        progress(f"{scored:,} rows scored ({scored / (time.monotonic() - started):,.0f} rows/s)")
                        last = time.monotonic()
                skipped = rows.bad.count - skipped_before
                inputs.append({**entry, "rows_read": file_scored + skipped, "rows_scored": file_scored,
                               "rows_skipped": skipped})
        except BaseException:
            with contextlib.suppress(Exception):  # the file is removed anyway: the first error is the one to see
                writer.close()
            raise
        writer.close()
        seconds = time.monotonic() - started
        figures = {"rows_read": scored + rows.bad.count, "rows_scored": scored, "rows_skipped": rows.bad.count,
                   "bad_rows": [row.as_dict() for row in rows.bad.listed],
                   "non_finite_as_missing": dict(sorted(rows.non_finite.items())), "files": len(files),
                   "seconds": round(seconds, 3), "rows_per_second": round(scored / seconds if seconds else 0.0, 1),
                   "output": destination, "lineage": lineage_file, "columns": schema.names}
        record = {
            "format": LINEAGE_FORMAT,
            "output": {"path": destination, "format": kind, "sha256": file_sha256(temp_output), "rows": scored,
                       "columns": {field.name: str(field.type) for field in schema}},
            "model": {"path": _absolute(model_dir), "fingerprint": fingerprint,
                      **_task_record(features, decision_threshold, classes)},
            "annotations": dict(annotations or {}),
            "inputs": inputs,
            "rows": {"read": figures["rows_read"], "scored": scored, "skipped": rows.bad.count},
            "on_bad_row": on_bad_row,
            "bad_rows": figures["bad_rows"],
            "non_finite_as_missing": figures["non_finite_as_missing"],
            "started": started_at, "finished": _now(), "seconds": figures["seconds"],
        }
        with open(temp_lineage, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
    skipped_text = f", {rows.bad.count:,} bad row(s) skipped" if rows.bad.count else ""
    progress(f"scored {scored:,} rows{skipped_text} in {seconds:.1f}s ({figures['rows_per_second']:,.0f} rows/s): "
             f"{output}")
    return figures


def _scored(batch: pa.RecordBatch, keep: Sequence[str], features: FeaturesConfig, scorer: Scorer,
            schema: pa.Schema, example_coder) -> pa.RecordBatch:
    """The output rows of ``batch``: its kept columns, then the model's predictions."""
    names = batch.schema.names
    model_input = pa.RecordBatch.from_arrays([batch.column(names.index(name)) for name in features.feature_names],
                                             names=features.feature_names)
    records = example_coder.RecordBatchToExamples(as_feature_lists(model_input))
    kept = [batch.column(names.index(name)) for name in keep]
    return pa.RecordBatch.from_arrays([*kept, *scorer(records)], schema=schema)


def _check_files(files: Sequence[str]) -> None:
    if not files:
        raise DataError("score: no files to score; expected at least one CSV, Parquet or TFRecord file")
    for path in files:
        if not storage.is_url(path) and not os.path.isfile(path):
            raise DataError(f"{path}: no such file; expected a file to score")


def _task_record(features: FeaturesConfig, decision_threshold: float, classes: list[str] | None) -> dict:
    if features.task == "binary":
        return {"task": features.task, "positive": features.positive_value, "decision_threshold": decision_threshold}
    if features.task == "multiclass":
        return {"task": features.task, "classes": classes}
    return {"task": features.task}


def _check_choices(fmt: str, on_bad_row: str, output_format: str, decision_threshold: float,
                   batch_rows: int | None) -> None:
    for name, value, choices in (("fmt", fmt, INPUT_FORMATS), ("on_bad_row", on_bad_row, ON_BAD_ROW),
                                 ("output_format", output_format, outputs.FORMATS)):
        if value not in choices:
            raise ValueError(f"score: {name} is {value!r}; expected one of {', '.join(choices)}")
    if not 0.0 <= decision_threshold <= 1.0:
        raise ValueError(f"score: decision_threshold is {decision_threshold}; expected a probability in [0, 1]")
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"score: batch_rows is {batch_rows}; expected at least 1")


def _check_keep(output: str, keep: Sequence[str], fields: list[pa.Field]) -> None:
    twice = sorted(name for name, count in Counter(keep).items() if count > 1)
    if twice:
        raise outputs.OutputError(f"{output}: the columns to keep list {', '.join(twice)} more than once; expected "
                                  "each column once")
    clash = [name for name in keep if name in {field.name for field in fields}]
    if clash:
        raise outputs.OutputError(f"{output}: the column(s) to keep {', '.join(clash)} have the name of a prediction "
                                  f"column ({', '.join(field.name for field in fields)}); expected other names (rename "
                                  "the column in the data)")


def _absolute(path: str) -> str:
    return path if storage.is_url(path) else os.path.abspath(path)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cache_files(config: Mapping[str, Section]) -> list[str]:
    """The files whose content is part of the BulkInferrer's cache key (``ComponentSpec.cache_files``):
    the data it scores."""
    settings: BulkInferenceConfig = config["bulk_inference"]
    if not settings.source:
        return []
    return sources.source_files(config["data"].model_copy(update={"source": settings.source}), SOURCE_FIELD)
