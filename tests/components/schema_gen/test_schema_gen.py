"""SchemaGen on the statistics of small generated data (real TFDV)."""

from __future__ import annotations

import os

import pytest

from components.schema_gen.core import run_schema_gen
from pipeline.config import ValidationConfig
from pipeline.errors import DataError
from tests.components.statistics_gen.generated import generated_statistics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> str:
    return generated_statistics(tmp_path_factory, drift=0.0)


def test_a_missing_curated_schema_says_how_to_make_one(clean, tmp_path):
    validation = ValidationConfig.model_validate({"schema": str(tmp_path / "nope.pbtxt")})
    with pytest.raises(DataError, match="nope.pbtxt: no such file.*sluiceway infer-schema"):
        run_schema_gen(os.path.join(clean, "statistics"), str(tmp_path / "schema"), validation)
    (tmp_path / "bad.pbtxt").write_text("feature { nme: 'x' }")
    with pytest.raises(DataError, match="bad.pbtxt: not a text-format"):
        run_schema_gen(os.path.join(clean, "statistics"), str(tmp_path / "schema"),
                       ValidationConfig.model_validate({"schema": str(tmp_path / "bad.pbtxt")}))
