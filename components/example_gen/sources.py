"""Which files ExampleGen reads: a module of its own, without pyarrow or numpy, so the local runner
can list them for the cache key (every run, cached or not) without importing the reader."""

from __future__ import annotations

import glob
import os
from typing import Mapping

from pipeline.config import DataConfig, Section
from pipeline.errors import DataError


def source_files(data: DataConfig) -> list[str]:
    """The files ``data.source`` names: a file, a folder (its files) or a glob, sorted.

    Raises:
        DataError: Nothing matches.
    """
    source = data.source
    if "://" in source:
        raise DataError(f"data.source: {source}: remote sources are read by the Kubeflow components; "
                        "a local run expects a local path")
    if os.path.isdir(source):
        matches = [os.path.join(source, name) for name in os.listdir(source) if not name.startswith(".")]
        matches = [m for m in matches if os.path.isfile(m)]
    elif glob.has_magic(source):
        matches = [m for m in glob.glob(source) if os.path.isfile(m)]
    else:
        if not os.path.exists(source):
            raise DataError(f"data.source: {source}: no such file; expected a CSV, Parquet or TFRecord file, a folder or a glob")
        matches = [source]
    if not matches:
        raise DataError(f"data.source: {source}: no files match")
    return sorted(matches)


def cache_files(config: Mapping[str, Section]) -> list[str]:
    """The files whose content is part of ExampleGen's cache key (``ComponentSpec.cache_files``)."""
    return source_files(config["data"])
