"""The BulkInferrer's scoring core on the tiny trained model: scores equal the model's own
``serving_default`` on the same rows whatever the input format, kept columns come through, bad rows
fail with their line or are skipped and listed, a failure leaves an existing output as it was, and
the lineage file says which model and which data made the predictions."""

from __future__ import annotations

import csv
import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from components.bulk_inferrer.core import score
from components.bulk_inferrer.output import OutputError
from components.bulk_inferrer.predictions import ModelMismatch
from pipeline.errors import DataError
from tests.components.conftest import CATEGORICAL, NUMERIC, features_config

pytestmark = pytest.mark.slow

ROWS = 300


def _data():
    from pipeline.config import DataConfig

    return DataConfig.model_validate({"source": "unused.csv"})


def _example(row: dict) -> bytes:
    """A CSV row as a raw tf.Example, built here by hand (not by the code under test)."""
    import tensorflow as tf

    feature = {}
    for name in NUMERIC:
        if row[name] != "":
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[name])]))
    for name in [*CATEGORICAL, "applicant_id"]:
        if row[name] != "":
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row[name].encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path, rows: list[dict]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def serve(trained_model):
    """Direct ``serving_default`` scores of hand-built tf.Examples of CSV rows."""
    import tensorflow as tf

    signature = tf.saved_model.load(trained_model.model).signatures["serving_default"]

    def scores(rows: list[dict]) -> np.ndarray:
        return signature(examples=tf.constant([_example(row) for row in rows]))["scores"].numpy()[:, 0]

    return scores


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> str:
    """Generated rows to score, without the label column (as data to score usually is)."""
    from pipeline.datagen import generate

    folder = tmp_path_factory.mktemp("to-score")
    full = str(folder / "full.csv")
    generate(full, rows=ROWS, seed=11)
    rows = [{name: value for name, value in row.items() if name != "approved"} for row in _rows(full)]
    return _write_rows(folder / "requests.csv", rows)


def _read_output(path: str) -> pa.Table:
    return pq.read_table(path) if path.endswith(".parquet") else pa_csv.read_csv(path)


def _as_parquet(csv_path: str, path) -> str:
    pq.write_table(pa_csv.read_csv(csv_path), str(path))
    return str(path)


def _as_tfrecord(csv_path: str, path) -> str:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in _rows(csv_path):
            writer.write(_example(row))
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "tfrecord"])
def test_scores_equal_serving_default_on_the_same_rows(fmt, trained_model, serve, data_csv, tmp_path):
    source = {"csv": lambda: data_csv, "parquet": lambda: _as_parquet(data_csv, tmp_path / "requests.parquet"),
              "tfrecord": lambda: _as_tfrecord(data_csv, tmp_path / "requests.tfrecord")}[fmt]()
    output = str(tmp_path / "out" / "predictions.parquet")
    lines: list[str] = []
    figures = score(trained_model.model, [source], output, data=_data(), features=features_config(),
                    keep=["applicant_id"], batch_rows=64, progress=lines.append)

    table = _read_output(output)
    rows = _rows(data_csv)
    expected = serve(rows)
    assert table.column_names == ["applicant_id", "probability", "predicted"]
    assert table.column("applicant_id").to_pylist() == [row["applicant_id"] for row in rows]
    probability = table.column("probability").to_numpy()
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-6)
    assert table.column("predicted").to_pylist() == (probability >= 0.5).tolist()
    assert 0 < (probability >= 0.5).sum() < ROWS  # both classes predicted: the comparison means something
    assert figures["rows_scored"] == figures["rows_read"] == ROWS and figures["rows_skipped"] == 0
    assert figures["output"] == output and lines[-1].startswith(f"scored {ROWS:,} rows")


def test_kept_columns_come_first_in_the_order_given_with_their_values(trained_model, data_csv, tmp_path):
    output = str(tmp_path / "predictions.csv")
    keep = ["sex", "applicant_id", "income"]  # a feature, an id, a numeric feature
    score(trained_model.model, [data_csv], output, data=_data(), features=features_config(), keep=keep,
          decision_threshold=0.3)

    table = pa_csv.read_csv(output, convert_options=pa_csv.ConvertOptions(
        column_types={"sex": pa.string(), "applicant_id": pa.string(), "income": pa.float64()}))
    rows = _rows(data_csv)
    assert table.column_names == [*keep, "probability", "predicted"]
    assert table.column("sex").to_pylist() == [row["sex"] for row in rows]
    assert table.column("applicant_id").to_pylist() == [row["applicant_id"] for row in rows]
    assert table.column("income").to_pylist() == [float(row["income"]) if row["income"] else None for row in rows]
    assert table.column("predicted").to_pylist() == (table.column("probability").to_numpy() >= 0.3).tolist()


def _with_bad_values(data_csv: str, path, changes: dict[int, tuple[str, str]], copies: int = 1) -> str:
    """The rows of ``data_csv`` (repeated ``copies`` times) with ``changes``: row index -> (column, value)."""
    rows = [dict(row) for _ in range(copies) for row in _rows(data_csv)]
    for index, (column, value) in changes.items():
        rows[index][column] = value
    return _write_rows(path, rows)


