"""ExampleGen throughput and memory on generated data. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_example_gen.py --rows 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from components.example_gen.core import run_example_gen
from pipeline import datagen
from pipeline.config import DataConfig, FeaturesConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", default="csv.gz", choices=("csv", "csv.gz", "parquet"))
    parser.add_argument("--no-key", action="store_true", help="hash whole rows instead of applicant_id")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, f"credit.{args.format}")
        generated = datagen.generate(source, rows=args.rows, seed=1)
        rss_after_generate = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        data = DataConfig(source=source, split={"key": None if args.no_key else datagen.KEY})
        features = FeaturesConfig(label=datagen.LABEL, positive=datagen.POSITIVE, numeric=list(datagen.NUMERIC),
                                  categorical=list(datagen.CATEGORICAL), sensitive=list(datagen.SENSITIVE))
        started = time.perf_counter()
        result = run_example_gen(data, features, os.path.join(folder, "examples"))
        seconds = time.perf_counter() - started
        out_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(os.path.join(folder, "examples"))
                     for f in files) / 1e6
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"input            {args.rows:,} rows, {args.format}, {generated.size_bytes / 1e6:.1f} MB")
    print(f"split by         {'whole row' if args.no_key else datagen.KEY}")
    print(f"rows per split   {result.rows}")
    print(f"seconds          {seconds:.1f}")
    print(f"rows/s           {args.rows / seconds:,.0f}")
    print(f"output           {out_mb:.1f} MB gzip TFRecords")
    print(f"peak RSS         {peak:.0f} MB (after generating the input: {rss_after_generate:.0f} MB)")


if __name__ == "__main__":
    main()
