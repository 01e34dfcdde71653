"""Throughput and memory of `sluiceway predict` on a large CSV. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_predict.py [--rows 1000000] [--model PATH] [--output parquet|csv]

In a temporary folder (removed afterwards) it generates ``--rows`` rows of the quickstart's credit data
(CSV, seed 8) and, without ``--model``, trains the quickstart pipeline up to the Trainer on 20,000
generated rows (seed 7, as the quickstart). Then ``sluiceway predict --model <that model> --keep
applicant_id`` (``pipeline.cli.main``) scores the CSV in a separate Python process, and the figures of
that process are printed: rows, seconds (of the BulkInferrer's scoring, TensorFlow's import and the
model's load included, from the lineage file; and of the whole process), rows/s, its peak RSS and the
output's size. The peak is the process's own ``VmHWM``
(``/proc/self/status``), read as it ends. Not ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: Linux counts
in a child's figure the memory it started with, a copy of its parent's, before ``exec``; after
training in this process that said 1,159 MB for a scoring process whose ``VmHWM`` was 878 MB. Last,
the first ``--check-rows`` rows are encoded here by hand as tf.Examples and scored by calling the
model's ``serving_default`` directly; the largest difference from the output's probabilities is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO, "examples", "quickstart", "pipeline.yaml")  # its data and features sections
KEEP = "applicant_id"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to score")
    parser.add_argument("--model", help="a SavedModel of the quickstart's features (default: train one)")
    parser.add_argument("--output", default="parquet", choices=("parquet", "csv"))
    parser.add_argument("--check-rows", type=int, default=5000, help="rows compared with serving_default")
    parser.add_argument("--score", nargs=3, metavar=("MODEL", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)  # google.api_core's about Python 3.11
    if args.score:
        _score(*args.score)
        return
    logging.disable(logging.WARNING)  # TensorFlow's and Beam's warnings from training
    from pipeline import datagen

    folder = tempfile.mkdtemp(prefix="sluiceway-bench-predict-")
    try:
        started = time.perf_counter()
        data = os.path.join(folder, "to-score.csv")
        generated = datagen.generate(data, rows=args.rows, seed=8)
        print(f"generated {args.rows:,} rows ({generated.size_bytes / 1e6:.0f} MB CSV) in "
              f"{time.perf_counter() - started:.0f}s", flush=True)
        model = args.model or _trained_model(folder)
        out = os.path.join(folder, f"predictions.{args.output}")
        _write_pipeline(folder)
        figures, wall = _score_in_child(model, data, out)
        print(f"rows             {figures['rows_scored']:,} scored of {figures['rows_read']:,} read "
              f"({figures['rows_skipped']:,} skipped)")
        print(f"seconds          {figures['seconds']:.1f} scoring (TensorFlow import and model load included), "
              f"{wall:.1f} for the whole process")
        print(f"rows/s           {figures['rows_per_second']:,.0f}")
        print(f"peak RSS         {figures['peak_rss_mb']:,.0f} MB (the scoring process)")
        print(f"output           {os.path.getsize(out) / 1e6:.1f} MB {args.output} ({', '.join(figures['columns'])}), "
              f"input {generated.size_bytes / 1e6:.0f} MB CSV")
        _check(model, data, out, args.check_rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _trained_model(folder: str) -> str:
    """The quickstart pipeline up to the Trainer on 20,000 generated rows in ``folder``; returns the
    model's folder."""
    from pipeline import datagen
    from pipeline.loader import load_config
    from pipeline.runner import run_pipeline

    started = time.perf_counter()
    source = os.path.join(folder, "data", "credit.csv.gz")
    datagen.generate(source, rows=20_000, seed=7)
    config = load_config(QUICKSTART, {"pipeline.root": os.path.join(folder, "pipelines"), "data.source": source,
                                      "pusher.destination": os.path.join(folder, "serving")})
    result = run_pipeline(config, QUICKSTART, until="Trainer", echo=lambda _: None)
    if result.status != "SUCCEEDED":
        raise SystemExit(f"the quickstart pipeline up to the Trainer did not succeed: {result.status}")
    trainer = next(outcome for outcome in result.components if outcome.name == "Trainer")
    print(f"trained the quickstart model on 20,000 rows in {time.perf_counter() - started:.0f}s "
          f"(eval AUC {trainer.figures['eval_auc']})", flush=True)
    return trainer.outputs["model"]


