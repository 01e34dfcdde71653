"""Evaluator as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output


def evaluator(evaluator: str, features: str, beam: str, pusher: str, examples: Input[Dataset], model: Input[Model],
              evaluation: Output[Artifact], evaluation_report: Output[Markdown], blessing: Output[Artifact],
              fairness_report: Output[HTML], metrics: Output[Metrics]):
    """Evaluates the model with TFMA, overall and per slice, against the serving model; writes the blessing."""
    from components.common.kfp_entry import run

    run("Evaluator", {"evaluator": evaluator, "features": features, "beam": beam, "pusher": pusher},
        {"examples": examples, "model": model},
        {"evaluation": evaluation, "evaluation_report": evaluation_report, "blessing": blessing,
         "fairness_report": fairness_report}, metrics)
