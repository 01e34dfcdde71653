"""Benchmark the ExampleValidator's drift decision: false alarms on clean data, detection of drift.

Usage::

    .venv/bin/python benchmarks/bench_drift.py [--seeds 1-20] [--rows 20000] [--config PIPELINE.yaml]

For each seed, with the validation settings of the pipeline YAML (the quickstart's by default):

* clean: ``generate-data --rows N --seed S`` through the ExampleGen, StatisticsGen, SchemaGen and
  ExampleValidator cores, as ``sluiceway run`` does. Any anomaly is a false alarm: train, eval and
  test are drawn from one distribution.
* drifted: ``--drift 1`` shifts the whole population, so a data set generated with it has the same
  distribution in every split and train-vs-eval drift cannot show it (only the curated schema's
  unseen values can). Drift is what a model trained on the old population meets in the new one: the
  clean data's train split, and eval/test from the same seed's ``--drift 1`` data (the same
  applicant ids, so the splits hold the same applicants as in the clean run, seen in the shifted
  world). It is caught when the ExampleValidator stops; it is caught *by the drift check* when a
  COMPARATOR_* anomaly is among the reasons (not only the curated schema's unexpected values).

The clean statistics are also judged as before this change (``false_alarm_rate: null``, the
threshold alone) for comparison. Prints per seed the decisions, the largest TFDV distances, and
the time of each step; then the counts. Works in a temporary folder (removed afterwards).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def _seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=_seeds, default=_seeds("1-20"), help="e.g. 1-20 or 1,2,5")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--drift", type=float, default=1.0)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--config", default=os.path.join(root, "examples", "quickstart", "pipeline.yaml"))
    args = parser.parse_args(argv)
    if root not in sys.path:
        sys.path.insert(0, root)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from pipeline.cli import _quiet_libraries

    _quiet_libraries()
    from pipeline.loader import load_config

    config = load_config(args.config)
    drift = config.validation.drift
    print(f"validation.drift: numeric_jsd {drift.numeric_jsd}, categorical_linf {drift.categorical_linf}, "
          f"false_alarm_rate {drift.false_alarm_rate}, numeric_ks_gap {drift.numeric_ks_gap}; "
          f"schema {'curated' if config.validation.schema_path else 'inferred'}; "
          f"{args.rows} rows per data set")
    counts = {"clean_alarm": 0, "clean_alarm_before": 0, "caught": 0, "caught_by_drift_check": 0}
    validator_seconds: list[float] = []
    clean_p: list[float] = []  # the smallest Holm p-value of each clean run: the margin to false_alarm_rate
    with tempfile.TemporaryDirectory(prefix="bench_drift_") as tmp:
        for seed in args.seeds:
            started = time.perf_counter()
            clean = _statistics(os.path.join(tmp, f"s{seed}"), config, args.rows, seed, 0.0, None)
            shifted = _statistics(os.path.join(tmp, f"s{seed}-drift"), config, args.rows, seed, args.drift, clean)
            prepared = time.perf_counter() - started
            now = _validate(clean, config, config.validation)
            before = _validate(clean, config, config.validation.model_copy(
                update={"drift": drift.model_copy(update={"false_alarm_rate": None})}))
            caught = _validate(shifted, config, config.validation)
            validator_seconds.append(now["seconds"])
            clean_p.append(min((m["holm_p_value"] for m in now["measures"] if m["holm_p_value"] is not None),
                               default=1.0))
            counts["clean_alarm"] += bool(now["anomalies"])
            counts["clean_alarm_before"] += bool(before["anomalies"])
            counts["caught"] += bool(caught["anomalies"])
            counts["caught_by_drift_check"] += any(a.startswith("COMPARATOR_") for _, a in caught["anomalies"])
            print(f"seed {seed:2d}: clean {_verdict(now)}; before (threshold alone) {_verdict(before)}; "
                  f"drifted {_verdict(caught)}\n         clean, largest distances: {_largest(now)}"
                  f"\n         drifted, largest distances: {_largest(caught)}"
                  f"\n         drifted, comparator anomalies: "
                  f"{sorted({f for f, a in caught['anomalies'] if a.startswith('COMPARATOR_')}) or 'none'}"
                  f"\n         ExampleGen+StatisticsGen {prepared:.1f} s (both data sets), "
                  f"SchemaGen+ExampleValidator {now['seconds']:.2f} s", flush=True)
    n = len(args.seeds)
    print(f"\nclean data:   {counts['clean_alarm']} of {n} seeds raised an anomaly "
          f"(before this change, the threshold alone: {counts['clean_alarm_before']} of {n}); smallest Holm "
          f"p-value of a clean run {min(clean_p):.2g} (median {sorted(clean_p)[n // 2]:.2g})")
    print(f"drifted data: caught for {counts['caught']} of {n} seeds, by the drift check (COMPARATOR_* anomalies) "
          f"for {counts['caught_by_drift_check']} of {n}")
    print(f"SchemaGen+ExampleValidator: median {sorted(validator_seconds)[n // 2]:.2f} s, "
          f"max {max(validator_seconds):.2f} s per run")
    return 0


def _statistics(folder: str, config, rows: int, seed: int, drift: float, clean: str | None) -> str:
    """Generated data through ExampleGen and StatisticsGen; returns the statistics folder. With
    ``clean`` (a clean statistics folder), train is the clean data's and eval/test are this data's."""
    from components.common.artifacts import split_file
    from components.example_gen.core import run_example_gen
    from components.statistics_gen.core import run_statistics_gen
    from pipeline.config import SPLITS
    from pipeline.datagen import generate

    data = os.path.join(folder, "credit.csv.gz")
    generate(data, rows=rows, seed=seed, drift=drift)
    examples = os.path.join(folder, "examples")
    run_example_gen(config.data.model_copy(update={"source": data}), config.features, examples)
    if clean is not None:  # the clean run's train split, the drifted eval and test
        clean_train = split_file(os.path.join(os.path.dirname(clean), "examples"), SPLITS[0])
        os.unlink(split_file(examples, SPLITS[0]))
        os.symlink(clean_train, split_file(examples, SPLITS[0]))
    statistics = os.path.join(folder, "statistics")
    run_statistics_gen(examples, statistics, os.path.join(folder, "view.html"), config.beam)
    return statistics


def _validate(statistics: str, config, validation) -> dict:
    """SchemaGen and ExampleValidator as pipeline steps; the anomalies (feature, type) and the measures."""
    import json

    from components.example_validator import core as example_validator
    from components.schema_gen import core as schema_gen
    from pipeline.errors import DataValidationError
    from pipeline.specs import COMPONENTS

    out = tempfile.mkdtemp(dir=os.path.dirname(statistics))
    started = time.perf_counter()
    config = config.model_copy(update={"validation": validation})

    def sections(component: str) -> dict:  # the sections the spec gives the core, as the runner does
        return {name: getattr(config, name) for name in COMPONENTS[component].sections}

    schema_gen.execute({"statistics": statistics}, {"schema": os.path.join(out, "schema")}, sections("SchemaGen"))
    outputs = {"anomalies": os.path.join(out, "anomalies"), "anomalies_report": os.path.join(out, "anomalies.md")}
    try:
        example_validator.execute({"statistics": statistics, "schema": os.path.join(out, "schema")}, outputs,
                                  sections("ExampleValidator"))
        stopped = False
    except DataValidationError:
        stopped = True
    seconds = time.perf_counter() - started
    with open(os.path.join(outputs["anomalies"], "anomalies.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    return {"stopped": stopped, "seconds": seconds, "measures": summary["measures"],
            "anomalies": sorted({(a["feature"], a["anomaly"]) for a in summary["anomalies"]})}


def _verdict(result: dict) -> str:
    if not result["anomalies"]:
        return "passes"
    return f"STOPS ({len(result['anomalies'])} feature anomalies)"


def _largest(result: dict, count: int = 3) -> str:
    top = sorted(result["measures"], key=lambda m: m["value"] / m["threshold"], reverse=True)[:count]
    return ", ".join(f"{m['feature']}/{m['split']} {m['value']:.3f} ({m['decision']}"
                     + (f", Holm p {m['holm_p_value']:.2g}" if m["holm_p_value"] is not None else "") + ")"
                     for m in top)


if __name__ == "__main__":
    sys.exit(main())
