"""The ``infra_validator:`` and ``bulk_inference:`` sections: defaults, which components a file runs,
and each mistake reported at its YAML path."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.loader import load_config
from pipeline.specs import pipeline_of
from tests.pipeline.test_config_monitoring import BINARY


def errors(write_pipeline, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write_pipeline(text))
    return "\n".join(str(issue) for issue in info.value.issues)


def test_defaults_check_serving_and_score_nothing(write_pipeline):
    config = load_config(write_pipeline(BINARY))
    infra = config.infra_validator
    assert infra.load_timeout_seconds == 120 and infra.examples == 100 and infra.score_tolerance == 1e-4
    assert infra.max_latency_ms is None and infra.max_batch_latency_ms is None
    assert config.bulk_inference.source is None and config.bulk_inference.model == "latest"
    names = pipeline_of(config).names
    assert names[-2:] == ("InfraValidator", "Pusher") and "BulkInferrer" not in names


def test_a_bulk_inference_source_adds_the_bulk_inferrer_after_the_push(write_pipeline):
    config = load_config(write_pipeline(BINARY + """\
pusher: {destination: serving/credit}
bulk_inference: {source: data/applications-*.csv, keep: [applicant_id], output: scored/latest.parquet}
"""))
    assert pipeline_of(config).names[-2:] == ("Pusher", "BulkInferrer")
    assert config.bulk_inference.output.endswith("/scored/latest.parquet")   # relative to the file


def test_mistakes_are_named_by_their_yaml_path(write_pipeline):
    text = errors(write_pipeline, BINARY + """\
infra_validator: {load_timeout_seconds: 0, examples: 5000, max_latency_ms: -1}
bulk_inference: {on_bad_row: ignore}
""")
    assert "infra_validator.load_timeout_seconds" in text and "infra_validator.examples" in text
    assert "infra_validator.max_latency_ms" in text and "bulk_inference.on_bad_row" in text
    text = errors(write_pipeline, BINARY + "bulk_inference: {source: data/new.csv, output: scored.txt}\n")
    assert ("bulk_inference.source: the pipeline scores it with the model it pushes, and pusher.destination is "
            "not set") in text
    assert "bulk_inference.output: " in text and "scored.txt: expected a file ending in .parquet" in text
