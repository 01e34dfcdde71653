"""SchemaGen as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import Artifact, Input, Metrics, Output


def schema_gen(features: str, validation: str, curated_schema: str, statistics: Input[Artifact],
               schema: Output[Artifact], metrics: Output[Metrics]):
    """Infers the schema from train statistics, or writes the curated one embedded in the spec."""
    from components.common.kfp_entry import run

    run("SchemaGen", {"features": features, "validation": validation}, {"statistics": statistics},
        {"schema": schema}, metrics, curated_schema=curated_schema)