def _score_in_child(model: str, data: str, out: str) -> tuple[dict, float]:
    """Runs ``_score`` in a new process; returns its figures and its wall time."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--score", model, data, out], check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"scoring failed (exit code {done.returncode})")
    with open(out + ".figures.json", encoding="utf-8") as handle:
        return json.load(handle), wall


def _write_pipeline(folder: str) -> str:
    """The quickstart's YAML with its runs kept in ``folder`` (what `sluiceway predict` reads)."""
    with open(QUICKSTART, encoding="utf-8") as handle:
        text = handle.read()
    text = text.replace("root: pipelines", f"root: {os.path.join(folder, 'pipelines')}").replace(
        "../../schemas/", os.path.join(REPO, "schemas") + "/")
    path = os.path.join(folder, "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _score(model: str, data: str, out: str) -> None:
    """`sluiceway predict` of ``data`` into ``out`` (the child process); writes the figures beside the output."""
    from pipeline.cli import main as sluiceway

    pipeline = os.path.join(os.path.dirname(out), "pipeline.yaml")
    code = sluiceway(["predict", pipeline, "--data", data, "-o", out, "--model", model, "--keep", KEEP])
    if code:
        raise SystemExit(code)
    with open(out + ".lineage.json", encoding="utf-8") as handle:
        lineage = json.load(handle)
    rows = lineage["rows"]
    figures = {"rows_read": rows["read"], "rows_scored": rows["scored"], "rows_skipped": rows["skipped"],
               "seconds": lineage["seconds"], "rows_per_second": rows["scored"] / lineage["seconds"],
               "columns": list(lineage["output"]["columns"])}
    with open("/proc/self/status", encoding="ascii") as handle:  # VmHWM: this process's peak resident set
        peak_kib = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    with open(out + ".figures.json", "w", encoding="utf-8") as handle:
        json.dump({**figures, "peak_rss_mb": peak_kib / 1024}, handle)


def _check(model: str, data: str, out: str, rows: int) -> None:
    """Prints how far the output's first ``rows`` probabilities are from ``serving_default``'s own."""
    import numpy as np
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import tensorflow as tf

    from pipeline.loader import load_config

    features = load_config(QUICKSTART).features
    with open(data, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        first = [row for _, row in zip(range(rows), reader)]
    examples = []
    for row in first:
        feature = {name: tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[name])]))
                   for name in features.numeric if row[name] != ""}
        feature.update({name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[row[name].encode()]))
                        for name in features.categorical if row[name] != ""})
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    serve = tf.saved_model.load(model).signatures["serving_default"]
    direct = serve(examples=tf.constant(examples))["scores"].numpy()[:, 0]
    table = pq.read_table(out) if out.endswith(".parquet") else pa_csv.read_csv(out)
    written = table.column("probability").to_numpy()[:len(first)]
    ids = table.column(KEEP).to_pylist()[:len(first)]
    same_rows = ids == [row[KEEP] for row in first]
    difference = float(np.max(np.abs(written - direct)))
    identical = int(np.sum(written == direct))
    verdict = "equal" if same_rows and difference <= 1e-6 else "DIFFERENT"
    print(f"check            first {len(first):,} rows vs serving_default called directly: {verdict} "
          f"(max |difference| {difference:.2g}, {identical:,} bit-identical, ids in order: {same_rows})")


if __name__ == "__main__":
    main()
