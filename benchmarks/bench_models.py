"""Each model's training time and eval AUC on the quickstart's data and at 100k rows. Prints figures;
asserts nothing.

    .venv/bin/python benchmarks/bench_models.py [--rows 20000,100000] [--models wide_and_deep,dnn,...]

For each row count it generates the quickstart's credit data (``--seed``, 7 as the quickstart) and runs
the quickstart pipeline up to Transform in a temporary folder (removed afterwards). Then the Trainer's
core, ``components.trainer.core.run_trainer``, trains each model with the trainer section's defaults
for it (``TrainerConfig(model=...)``, tuning off), each in a fresh Python process so that every model
pays the same imports and tracing, as a pipeline's Trainer does. Per model it prints the training time
(from the call to the Trainer's "exporting" line: datasets, label check, fit with early stopping),
the export time, the eval AUC the Trainer reports, and the epochs run or the trees kept.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("wide_and_deep", "dnn", "gradient_boosted_trees", "random_forest")
_RESULT = "BENCH_RESULT "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="20000,100000", help="comma-separated row counts")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated trainer.model values")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train", nargs=3, metavar=("MODEL", "RUN_DIR", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        _train_one(*args.train)
        return
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.disable(logging.WARNING)  # TensorFlow's and Beam's warnings from the pipeline up to Transform
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    for rows in (int(text.replace("_", "")) for text in args.rows.split(",")):
        folder = tempfile.mkdtemp(prefix="sluiceway-bench-models-")
        try:
            started = time.perf_counter()
            run_dir = _transformed(folder, rows, args.seed)
            print(f"{rows:,} rows (seed {args.seed}): ExampleGen to Transform in {time.perf_counter() - started:.0f}s")
            print(f"  {'model':<24} {'training':>9} {'export':>7} {'eval AUC':>9}  stopped at")
            for model in models:
                result = _in_fresh_process(model, run_dir, os.path.join(folder, model))
                figures = result["figures"]
                stop = (f"{figures['trees']} trees" if "trees" in figures
                        else f"epoch {figures['epochs']} (best {figures['best_epoch']})")
                print(f"  {model:<24} {result['training']:8.1f}s {result['export']:6.1f}s "
                      f"{figures['eval_auc']:9.4f}  {stop}", flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _transformed(folder: str, rows: int, seed: int) -> str:
    """The quickstart pipeline up to Transform on ``rows`` generated rows; returns its run folder."""
    from pipeline import datagen
    from pipeline.loader import load_config
    from pipeline.runner import run_pipeline

    with open(os.path.join(REPO, "examples", "quickstart", "pipeline.yaml"), encoding="utf-8") as handle:
        text = handle.read().replace("../../schemas/quickstart/schema.pbtxt",
                                     os.path.join(REPO, "schemas", "quickstart", "schema.pbtxt"))
    config_file = os.path.join(folder, "pipeline.yaml")
    with open(config_file, "w", encoding="utf-8") as handle:
        handle.write(text)
    datagen.generate(os.path.join(folder, "data", "credit.csv.gz"), rows=rows, seed=seed)
    result = run_pipeline(load_config(config_file), config_file, until="Transform", echo=lambda _: None)
    if result.status != "SUCCEEDED":
        raise SystemExit(f"the pipeline up to Transform did not succeed: {result.status}")
    return result.run_dir


def _in_fresh_process(model: str, run_dir: str, out_dir: str) -> dict:
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--train", model, run_dir, out_dir],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT)]
    if done.returncode or not lines:
        raise SystemExit(f"training {model} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len(_RESULT):])


def _train_one(model: str, run_dir: str, out_dir: str) -> None:
    """Runs the Trainer's core on ``run_dir``'s Transform outputs; prints one JSON line of timings."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from components.trainer.core import run_trainer
    from components.tuner.core import write_hyperparameters
    from pipeline.config import TrainerConfig

    trainer = TrainerConfig(model=model)
    hyperparameters, model_dir, logs_dir = (os.path.join(out_dir, name) for name in ("hp", "model", "logs"))
    write_hyperparameters(hyperparameters, trainer.hyperparameters(), "benchmarks/bench_models.py")
    os.makedirs(logs_dir)
    marks: dict[str, float] = {}

    def progress(line: str) -> None:
        if line.startswith("exporting"):
            marks["export"] = time.perf_counter()

    import tensorflow  # noqa: F401 - imported before the clock starts, as in a pipeline's process

    started = time.perf_counter()
    figures = run_trainer(os.path.join(run_dir, "Transform", "transformed_examples"),
                          os.path.join(run_dir, "Transform", "transform_graph"), hyperparameters, model_dir,
                          logs_dir, trainer, progress)
    finished = time.perf_counter()
    exported = marks.get("export", finished)
    print(_RESULT + json.dumps({"training": exported - started, "export": finished - exported,
                                "figures": {k: v for k, v in figures.items() if k != "hyperparameters"}}))


if __name__ == "__main__":
    main()
