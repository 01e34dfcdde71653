"""Reading and writing the per-split TFDV statistics inside an ExampleStatistics artifact."""

from __future__ import annotations

import os

from pipeline.specs import STATS_FILE


def stats_path(statistics_dir: str, split: str) -> str:
    """Where ``split``'s statistics live inside an ExampleStatistics artifact (TFX's layout)."""
    return os.path.join(statistics_dir, f"Split-{split}", STATS_FILE)


def load_split_stats(statistics_dir: str, split: str):
    """The ``DatasetFeatureStatisticsList`` of one split."""
    import tensorflow_data_validation as tfdv

    return tfdv.load_stats_binary(stats_path(statistics_dir, split))
