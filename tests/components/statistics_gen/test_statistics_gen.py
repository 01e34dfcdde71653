"""StatisticsGen on small generated data (real TFDV, real Beam)."""

from __future__ import annotations

import os

import pytest

from tests.components.statistics_gen.generated import generated_statistics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> str:
    return generated_statistics(tmp_path_factory, drift=0.0)


def test_statistics_cover_every_split_and_the_html_view_compares_them(clean):
    import tensorflow_data_validation as tfdv

    from components.common.artifacts import stats_path

    counts = {}
    for split in ("train", "eval", "test"):
        stats = tfdv.load_stats_binary(stats_path(os.path.join(clean, "statistics"), split))
        counts[split] = stats.datasets[0].num_examples
        names = {".".join(f.path.step) for f in stats.datasets[0].features}
        assert {"age", "sex", "approved"} <= names
    assert sum(counts.values()) == 3000 and counts["train"] > counts["eval"] > 0
    page = open(os.path.join(clean, "view.html")).read()
    assert page.count("<facets-overview") == 2 and "train vs eval" in page and "train vs test" in page
    assert "<td>sex</td>" in page and "distinct, top" in page and "missing; mean" in page
