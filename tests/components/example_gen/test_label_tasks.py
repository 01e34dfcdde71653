"""ExampleGen's label per task (features.task): what split_info.json records and what stops a run."""

from __future__ import annotations

import json
import os
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tfx_bsl.coders import example_coder

from components.common.artifacts import split_file
from components.common.tfrecord import read_records
from components.example_gen.core import run_example_gen
from pipeline.config import SPLITS
from pipeline.errors import DataError
from pipeline.loader import load_config

ROWS = 90
TIERS = ["low", "mid", "high"]


def config(folder, source: str, task: str, label: str, data: str = ""):
    positive = '  positive: "yes"\n' if task == "binary" else ""
    text = (f"pipeline:\n  name: t\ndata:\n  source: {source}\n  split:\n    key: id\n{data}"
            f"features:\n  label: {label}\n  task: {task}\n{positive}  numeric: [age]\n  categorical: [city]\n")
    path = os.path.join(str(folder), "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return load_config(path)


def run(folder, source: str, task: str, label: str, data: str = ""):
    loaded = config(folder, source, task, label, data)
    examples = os.path.join(str(folder), "examples")
    result = run_example_gen(loaded.data, loaded.features, examples)
    with open(os.path.join(examples, "split_info.json"), encoding="utf-8") as handle:
        return result, json.load(handle), examples


def error(folder, source: str, task: str, label: str, data: str = "") -> str:
    loaded = config(folder, source, task, label, data)
    with pytest.raises(DataError) as info:
        run_example_gen(loaded.data, loaded.features, os.path.join(str(folder), "examples"))
    return str(info.value)


def write(path, labels: list[str], column: str = "tier") -> str:
    lines = [f"id,age,city,{column}\n"] + [f"r{i},{20 + i % 50},c{i % 3},{label}\n" for i, label in enumerate(labels)]
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return str(path)


def written(examples: str, split: str, label: str) -> list:
    records = list(read_records(split_file(examples, split)))
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    return [row[label][0] if row[label] else None for row in batch.to_pylist()]


def split_of_ids(tmp_path) -> dict[str, str]:
    """Which split each id r0..r89 lands in (the split is a hash of the key, whatever the label)."""
    source = write(tmp_path / "probe.csv", [TIERS[i % 3] for i in range(ROWS)])
    (tmp_path / "probe").mkdir()
    _, _, examples = run(tmp_path / "probe", source, "multiclass", "tier")
    return {row_id.decode(): split for split in SPLITS for row_id in written(examples, split, "id")}


# --- multiclass -----------------------------------------------------------------------------------


def test_multiclass_counts_per_split(tmp_path):
    source = write(tmp_path / "tiers.csv", [TIERS[i % 3] for i in range(ROWS)])

    result, info, examples = run(tmp_path, source, "multiclass", "tier")

    by_split = {split: dict(Counter(v.decode() for v in written(examples, split, "tier"))) for split in SPLITS}
    assert info["task"] == "multiclass"
    assert info["label_counts_by_split"] == by_split
    assert info["label_counts"] == {"high": 30, "low": 30, "mid": 30}
    assert result.label_counts_by_split == by_split and "label_stats" not in info


def test_multiclass_with_one_class_only(tmp_path):
    source = write(tmp_path / "one.csv", ["low"] * ROWS)

    message = error(tmp_path, source, "multiclass", "tier")

    assert message == (f"{source}: the label column 'tier' has one class only ('low' ({ROWS})); expected at least "
                       "two classes (features.task: multiclass)")


def test_multiclass_class_seen_only_outside_train(tmp_path):
    splits = split_of_ids(tmp_path)
    outside = {"eval": [i for i in range(ROWS) if splits[f"r{i}"] == "eval"][:2],
               "test": [i for i in range(ROWS) if splits[f"r{i}"] == "test"][:1]}
    labels = [TIERS[i % 2] for i in range(ROWS)]
    for i in outside["eval"] + outside["test"]:
        labels[i] = "high"
    source = write(tmp_path / "tiers.csv", labels)

    message = error(tmp_path, source, "multiclass", "tier")

    assert message.startswith(f"{source}: label column 'tier': a class seen only outside train: "
                              "'high' (eval 2, test 1); the train split has 'low' (")
    assert "expected every class to have train rows" in message


def test_multiclass_several_classes_outside_train_are_all_named(tmp_path):
    splits = split_of_ids(tmp_path)
    labels = [TIERS[i % 2] for i in range(ROWS)]
    labels[next(i for i in range(ROWS) if splits[f"r{i}"] == "eval")] = "gold"
    labels[next(i for i in range(ROWS) if splits[f"r{i}"] == "test")] = "silver"
    source = write(tmp_path / "tiers.csv", labels)

    message = error(tmp_path, source, "multiclass", "tier")

    assert "label column 'tier': 2 classes seen only outside train: 'gold' (eval 1), 'silver' (test 1);" in message


# --- regression -----------------------------------------------------------------------------------


def test_regression_label_is_a_number_with_figures_per_split(tmp_path):
    prices = [f"{100 + i * 2.5}" for i in range(ROWS)]
    prices[4] = ""  # missing
    source = write(tmp_path / "prices.csv", prices, column="price")

    result, info, examples = run(tmp_path, source, "regression", "price")

    assert "label_counts" not in info and info["task"] == "regression"
    for split in SPLITS:
        values = written(examples, split, "price")
        present = [v for v in values if v is not None]
        assert all(isinstance(v, float) for v in present)  # a float_list, not bytes
        assert info["label_stats"][split] == {"count": len(present), "missing": len(values) - len(present),
                                              "min": min(present), "max": max(present),
                                              "mean": pytest.approx(sum(present) / len(present))}
    assert sum(s["missing"] for s in info["label_stats"].values()) == 1
    assert result.label_stats == info["label_stats"]


def test_regression_label_that_is_not_a_number(tmp_path):
    prices = [f"{100 + i}" for i in range(ROWS)]
    prices[11] = "expensive"  # line 13
    source = write(tmp_path / "prices.csv", prices, column="price")

    message = error(tmp_path, source, "regression", "price")

    assert message.startswith(f"{source}: line 13: column 'price' has the value 'expensive'; expected a number "
                              "(it is the label (features.label) of a regression task)")


def test_regression_label_with_one_value_only(tmp_path):
    source = write(tmp_path / "prices.csv", ["7.5"] * ROWS, column="price")

    message = error(tmp_path, source, "regression", "price")

    assert message == (f"{source}: the label column 'price' takes one value only (7.5, in all {ROWS} rows with a "
                       "value); expected a numeric label that varies (features.task: regression)")


def test_regression_label_non_finite(tmp_path):
    prices = [f"{100 + i}" for i in range(ROWS)]
    prices[20] = "inf"  # line 22
    source = write(tmp_path / "prices.csv", prices, column="price")

    message = error(tmp_path, source, "regression", "price")
    _, info, _ = run(tmp_path, source, "regression", "price", data="  non_finite: missing\n")

    assert "'price' 1 (first on line 22)" in message and "data.non_finite: missing" in message
    assert sum(s["missing"] for s in info["label_stats"].values()) == 1
    assert max(s["max"] for s in info["label_stats"].values()) == 100 + ROWS - 1


def test_regression_label_of_strings_in_parquet(tmp_path):
    table = pa.table({"id": [f"r{i}" for i in range(ROWS)], "age": [float(i) for i in range(ROWS)],
                      "city": ["c"] * ROWS, "price": [str(i) for i in range(ROWS)]})
    source = str(tmp_path / "prices.parquet")
    pq.write_table(table, source)

    message = error(tmp_path, source, "regression", "price")

    assert message == (f"{source}: column 'price' has type string; expected a number (it is the label "
                       "(features.label) of a regression task)")


# --- binary ---------------------------------------------------------------------------------------


def test_binary_counts_per_split_too(tmp_path):
    source = write(tmp_path / "approved.csv", ["yes" if i % 3 else "no" for i in range(ROWS)], column="approved")

    _, info, examples = run(tmp_path, source, "binary", "approved")

    assert info["label_counts"] == {"no": 30, "yes": 60}
    assert info["label_counts_by_split"] == {
        split: dict(Counter(v.decode() for v in written(examples, split, "approved"))) for split in SPLITS}


def test_binary_positive_value_with_spaces_suggests_trimming(tmp_path):
    source = write(tmp_path / "approved.csv", [" yes" if i % 3 else " no" for i in range(ROWS)], column="approved")

    message = error(tmp_path, source, "binary", "approved")

    assert "never takes the positive value 'yes' (features.positive); values seen: ' yes' (60), ' no' (30)" in message
    assert "some values have spaces around them: for a CSV file set data.csv.trim_whitespace: true" in message
