"""TFDV statistics of small generated data sets, for StatisticsGen's tests and as the input of
SchemaGen's and ExampleValidator's. Each data set is computed once per test session (a StatisticsGen
run takes seconds) and shared by the test modules of the three components."""

from __future__ import annotations

from components.example_gen.core import run_example_gen
from components.statistics_gen.core import run_statistics_gen
from pipeline.config import BeamConfig, DataConfig, FeaturesConfig

ROWS = 3000
FEATURES = FeaturesConfig(
    label="approved", positive="yes",
    numeric=["age", "income", "credit_score", "loan_amount", "loan_term_months", "debt_to_income", "years_employed"],
    categorical=["employment_type", "education", "housing", "purpose", "region", "sex", "race"],
    sensitive=["sex", "race"])

_computed: dict[tuple[str, float], str] = {}


def generated_statistics(tmp_path_factory, drift: float) -> str:
    """A folder holding ``credit.csv.gz`` (``ROWS`` generated rows with ``drift``), ExampleGen's
    ``examples/``, StatisticsGen's ``statistics/`` and its ``view.html``; the same folder for the
    whole session. Tests must not change it."""
    key = (str(tmp_path_factory.getbasetemp()), drift)
    if key not in _computed:
        _computed[key] = _statistics(tmp_path_factory, drift)
    return _computed[key]


def _statistics(tmp_path_factory, drift: float) -> str:
    from pipeline.datagen import generate

    folder = tmp_path_factory.mktemp(f"stats-drift{drift:g}")
    data = str(folder / "credit.csv.gz")
    generate(data, rows=ROWS, seed=5, drift=drift)
    run_example_gen(DataConfig(source=data, split={"key": "applicant_id"}), FEATURES, str(folder / "examples"))
    run_statistics_gen(str(folder / "examples"), str(folder / "statistics"), str(folder / "view.html"), BeamConfig())
    return str(folder)
