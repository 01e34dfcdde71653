"""What the review costs: the Evaluator's time without and with confidence intervals and feature
attributions, on the quickstart's pipeline over generated data. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_evaluator_review.py --rows 100000
    .venv/bin/python benchmarks/bench_evaluator_review.py --rows 20000 --tfma   # TFMA's jackknife too

The pipeline runs once up to the Evaluator; then each setting evaluates the same model on the same
eval split in a fresh process (TensorFlow's import excluded from the figure), so no setting gains
from another's warm caches.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETTINGS = {
    "neither (intervals off, attributions off)": {"intervals": {"method": "off"}, "attributions": {"enabled": False}},
    "intervals only (closed_form)": {"attributions": {"enabled": False}},
    "attributions only": {"intervals": {"method": "off"}},
    "both: the defaults": {},
}
TFMA_SETTING = {"tfma jackknife intervals, attributions": {"intervals": {"method": "tfma_jackknife"}}}

CHILD = """
import json, sys, time
from components.evaluator.core import run_evaluator
from pipeline.loader import load_config
config = load_config(sys.argv[1], overrides={f"evaluator.{k}": v for k, v in json.loads(sys.argv[2]).items()})
import tensorflow_model_analysis  # noqa: F401 - the import is not the Evaluator's work
started = time.perf_counter()
run_evaluator(sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[5] + ".md", config.evaluator, config.features,
              config.beam)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tfma", action="store_true", help="also time TFMA's jackknife intervals (several times "
                                                           "slower)")
    args = parser.parse_args()
    from pipeline import datagen
    from pipeline.loader import load_config
    from pipeline.runner import run_pipeline

    folder = tempfile.mkdtemp(prefix="sluiceway-bench-review-")
    try:
        text = open(os.path.join(REPO, "examples", "quickstart", "pipeline.yaml")).read().replace(
            "../../schemas/quickstart/schema.pbtxt", os.path.join(REPO, "schemas", "quickstart", "schema.pbtxt"))
        config_file = os.path.join(folder, "pipeline.yaml")
        with open(config_file, "w") as handle:
            handle.write(text)
        datagen.generate(os.path.join(folder, "data", "credit.csv.gz"), rows=args.rows, seed=7)
        result = run_pipeline(load_config(config_file), config_file, echo=lambda _: None, until="Trainer")
        examples = result.outcome("ExampleGen").outputs["examples"]
        model = result.outcome("Trainer").outputs["model"]
        with open(os.path.join(examples, "split_info.json")) as handle:
            evaluated = json.load(handle)["splits"]["eval"]["rows"]
        print(f"rows {args.rows:,}; Evaluator on the eval split's {evaluated:,} examples, 21 slices, 5 gates "
              f"({os.cpu_count()} cores)")
        settings = {**SETTINGS, **(TFMA_SETTING if args.tfma else {})}
        seconds = {}
        for index, (name, overrides) in enumerate(settings.items()):
            out = os.path.join(folder, f"evaluation-{index}")
            os.makedirs(out)
            child = subprocess.run([sys.executable, "-c", CHILD, config_file, json.dumps(overrides), examples, model,
                                    out], capture_output=True, text=True, cwd=REPO)
            if child.returncode != 0:
                print(f"  {name}: failed\n{child.stderr[-2000:]}")
                continue
            seconds[name] = json.loads(child.stdout.strip().splitlines()[-1])["seconds"]
            print(f"  {name:<42} {seconds[name]:6.1f} s")
        plain = seconds.get(next(iter(SETTINGS)))
        if plain:
            for name, value in seconds.items():
                print(f"  {name:<42} {value / plain:5.2f}x the Evaluator without either")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
