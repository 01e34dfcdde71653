"""StatisticsGen as a KFP component: unpacks artifacts and calls ``core.execute`` (see kfp_entry)."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output


def statistics_gen(features: str, beam: str, examples: Input[Dataset], statistics: Output[Artifact],
                   statistics_view: Output[HTML], metrics: Output[Metrics]):
    """Computes TFDV statistics of every split and TFDV's HTML view of them."""
    from components.common.kfp_entry import run

    run("StatisticsGen", {"features": features, "beam": beam}, {"examples": examples},
        {"statistics": statistics, "statistics_view": statistics_view}, metrics)
