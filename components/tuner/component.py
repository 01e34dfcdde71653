"""Tuner as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output


def tuner(tuner: str, trainer: str, transformed_examples: Input[Dataset], transform_graph: Input[Artifact],
          best_hyperparameters: Output[Artifact], trials: Output[Markdown], metrics: Output[Metrics]):
    """Searches the Trainer's hyperparameters with KerasTuner (or passes the YAML's on)."""
    from components.common.kfp_entry import run

    run("Tuner", {"tuner": tuner, "trainer": trainer},
        {"transformed_examples": transformed_examples, "transform_graph": transform_graph},
        {"best_hyperparameters": best_hyperparameters, "trials": trials}, metrics)
