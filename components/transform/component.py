"""Transform as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import Artifact, Dataset, Input, Metrics, Output


def transform(features: str, transform: str, beam: str, examples: Input[Dataset], schema: Input[Artifact],
              transform_graph: Output[Artifact], transformed_examples: Output[Dataset], metrics: Output[Metrics]):
    """Analyzes train with tensorflow-transform and transforms every split."""
    from components.common.kfp_entry import run

    run("Transform", {"features": features, "transform": transform, "beam": beam},
        {"examples": examples, "schema": schema},
        {"transform_graph": transform_graph, "transformed_examples": transformed_examples}, metrics)
