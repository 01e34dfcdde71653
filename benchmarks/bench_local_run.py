"""Time and memory of a whole local run (and of a fully cached rerun). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_local_run.py --rows 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time

from pipeline import datagen
from pipeline.loader import load_config
from pipeline.runner import run_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="sluiceway-bench-")
    try:
        text = open(os.path.join(REPO, "examples", "quickstart", "pipeline.yaml")).read().replace(
            "../../schemas/quickstart/schema.pbtxt", os.path.join(REPO, "schemas", "quickstart", "schema.pbtxt"))
        config_file = os.path.join(folder, "pipeline.yaml")
        with open(config_file, "w") as handle:
            handle.write(text)
        datagen.generate(os.path.join(folder, "data", "credit.csv.gz"), rows=args.rows, seed=7)
        config = load_config(config_file)
        started = time.perf_counter()
        first = run_pipeline(config, config_file, echo=lambda _: None)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        second = run_pipeline(config, config_file, echo=lambda _: None)
        cached = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"rows                 {args.rows:,}")
        for outcome in first.components:
            print(f"  {outcome.name:<18} {outcome.seconds:6.1f}s")
        print(f"first run            {cold:6.1f}s (TensorFlow/TFDV import included)")
        print(f"rerun, all cached    {cached:6.2f}s ({second.executed} executed, {second.cached} cached)")
        print(f"peak RSS             {peak:,.0f} MB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