def test_a_value_that_is_not_a_number_fails_naming_file_line_column_and_value(trained_model, data_csv,
                                                                             tmp_path):
    bad = _with_bad_values(data_csv, tmp_path / "bad.csv", {10: ("income", "abc")})
    with pytest.raises(DataError) as raised:
        score(trained_model.model, [bad], str(tmp_path / "out.parquet"), data=_data(), features=features_config())
    message = str(raised.value)
    assert bad in message and "line 12" in message and "'income'" in message and "'abc'" in message
    assert not os.path.exists(tmp_path / "out.parquet")


def test_skip_leaves_bad_rows_out_lists_them_with_their_line_and_scores_the_others(trained_model, serve, data_csv,
                                                                                  tmp_path):
    # 60 copies of the rows (~2 MB): with batch_rows 1024 the CSV reader's blocks are 1 MiB, so the
    # first bad value is in the second block, after rows already scored
    copies = 60
    changes = {12000: ("income", "abc"), 12001: ("age", " 12x "), 13000: ("credit_score", "inf"),
               13100: ("sex", "inf")}  # the last is a category: any text is one
    bad = _with_bad_values(data_csv, tmp_path / "bad.csv", changes, copies=copies)
    with open(bad, "rb") as handle:
        assert len(b"".join(handle.readline() for _ in range(12001))) > 1 << 20
    output = str(tmp_path / "out.parquet")
    figures = score(trained_model.model, [bad], output, data=_data(), features=features_config(),
                    keep=["applicant_id"], on_bad_row="skip", batch_rows=1024)

    assert figures["rows_read"] == ROWS * copies and figures["rows_skipped"] == 3
    assert figures["rows_scored"] == ROWS * copies - 3
    assert figures["bad_rows"] == [
        {"file": bad, "where": "line 12002", "column": "income", "value": "abc", "expected": "a number"},
        {"file": bad, "where": "line 12003", "column": "age", "value": "12x", "expected": "a number"},
        {"file": bad, "where": "line 13002", "column": "credit_score", "value": "inf", "expected": "a finite number"}]
    rows = _rows(bad)
    kept = [row for index, row in enumerate(rows) if index not in (12000, 12001, 13000)]
    table = pq.read_table(output)
    assert table.column("applicant_id").to_pylist() == [row["applicant_id"] for row in kept]
    np.testing.assert_allclose(table.column("probability").to_numpy(), serve(kept), rtol=0, atol=1e-6)
    lineage = json.loads(open(figures["lineage"], encoding="utf-8").read())
    assert lineage["rows"] == {"read": ROWS * copies, "scored": ROWS * copies - 3, "skipped": 3}
    assert lineage["bad_rows"] == figures["bad_rows"]


def test_non_finite_values_read_as_missing_when_the_data_section_says_so(trained_model, serve, data_csv, tmp_path):
    bad = _with_bad_values(data_csv, tmp_path / "inf.csv", {3: ("income", "inf")})
    output = str(tmp_path / "out.parquet")
    data = _data().model_copy(update={"non_finite": "missing"})
    figures = score(trained_model.model, [bad], output, data=data, features=features_config())

    rows = _rows(bad)
    rows[3]["income"] = ""
    assert figures["rows_scored"] == ROWS and figures["non_finite_as_missing"] == {"income": 1}
    np.testing.assert_allclose(pq.read_table(output).column("probability").to_numpy(), serve(rows), atol=1e-6)


def test_a_column_to_keep_that_the_file_lacks_is_an_error_naming_file_and_column(trained_model, data_csv,
                                                                               tmp_path):
    with pytest.raises(DataError) as raised:
        score(trained_model.model, [data_csv], str(tmp_path / "out.parquet"), data=_data(),
              features=features_config(), keep=["applicant_id", "customer_ref"])
    assert data_csv in str(raised.value) and "'customer_ref'" in str(raised.value)
    assert os.listdir(tmp_path) == []


