"""The label as ExampleGen sees it, per task (``features.task``): what it counts per split, what it
records in ``split_info.json`` and the checks that stop a run before anything is trained on it.

- binary: rows per label value; the positive value must occur, and some other value too.
- multiclass: rows per class and split; at least two classes, and every class of eval or test must
  have train rows (the model's classes are the train split's values).
- regression: the label is read as a number; count, missing, min, max and mean per split (value counts
  would be as long as the data); at least two distinct values.

A missing label counts as the value ``""`` for the binary and multiclass tasks (a negative example,
for binary: as before tasks existed) and as ``missing`` for regression.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import SPLITS, FeaturesConfig
from pipeline.errors import DataError


def counts_by_split(column: pa.Array, row_splits: np.ndarray) -> Iterator[tuple[str, object, int]]:
    """(split, value, rows) for every value of ``column`` (as text; ``None`` when missing) in each split;
    ``row_splits`` holds each row's split index into ``SPLITS``."""
    column = column.cast(pa.string())
    for index, split in enumerate(SPLITS):
        for item in pc.value_counts(column.filter(pa.array(row_splits == index))).to_pylist():
            yield split, item["values"], item["counts"]


class LabelSummary:
    """The label's values, batch by batch; ``check`` then raises on a label no model can learn."""

    def __init__(self, features: FeaturesConfig):
        self.features = features
        self.counts: dict[str, Counter] = {split: Counter() for split in SPLITS}
        self._stats = {split: {"count": 0, "missing": 0, "sum": 0.0, "min": math.inf, "max": -math.inf}
                       for split in SPLITS}

    @property
    def regression(self) -> bool:
        return self.features.task == "regression"

    def add(self, batch: pa.RecordBatch, row_splits: np.ndarray) -> None:
        """Adds one batch's labels; ``row_splits`` holds each row's split index into ``SPLITS``."""
        column = batch.column(batch.schema.get_field_index(self.features.label))
        if not self.regression:
            for split, value, count in counts_by_split(column, row_splits):
                self.counts[split]["" if value is None else value] += count
            return
        values = np.asarray(pc.fill_null(column, np.nan), dtype=np.float64)
        present = ~np.asarray(column.is_null(), dtype=bool)
        for index, split in enumerate(SPLITS):
            rows = row_splits == index
            chosen = values[rows & present]
            stats = self._stats[split]
            stats["missing"] += int((rows & ~present).sum())
            if len(chosen):
                stats["count"] += len(chosen)
                stats["sum"] += float(chosen.sum())
                stats["min"] = min(stats["min"], float(chosen.min()))
                stats["max"] = max(stats["max"], float(chosen.max()))

    def total_counts(self) -> Counter:
        """Rows per label value over all splits (binary and multiclass)."""
        return sum(self.counts.values(), Counter())

    def stats(self) -> dict[str, dict]:
        """Count, missing, min, max and mean of a numeric label per split (regression)."""
        out = {}
        for split, stats in self._stats.items():
            count = stats["count"]
            out[split] = {"count": count, "missing": stats["missing"],
                          "min": stats["min"] if count else None, "max": stats["max"] if count else None,
                          "mean": stats["sum"] / count if count else None}
        return out

    def info(self) -> dict:
        """The label's entries of ``split_info.json``."""
        if self.regression:
            return {"label_stats": self.stats()}
        return {"label_counts": dict(sorted(self.total_counts().items())),
                "label_counts_by_split": {split: dict(sorted(counts.items())) for split, counts in self.counts.items()}}

    def check(self, where: str) -> None:
        """Raises a ``DataError`` (naming ``where``, the file or source) on a label no model can learn."""
        check = {"binary": self._check_binary, "multiclass": self._check_multiclass,
                 "regression": self._check_regression}[self.features.task]
        check(where)

    def _check_binary(self, where: str) -> None:
        features, labels = self.features, self.total_counts()
        seen = _listed(labels)
        if features.positive_value not in labels:
            spaced = any(value.strip() == features.positive_value for value in labels)
            hint = ("; some values have spaces around them: for a CSV file set data.csv.trim_whitespace: true"
                    if spaced else "")
            raise DataError(f"{where}: the label column '{features.label}' never takes the positive value "
                            f"'{features.positive_value}' (features.positive); values seen: {seen}{hint}")
        if len(labels) < 2:
            raise DataError(f"{where}: the label column '{features.label}' has one class only ({seen}); "
                            "expected both positive and negative examples")

    def _check_multiclass(self, where: str) -> None:
        label, labels = self.features.label, self.total_counts()
        if len(labels) < 2:
            raise DataError(f"{where}: the label column '{label}' has one class only ({_listed(labels)}); expected "
                            "at least two classes (features.task: multiclass)")
        train = self.counts["train"]
        outside = sorted({value for split in SPLITS[1:] for value in self.counts[split] if value not in train})
        if outside:
            listed = ", ".join(f"{_shown(value)} (" + ", ".join(f"{split} {self.counts[split][value]:,}"
                                                                 for split in SPLITS[1:] if self.counts[split][value])
                               + ")" for value in outside)
            many = f"{len(outside)} classes" if len(outside) > 1 else "a class"
            raise DataError(f"{where}: label column '{label}': {many} seen only outside train: {listed}; the train "
                            f"split has {_listed(train)}; expected every class to have train rows (the model's classes "
                            "are the train split's labels): add rows of it, or remove its rows")

    def _check_regression(self, where: str) -> None:
        label, stats = self.features.label, self.stats()
        count = sum(s["count"] for s in stats.values())
        if count == 0:
            raise DataError(f"{where}: the label column '{label}' has no values; expected a number in every row "
                            "(features.task: regression)")
        low = min(s["min"] for s in stats.values() if s["count"])
        high = max(s["max"] for s in stats.values() if s["count"])
        if low == high:
            raise DataError(f"{where}: the label column '{label}' takes one value only ({low:g}, in all {count:,} "
                            "rows with a value); expected a numeric label that varies (features.task: regression)")


def _shown(value: str) -> str:
    return "'' (missing)" if value == "" else f"'{value}'"


def _listed(counts: Counter) -> str:
    return ", ".join(f"{_shown(v)} ({n:,})" for v, n in counts.most_common(10)) + (" ..." if len(counts) > 10 else "")
