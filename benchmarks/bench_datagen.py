"""Benchmark pipeline.datagen.generate.

Usage::

    .venv/bin/python benchmarks/bench_datagen.py [--rows N] [--format csv.gz|csv|parquet]

Generates into a temporary directory (removed afterwards) and prints rows,
seconds, rows/s, output size and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--format", default="csv.gz", choices=("csv.gz", "csv", "parquet")
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bias", type=float, default=0.0)
    parser.add_argument("--drift", type=float, default=0.0)
    args = parser.parse_args(argv)

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    from pipeline import datagen

    with tempfile.TemporaryDirectory(prefix="bench_datagen_") as tmp:
        path = os.path.join(tmp, "credit." + args.format)
        t0 = time.perf_counter()
        result = datagen.generate(
            path, rows=args.rows, seed=args.seed, bias=args.bias, drift=args.drift
        )
        wall = time.perf_counter() - t0
        size_mb = os.path.getsize(path) / 1e6

    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 1e6 if sys.platform == "darwin" else peak / 1024

    print(f"format        {result.format}")
    print(f"rows          {result.rows}")
    print(f"seconds       {wall:.2f}")
    print(f"rows/s        {result.rows / wall:,.0f}")
    print(f"size_MB       {size_mb:.1f}")
    print(f"positive_rate {result.positive_rate:.4f}")
    print(f"peak_RSS_MB   {peak_mb:.1f}")


if __name__ == "__main__":
    main()
