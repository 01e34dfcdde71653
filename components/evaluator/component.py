"""Evaluator as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output


def evaluator(evaluator: str, features: str, beam: str, pusher: str, examples: Input[Dataset], model: Input[Model],
              evaluation: Output[Artifact], evaluation_report: Output[Markdown], blessing: Output[Artifact],
              fairness_report: Output[HTML], metrics: Output[Metrics],
              classification_metrics: Output[ClassificationMetrics]) -> NamedTuple("Outputs", [("blessed", bool)]):
    """Evaluates the model with TFMA, overall and per slice, against the serving model; writes the blessing.

    A model the gates block is an outcome, not an error: the task succeeds with ``blessed`` false
    (the pipeline runs the Pusher only when it is true) and the blessing says which checks failed.
    """
    from collections import namedtuple

    from components.common.kfp_entry import log_classification_metrics, run

    figures = run("Evaluator", {"evaluator": evaluator, "features": features, "beam": beam, "pusher": pusher},
                  {"examples": examples, "model": model},
                  {"evaluation": evaluation, "evaluation_report": evaluation_report, "blessing": blessing,
                   "fairness_report": fairness_report}, metrics, gate_verdict=True)
    log_classification_metrics(evaluation.path, classification_metrics)
    return namedtuple("Outputs", ["blessed"])(bool(figures["blessed"]))
