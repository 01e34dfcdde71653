"""The layout of folder artifacts, shared by the components that write and read them."""

from __future__ import annotations

import json
import os

from pipeline.specs import SCHEMA_SOURCE_FILE, STATS_FILE


def split_file(examples_dir: str, split: str) -> str:
    """The gzip TFRecord file of ``split`` inside an Examples artifact."""
    return os.path.join(examples_dir, f"Split-{split}", "data-00000-of-00001.tfrecord.gz")


def stats_path(statistics_dir: str, split: str) -> str:
    """Where ``split``'s statistics live inside an ExampleStatistics artifact (TFX's layout)."""
    return os.path.join(statistics_dir, f"Split-{split}", STATS_FILE)


def load_split_stats(statistics_dir: str, split: str):
    """The ``DatasetFeatureStatisticsList`` of one split."""
    import tensorflow_data_validation as tfdv

    return tfdv.load_stats_binary(stats_path(statistics_dir, split))


def is_curated(schema_dir: str) -> bool:
    """Whether a Schema artifact holds a curated schema (rather than one inferred from train)."""
    with open(os.path.join(schema_dir, SCHEMA_SOURCE_FILE), encoding="utf-8") as handle:
        return bool(json.load(handle)["curated"])
