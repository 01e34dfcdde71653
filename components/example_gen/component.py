"""ExampleGen as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import Dataset, Metrics, Output


def example_gen(data: str, features: str, examples: Output[Dataset], metrics: Output[Metrics]):
    """Reads the data source and writes gzip TFRecords of tf.Example per split."""
    from components.common.kfp_entry import run

    run("ExampleGen", {"data": data, "features": features}, {}, {"examples": examples}, metrics)
