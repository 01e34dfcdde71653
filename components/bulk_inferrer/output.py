"""Where a scoring run's rows go: a Parquet or CSV file, and its lineage file beside it.

The format is the output's extension's (``.parquet`` or ``.pq``: Parquet; ``.csv``: CSV; ``.csv.gz``:
gzip-compressed CSV) or the one asked for; a CSV output whose name ends in ``.gz`` is compressed.
Both are written under temporary names in the output's folder (``pipeline.files.atomic_path``) and
renamed over the destination only once complete, so a failed run leaves an existing output as it was
and no partial file. Outputs are local files.
"""

from __future__ import annotations

import contextlib
import os
from typing import Sequence

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from components.example_gen import storage
from pipeline.errors import SluicewayError
from pipeline.files import atomic_path

FORMATS = ("auto", "parquet", "csv")
LINEAGE_SUFFIX = ".lineage.json"
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}


class OutputError(SluicewayError):
    """The predictions cannot be written as asked (the destination, its format, its columns); the
    message names the output. A usage error (exit code 2)."""

    exit_code = 2


def output_format(path: str, declared: str = "auto") -> str:
    """``parquet`` or ``csv``: ``declared``, or with ``auto`` the one ``path``'s extension names.

    Raises:
        OutputError: ``auto`` and an extension that names neither.
    """
    if declared != "auto":
        return declared
    lower = path.lower()
    for extension, kind in sorted(_EXTENSIONS.items(), key=lambda item: -len(item[0])):
        if lower.endswith(extension):
            return kind
    raise OutputError(f"{path}: cannot tell the output format from the name; expected a name ending in .parquet, "
                      ".pq, .csv or .csv.gz, or the output format given (parquet or csv)")


def lineage_path(output: str) -> str:
    """The lineage file of ``output``: ``<output>.lineage.json``."""
    return output + LINEAGE_SUFFIX


def check_destination(output: str, inputs: Sequence[str]) -> str:
    """``output`` as an absolute path, its folder made if missing.

    Raises:
        OutputError: A URL, a folder, one of the files scored, or a folder that cannot be made.
    """
    if storage.is_url(output):
        raise OutputError(f"{output}: predictions are written to a local file; expected a local path (copy the "
                          "file to its bucket afterwards)")
    destination = os.path.abspath(output)
    if os.path.isdir(destination):
        raise OutputError(f"{output}: is a folder; expected the path of the file to write, e.g. "
                          f"{os.path.join(output, 'predictions.parquet')}")
    if any(not storage.is_url(path) and os.path.abspath(path) == destination for path in inputs):
        raise OutputError(f"{output}: is one of the files to score; expected another path for the predictions")
    folder = os.path.dirname(destination)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{output}: cannot make its folder {folder} ({exc.strerror or exc}); expected a path "
                          "you can write to") from None
    return destination


def enter_replacement(stack: contextlib.ExitStack, path: str, shown: str) -> str:
    """Enters ``atomic_path(path)`` on ``stack``: the temporary file's path, renamed over ``path`` when
    the stack closes without an error (removed when it closes with one). ``shown``: the path as given.

    Raises:
        OutputError: The folder does not take a new file (no permission, read-only, full).
    """
    try:
        return stack.enter_context(atomic_path(path))
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write there ({exc.strerror or exc}); expected a path in a folder "
                          "you can write to") from None


class RowWriter:
    """Writes record batches of ``schema`` to ``path`` as Parquet (a row group per batch) or CSV
    (with a header line; gzip-compressed when ``shown`` ends in ``.gz``).

    Args:
        path: The file to write (the temporary one).
        schema: The columns.
        kind: ``parquet`` or ``csv``.
        shown: The destination as given, for messages.
    """

    def __init__(self, path: str, schema: pa.Schema, kind: str, shown: str):
        self.shown = shown
        self._sink = None
        with self._named():
            if kind == "parquet":
                self._writer = pq.ParquetWriter(path, schema)
            else:
                self._sink = (pa.CompressedOutputStream(path, "gzip") if shown.lower().endswith(".gz")
                              else pa.OSFile(path, "wb"))
                self._writer = pa_csv.CSVWriter(self._sink, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        with self._named():
            self._writer.write_batch(batch)

    def close(self) -> None:
        with self._named():
            try:
                self._writer.close()
            finally:
                if self._sink is not None:
                    self._sink.close()

    @contextlib.contextmanager
    def _named(self):
        try:
            yield
        except OSError as exc:  # a full disk, a file system gone read-only
            raise OutputError(f"{self.shown}: cannot write the predictions ({exc}); expected room to write them "
                              "beside the destination") from None
