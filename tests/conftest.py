"""Shared fixtures: generated data and pipeline YAML files written into the test's tmp folder."""

from __future__ import annotations

import os
import textwrap

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART_SCHEMA = os.path.join(REPO, "schemas", "quickstart", "schema.pbtxt")

FEATURES_YAML = """\
features:
  label: approved
  positive: "yes"
  numeric: [age, income, credit_score, loan_amount, loan_term_months, debt_to_income, years_employed]
  categorical: [employment_type, education, housing, purpose, region, sex, race]
  sensitive: [sex, race]
"""


def pipeline_yaml(source: str, *, name: str = "test", extra: str = "", split: str = "    key: applicant_id\n") -> str:
    """A pipeline YAML over the generated credit data, with ``extra`` sections appended."""
    return (f"pipeline:\n  name: {name}\n  root: runs\n"
            f"data:\n  source: {source}\n  split:\n{split}"
            f"{FEATURES_YAML}{textwrap.dedent(extra)}")


@pytest.fixture(scope="session")
def credit_csv(tmp_path_factory) -> str:
    """4,000 rows of clean generated credit data (gzip CSV), shared by the session."""
    from pipeline.datagen import generate

    path = str(tmp_path_factory.mktemp("data") / "credit.csv.gz")
    generate(path, rows=4000, seed=11)
    return path


@pytest.fixture
def write_pipeline(tmp_path):
    """Writes a pipeline YAML into tmp_path and returns its path."""
    def write(text: str, file_name: str = "pipeline.yaml") -> str:
        path = tmp_path / file_name
        path.write_text(text)
        return str(path)
    return write
