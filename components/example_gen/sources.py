"""Which files ExampleGen reads: a module of its own, without pyarrow or numpy, so the local runner
can list them for the cache key (every run, cached or not) without importing the reader (a URL
source imports TensorFlow's file systems)."""

from __future__ import annotations

from typing import Mapping

from components.example_gen import storage
from pipeline.config import DataConfig, Section
from pipeline.errors import DataError


def source_files(data: DataConfig) -> list[str]:
    """The files ``data.source`` names: a file, a folder (its files) or a glob, sorted; local or a URL
    (``gs://bucket/data/*.csv``, read through ``tf.io.gfile``: see ``storage``).

    Raises:
        DataError: Nothing matches, or a URL cannot be listed.
    """
    source = data.source
    matches = storage.list_files(source)
    if matches is None:
        raise DataError(f"data.source: {source}: no such file; expected a CSV, Parquet or TFRecord file, a folder or a glob")
    if not matches:
        raise DataError(f"data.source: {source}: no files match")
    return sorted(matches)


def cache_files(config: Mapping[str, Section]) -> list[str]:
    """The files whose content is part of ExampleGen's cache key (``ComponentSpec.cache_files``)."""
    return source_files(config["data"])