def test_a_failure_midway_leaves_the_existing_output_and_lineage_untouched(trained_model, data_csv, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "predictions.parquet"
    output.write_bytes(b"yesterday's predictions")
    (folder / "predictions.parquet.lineage.json").write_text("{}")
    late = _with_bad_values(data_csv, tmp_path / "late.csv", {ROWS - 1: ("age", "n/a")})
    with pytest.raises(DataError, match="line 301"):
        score(trained_model.model, [data_csv, late], str(output), data=_data(), features=features_config())
    assert output.read_bytes() == b"yesterday's predictions"
    assert sorted(os.listdir(folder)) == ["predictions.parquet", "predictions.parquet.lineage.json"]
    assert (folder / "predictions.parquet.lineage.json").read_text() == "{}"


def test_an_unwritable_destination_is_an_error_naming_it(trained_model, data_csv, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    output = str(tmp_path / "a-file" / "predictions.parquet")
    with pytest.raises(OutputError, match="a-file/predictions.parquet: cannot make its folder"):
        score(trained_model.model, [data_csv], output, data=_data(), features=features_config())
    with pytest.raises(OutputError, match="is a folder"):
        score(trained_model.model, [data_csv], str(tmp_path), data=_data(), features=features_config(),
              output_format="parquet")
    with pytest.raises(OutputError, match="cannot tell the output format"):
        score(trained_model.model, [data_csv], str(tmp_path / "out.xlsx"), data=_data(), features=features_config())
    with pytest.raises(OutputError, match="'probability'|probability have the name of a prediction column"):
        score(trained_model.model, [data_csv], str(tmp_path / "out.csv"), data=_data(), features=features_config(),
              keep=["probability"])


def test_the_lineage_file_names_the_model_fingerprint_and_the_data(trained_model, data_csv, tmp_path):
    from components.common.model_fingerprint import model_fingerprint

    output = str(tmp_path / "predictions.csv.gz")
    figures = score(trained_model.model, [data_csv], output, data=_data(), features=features_config(),
                    keep=["applicant_id"], annotations={"model_version": "1796175825"})

    assert figures["lineage"] == output + ".lineage.json"
    lineage = json.loads(open(figures["lineage"], encoding="utf-8").read())
    assert lineage["model"] == {"path": trained_model.model, "fingerprint": model_fingerprint(trained_model.model),
                                "task": "binary", "positive": "yes", "decision_threshold": 0.5}
    assert lineage["annotations"] == {"model_version": "1796175825"}
    assert lineage["inputs"] == [{"path": data_csv, "format": "csv",
                                  "sha256": hashlib.sha256(open(data_csv, "rb").read()).hexdigest(),
                                  "rows_read": ROWS, "rows_scored": ROWS, "rows_skipped": 0}]
    assert lineage["output"] == {"path": output, "format": "csv",
                                 "sha256": hashlib.sha256(open(output, "rb").read()).hexdigest(), "rows": ROWS,
                                 "columns": {"applicant_id": "string", "probability": "float", "predicted": "bool"}}
    assert lineage["rows"] == {"read": ROWS, "scored": ROWS, "skipped": 0}
    assert pa_csv.read_csv(output).num_rows == ROWS  # gzip-compressed CSV, read back


@pytest.fixture(scope="module")
def task_models(tmp_path_factory):
    """The Evaluator's tiny multiclass and regression models (fixed functions of ``x`` and ``group``)
    and a CSV of ``x``, ``group`` and an id."""
    from tests.components.evaluator import tiny_models as tm

    root = tmp_path_factory.mktemp("task-models")
    x = np.round(np.linspace(-1.5, 1.5, 41), 2)
    group = np.array(["a", "b"] * 20 + ["a"])
    source = _write_rows(root / "rows.csv", [{"id": f"r{index}", "x": str(value), "group": name}
                                             for index, (value, name) in enumerate(zip(x, group))])
    return {"multiclass": tm.save_multiclass_model(str(root / "multiclass"), shift=0.5),
            "regression": tm.save_regression_model(str(root / "regression"), offset=2.0),
            "source": source, "x": x, "group": group, "tm": tm}


def test_multiclass_and_regression_columns(task_models, tmp_path):
    from pipeline.config import FeaturesConfig

    tm, x, group = task_models["tm"], task_models["x"], task_models["group"]
    multiclass = FeaturesConfig(label=tm.MULTICLASS_LABEL, task="multiclass", numeric=["x"], categorical=["group"])
    output = str(tmp_path / "tiers.parquet")
    score(task_models["multiclass"], [task_models["source"]], output, data=_data(), features=multiclass, keep=["id"])
    table = pq.read_table(output)
    assert table.column_names == ["id", "probability_low", "probability_mid", "probability_high", "predicted"]
    expected = tm.multiclass_scores(x.astype(np.float32), group, shift=0.5)
    got = np.stack([table.column(f"probability_{name}").to_numpy() for name in tm.CLASSES], axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert table.column("predicted").to_pylist() == [tm.CLASSES[i] for i in np.argmax(got, axis=1)]
    assert set(table.column("predicted").to_pylist()) == set(tm.CLASSES)

    regression = FeaturesConfig(label=tm.REGRESSION_LABEL, task="regression", numeric=["x"], categorical=["group"])
    output = str(tmp_path / "rates.parquet")
    score(task_models["regression"], [task_models["source"]], output, data=_data(), features=regression)
    table = pq.read_table(output)
    assert table.column_names == ["predicted"]
    np.testing.assert_allclose(table.column("predicted").to_numpy(),
                               tm.regression_predictions(x.astype(np.float32), group, offset=2.0), atol=1e-5)


def test_a_model_of_another_task_is_refused(task_models, tmp_path):
    from pipeline.config import FeaturesConfig

    binary = FeaturesConfig(label="rate", positive="yes", numeric=["x"], categorical=["group"])
    with pytest.raises(ModelMismatch, match="returns predictions; expected scores"):
        score(task_models["regression"], [task_models["source"]], str(tmp_path / "out.parquet"), data=_data(),
              features=binary)
    assert os.listdir(tmp_path) == []
