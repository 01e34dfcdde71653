"""The ``monitoring:`` section: defaults, and each mistake reported at its YAML path."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.loader import load_config

BINARY = """\
pipeline: {name: demo}
data: {source: data/credit.csv}
features:
  label: approved
  positive: "yes"
  numeric: [age, income]
  categorical: [sex, region]
  sensitive: [sex]
"""


def errors(write_pipeline, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write_pipeline(text))
    return [str(issue) for issue in info.value.issues]


def test_defaults_follow_validation_and_the_task(write_pipeline):
    config = load_config(write_pipeline(BINARY))
    monitoring = config.monitoring
    assert monitoring.source is None and monitoring.drift is None   # the latest span; validation.drift
    assert monitoring.retrain_on == ["data_drift", "degradation", "fairness"] and monitoring.min_rows == 500
    [check] = monitoring.degradation
    assert check.metric_of("binary") == "auc" and check.metric_of("regression") == "rmse" and check.max_drop == 0.05


def test_a_full_section_loads(write_pipeline):
    config = load_config(write_pipeline(BINARY + """\
monitoring:
  source: logs/requests-*.csv
  drift: {categorical_linf: 0.2, numeric_jsd: 0.15}
  thresholds: {income: 0.3}
  retrain_on: [degradation]
  min_rows: 1000
  degradation:
    - {metric: accuracy, max_drop: 0.02}
    - {max_drop: 0.1, relative: true, per: [sex]}
"""))
    monitoring = config.monitoring
    assert monitoring.source.endswith("logs/requests-*.csv") and monitoring.thresholds == {"income": 0.3}
    assert monitoring.drift.numeric_jsd == 0.15 and monitoring.retrain_on == ["degradation"]
    assert [c.metric_of("binary") for c in monitoring.degradation] == ["accuracy", "auc"]


def test_mistakes_are_reported_at_their_paths(write_pipeline):
    found = errors(write_pipeline, BINARY + """\
monitoring:
  thresholds: {salary: 0.2}
  retrain_on: [drift]
  min_rows: 0
  degradation:
    - {metric: rmse}
    - {per: [nationality]}
""")
    text = "\n".join(found)
    assert "monitoring.retrain_on[0]" in text and "data_drift" in text
    assert "monitoring.min_rows" in text
    # the cross-section checks run once the section itself is valid
    fixed = BINARY + """\
monitoring:
  thresholds: {salary: 0.2}
  degradation:
    - {metric: rmse}
    - {per: [nationality]}
"""
    text = "\n".join(errors(write_pipeline, fixed))
    assert "monitoring.thresholds.salary: salary is not declared under features" in text
    assert "monitoring.degradation[0].metric: rmse is not a metric of the binary task" in text
    assert "monitoring.degradation[1].per: names nationality, not declared under features" in text
