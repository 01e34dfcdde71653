"""Pusher as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


def pusher(pusher: str, data: str, features: str, transform: str, tuner: str, trainer: str, evaluator: str,
           model: Input[Model], blessing: Input[Artifact], evaluation: Input[Artifact], examples: Input[Dataset],
           pushed_model: Output[Artifact], metrics: Output[Metrics]):
    """Pushes a blessed model to the serving destination as a new version (checks the blessing itself)."""
    from components.common.kfp_entry import run

    run("Pusher", {"pusher": pusher, "data": data, "features": features, "transform": transform, "tuner": tuner,
                   "trainer": trainer, "evaluator": evaluator},
        {"model": model, "blessing": blessing, "evaluation": evaluation, "examples": examples},
        {"pushed_model": pushed_model}, metrics)
