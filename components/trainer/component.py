"""Trainer as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


def trainer(trainer: str, transformed_examples: Input[Dataset], transform_graph: Input[Artifact],
            hyperparameters: Input[Artifact], model: Output[Model], model_run: Output[Artifact],
            metrics: Output[Metrics]):
    """Trains the model on transformed examples and exports a SavedModel that serves raw examples."""
    from components.common.kfp_entry import run

    run("Trainer", {"trainer": trainer},
        {"transformed_examples": transformed_examples, "transform_graph": transform_graph,
         "hyperparameters": hyperparameters},
        {"model": model, "model_run": model_run}, metrics)
