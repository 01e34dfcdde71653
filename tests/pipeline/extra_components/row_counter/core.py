"""RowCounter (test only): counts ExampleGen's training rows; ``enough`` is its verdict."""

from __future__ import annotations

import os
from typing import Callable, Mapping

from components.common.artifacts import split_file
from pipeline.config import Section

MIN_ROWS_ENV = "SLUICEWAY_TEST_MIN_ROWS"   # the bound, so a test can make the verdict go either way


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    import tensorflow as tf

    rows = sum(1 for _ in tf.data.TFRecordDataset(split_file(inputs["examples"], "train"), compression_type="GZIP"))
    minimum = int(os.environ.get(MIN_ROWS_ENV, "1"))
    progress(f"{rows} training rows from {config['data'].source}")
    with open(outputs["report"], "w", encoding="utf-8") as handle:
        handle.write(f"{rows} training rows\n")
    enough = rows >= minimum
    return {"rows": rows, "enough": enough, "why_not": "" if enough else f"{rows} training rows, fewer than {minimum}"}
