"""Regenerates the golden compiled spec: `make golden` (or `python -m tests.pipeline.regenerate_golden`).

Review the diff before committing it: the golden file is what a Kubeflow cluster receives.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(HERE, "golden")
GOLDEN_CONFIG = os.path.join(GOLDEN_DIR, "pipeline.yaml")
GOLDEN_SPEC = os.path.join(GOLDEN_DIR, "compiled.yaml")
GOLDEN_MONITOR_SPEC = os.path.join(GOLDEN_DIR, "compiled_monitor.yaml")


def compile_golden(output: str) -> str:
    from pipeline.compiler import compile_pipeline
    from pipeline.loader import load_config

    return compile_pipeline(load_config(GOLDEN_CONFIG), output)


def compile_golden_monitor(output: str) -> str:
    """The continuous-training pipeline of the golden config (``sluiceway compile --monitor``)."""
    from pipeline.compiler import compile_pipeline
    from pipeline.loader import load_config
    from pipeline.specs import pipeline_of, retrain_if_due

    config = load_config(GOLDEN_CONFIG)
    return compile_pipeline(config, output, retrain_if_due(pipeline_of(config)))


if __name__ == "__main__":
    print("Wrote", compile_golden(GOLDEN_SPEC))
    print("Wrote", compile_golden_monitor(GOLDEN_MONITOR_SPEC))
