"""ExampleValidator as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import Artifact, Input, Markdown, Metrics, Output


def example_validator(features: str, validation: str, statistics: Input[Artifact], schema: Input[Artifact],
                      anomalies: Output[Artifact], anomalies_report: Output[Markdown], metrics: Output[Metrics]):
    """Validates eval and test statistics against the schema and train; fails the run on anomalies."""
    from components.common.kfp_entry import run

    run("ExampleValidator", {"features": features, "validation": validation},
        {"statistics": statistics, "schema": schema},
        {"anomalies": anomalies, "anomalies_report": anomalies_report}, metrics)
