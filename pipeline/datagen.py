"""Deterministic synthetic credit data set.

``generate(path, rows, seed)`` writes a realistic tabular data set (one row per
loan application) to ``.csv``, ``.csv.gz`` or ``.parquet``, with the label of
one of three tasks (``task=``): binary ``approved`` = ``"yes"``/``"no"`` (the
default), multiclass ``risk_tier`` = ``"low"``/``"medium"``/``"high"`` or
regression ``interest_rate`` (percent).  It is used by the quickstart, the
examples and the tests of the pipeline components, so it has to be:

* **deterministic** -- the same ``(rows, seed, bias, drift, concept_drift, task,
  format)`` always gives a byte-identical file.  Rows are produced in fixed-size chunks of
  :data:`CHUNK_ROWS`; chunk ``i`` uses ``np.random.default_rng([seed, i])``.
  ``bias``, ``drift`` and ``concept_drift`` only change how the random draws are
  transformed, never which draws are made, so e.g. ``drift=0`` and ``drift=1`` describe the
  same applicants, one of them seen in a shifted world.  ``task`` only
  changes the label column: the three tasks describe the same applicants.
* **bounded in memory** -- only one chunk is held at a time.
* **atomic** -- the file is written to a temporary file next to the target
  and moved into place with :func:`os.replace` (:func:`pipeline.files.atomic_open`);
  on failure the temporary file is removed and an existing target is left untouched.

Columns, in file order::

    applicant_id      string   "A00000001", "A00000002", ... (unique, sequential)
    age               int64    18..85
    income            float64  yearly income, lognormal, 2 decimals   (nullable)
    credit_score      int64    300..850
    loan_amount       float64  requested amount, 2 decimals
    loan_term_months  int64    one of 12, 24, 36, 48, 60
    debt_to_income    float64  0..1.5, mostly below 0.8, 4 decimals
    years_employed    float64  0..(age-18), 1 decimal                  (nullable)
    employment_type   string   salaried/self_employed/contractor/unemployed/retired (nullable)
    education         string   high_school/bachelors/masters/doctorate/other
    housing           string   own/mortgage/rent/other                 (nullable)
    purpose           string   home/car/education/business/medical/debt_consolidation
    region            string   north/south/east/west/central
    sex               string   female/male
    race              string   group_a..group_e (unequal frequencies)
    the label, one of (by task):
    approved          string   "yes"/"no"                    (binary)
    risk_tier         string   "low"/"medium"/"high"         (multiclass)
    interest_rate     float64  percent, 3..36, 2 decimals    (regression)

Roughly 2.5-4 % of ``income``, ``years_employed``, ``employment_type`` and
``housing`` are missing (empty CSV field, null in Parquet).  ``applicant_id``,
the label, ``sex`` and ``race`` are never missing.

Every label comes from one latent credit-worthiness, a linear function of
credit score, debt-to-income, income, years employed, employment type,
housing, purpose and region, and from one uniform draw per row:

* binary: ``approved`` is drawn from a logistic model on the
  credit-worthiness; the overall approval rate is about 50 %.
* multiclass: the credit-worthiness plus logistic noise of half the binary
  label's scale, cut into three tiers of about a third each (``low`` is the
  most credit-worthy).  A gradient-boosted model reaches an accuracy of
  about 0.70 on 20,000 rows.
* regression: ``interest_rate`` falls with the credit-worthiness and rises a
  little with the loan term, through a sigmoid from 3 % to 36 %, with
  logistic noise: right-skewed (median about 9 %, mean about 10 %, 95th
  percentile about 20 %), an R^2 of about 0.6 for a gradient-boosted model.

Women earn slightly less on average in the simulated population, which by
itself gives a small (a few points) approval gap between the sexes; race has
no effect on anything.

``bias`` (>= 0) injects *direct* discrimination **against** ``sex ==
"female"``: ``bias * BIAS_LOGIT`` is subtracted from the credit-worthiness of
female applicants for the binary and multiclass labels, and ``bias *
RATE_BIAS_LOGIT`` is added to the logit of their interest rate.  ``bias=1``
gives a female/male approval-rate gap of about 30 percentage points, moves
the women's ``high`` share from about a third to two thirds, and raises
their mean rate by about 2.6 points (about a quarter).

``drift`` (>= 0) simulates a shifted serving population: incomes fall by
``exp(-0.2 * drift)``, credit scores drop by ``45 * drift`` points,
debt-to-income grows by ``0.08 * drift``, and three categorical columns gain
values never seen at ``drift=0``: ``employment_type="gig_worker"``,
``purpose="crypto"`` and ``region="overseas"``, each on a fraction
``1 - exp(-0.16 * drift)`` of the rows (about 15 % at ``drift=1``).  The
labels follow the shifted features: at ``drift=1`` about 60 % of the rows are
``high`` risk and the mean interest rate is about 13 %.

``concept_drift`` (0..1) changes what the label means while every feature
column stays as it is (the same values, byte for byte): the credit-worthiness
behind every task rotates by ``concept_drift * 90`` degrees from its linear
function of credit score, debt-to-income, income, ... towards an uncorrelated
one of loan amount, loan term, education, purpose and region (:func:`_rotate`),
keeping its mean and spread, so the approval rate, the tiers' shares and the
rates' spread stay about the same.  At ``concept_drift=1`` a model of the old
concept ranks no better than chance, while a model trained on the new data
learns the new concept as well.  Measured: the quickstart's model (wide and
deep, 20,000 rows, seed 7, eval AUC 0.824) scores the same eval applicants at
AUC 0.798 / 0.725 / 0.620 / 0.498 with ``concept_drift`` 0.25 / 0.5 / 0.75 / 1;
a gradient-boosted model trained and tested at 1 reaches 0.836 (0.814 at 0).
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import operator
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.files import atomic_open

__all__ = [
    "TASKS",
    "BINARY",
    "MULTICLASS",
    "REGRESSION",
    "LABELS",
    "RISK_TIERS",
    "columns_of",
    "RATE_BIAS_LOGIT",
    "LABEL",
    "POSITIVE",
    "NEGATIVE",
    "KEY",
    "NUMERIC",
    "CATEGORICAL",
    "SENSITIVE",
    "COLUMNS",
    "NULLABLE",
    "UNSEEN_VALUES",
    "FORMATS",
    "CHUNK_ROWS",
    "BIAS_LOGIT",
    "GenerateResult",
    "generate",
]

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
#: The tasks ``generate`` can make a label for, the first being the default.
TASKS = (BINARY, MULTICLASS, REGRESSION)
#: The label column of each task (a file holds exactly one of them, as its last column).
LABELS = {BINARY: "approved", MULTICLASS: "risk_tier", REGRESSION: "interest_rate"}

LABEL = LABELS[BINARY]
POSITIVE = "yes"
NEGATIVE = "no"
#: The multiclass label's classes, from the most to the least credit-worthy.
RISK_TIERS = ("low", "medium", "high")
KEY = "applicant_id"

NUMERIC = (
    "age",
    "income",
    "credit_score",
    "loan_amount",
    "loan_term_months",
    "debt_to_income",
    "years_employed",
)
CATEGORICAL = (
    "employment_type",
    "education",
    "housing",
    "purpose",
    "region",
    "sex",
    "race",
)
SENSITIVE = ("sex", "race")
COLUMNS = (KEY,) + NUMERIC + CATEGORICAL + (LABEL,)


def columns_of(task: str = BINARY) -> tuple[str, ...]:
    """The file's columns for ``task``: :data:`COLUMNS` with that task's label last."""
    return (KEY,) + NUMERIC + CATEGORICAL + (LABELS[task],)


#: Columns that contain missing values (and only these).
NULLABLE = ("income", "years_employed", "employment_type", "housing")

#: Category values that only appear when ``drift > 0``.
UNSEEN_VALUES = {
    "employment_type": ("gig_worker",),
    "purpose": ("crypto",),
    "region": ("overseas",),
}

#: Accepted file extensions -> format name reported in GenerateResult.
FORMATS = (".csv.gz", ".csv", ".parquet")

#: Rows generated per chunk (and per Parquet row group).  Changing it changes
#: the generated data, so it is part of the determinism contract.
CHUNK_ROWS = 100_000

#: Logit penalty for ``sex == "female"`` per unit of ``bias``.
BIAS_LOGIT = 1.5

# Multiclass: the risk tier cuts the same latent credit-worthiness the binary label thresholds at
# 0 (the approval logit plus its logistic noise, here scaled by _TIER_NOISE): at or above
# _TIER_CUTS[1] is "low", below _TIER_CUTS[0] is "high", "medium" between.
_TIER_NOISE = 0.5
_TIER_CUTS = (-0.5, 1.0)

# Regression: interest_rate = _RATE_FLOOR + (_RATE_CAP - _RATE_FLOOR) * sigmoid(x), where x falls
# with the credit-worthiness, grows with the loan term and carries logistic noise.  Most rates sit
# on the sigmoid's lower, exponential part (right-skewed, like exp(x)); it bends smoothly below
# the cap, so no rate is clipped.
_RATE_FLOOR = 3.0
_RATE_CAP = 36.0
_RATE_BASE = -1.4
_RATE_SLOPE = 0.4
_RATE_TERM = 0.06  # per 12 months of term beyond 36
_RATE_NOISE = 0.3
#: Added to x of female applicants per unit of ``bias``: at low rates their rate above the floor
#: is multiplied by about exp(bias * RATE_BIAS_LOGIT), a surcharge.
RATE_BIAS_LOGIT = 0.45

_INT_COLUMNS = ("age", "credit_score", "loan_term_months")

# ---------------------------------------------------------------------------
# Category levels.  The order is fixed (codes index into these tuples); the
# drift-only values come last so that drift=0 can never produce them.
_SEX = ("female", "male")
_SEX_P = (0.49, 0.51)
_RACE = ("group_a", "group_b", "group_c", "group_d", "group_e")
_RACE_P = (0.58, 0.18, 0.12, 0.08, 0.04)
_REGION = ("north", "south", "east", "west", "central", "overseas")
_REGION_P = (0.20, 0.22, 0.18, 0.22, 0.18)
_EDUCATION = ("high_school", "bachelors", "masters", "doctorate", "other")
_EDUCATION_P = (  # by age band: < 23, >= 23
    (0.62, 0.30, 0.02, 0.00, 0.06),
    (0.33, 0.36, 0.18, 0.05, 0.08),
)
_EMPLOYMENT = (
    "salaried", "self_employed", "contractor", "unemployed", "retired", "gig_worker",
)
_EMPLOYMENT_P = (  # by age band: < 60, >= 60
    (0.64, 0.14, 0.13, 0.07, 0.02),
    (0.30, 0.12, 0.06, 0.05, 0.47),
)
_HOUSING = ("own", "mortgage", "rent", "other")
_HOUSING_P = (  # by age band: < 30, 30-49, >= 50
    (0.05, 0.12, 0.68, 0.15),
    (0.15, 0.45, 0.35, 0.05),
    (0.45, 0.30, 0.22, 0.03),
)
_PURPOSE = (
    "home", "car", "education", "business", "medical", "debt_consolidation", "crypto",
)
_PURPOSE_P = (  # by age band: < 30, >= 30
    (0.08, 0.25, 0.22, 0.07, 0.08, 0.30),
    (0.17, 0.20, 0.04, 0.11, 0.10, 0.38),
)
_TERMS = (12, 24, 36, 48, 60)
_TERM_P = (  # by purpose (same order as _PURPOSE)
    (0.00, 0.05, 0.15, 0.20, 0.60),  # home
    (0.10, 0.25, 0.35, 0.15, 0.15),  # car
    (0.15, 0.25, 0.30, 0.15, 0.15),  # education
    (0.10, 0.20, 0.30, 0.20, 0.20),  # business
    (0.35, 0.35, 0.20, 0.05, 0.05),  # medical
    (0.15, 0.25, 0.30, 0.15, 0.15),  # debt_consolidation
    (0.40, 0.35, 0.15, 0.05, 0.05),  # crypto
)

# Effects, indexed by category code.
_EDU_LOG_INCOME = (0.0, 0.32, 0.48, 0.62, 0.05)
_EMP_LOG_INCOME = (0.0, 0.08, 0.02, -1.0, -0.35, -0.15)
_EMP_INCOME_SIGMA = (0.40, 0.65, 0.50, 0.50, 0.40, 0.60)
_EMP_YEARS_FACTOR = (1.0, 1.0, 0.8, 0.3, 0.9, 0.5)
_LOAN_BASE = (180_000.0, 22_000.0, 28_000.0, 55_000.0, 9_000.0, 18_000.0, 15_000.0)
_EMP_LOGIT = (0.25, -0.05, -0.15, -1.4, 0.05, -0.5)
_HOUSING_LOGIT = (0.30, 0.15, -0.10, -0.25)
_PURPOSE_LOGIT = (0.20, 0.15, 0.0, -0.35, -0.10, 0.0, -0.8)
_REGION_LOGIT = (0.05, -0.05, 0.0, 0.02, -0.02, -0.3)
_LOGIT_INTERCEPT = 0.05

# Concept drift: the credit-worthiness rotates towards a judgement of other features (_rotate).
# Its effects, by category code as above; _NEW_MEAN and _NEW_SD are that judgement's mean and
# spread, _WORTH_MEAN and _WORTH_SD the original credit-worthiness's, all at drift=0 (measured on
# 1,000,000 rows), so the rotation keeps the label's balance and strength.
_NEW_LOG_AMOUNT = 0.9
_NEW_TERM = 0.35
_NEW_EDUCATION_LOGIT = (-0.6, 0.2, 0.5, 0.7, -0.3)
_NEW_PURPOSE_LOGIT = (0.9, -0.4, 0.3, 0.8, -0.5, -0.7, -1.0)
_NEW_REGION_LOGIT = (-0.6, 0.5, 0.4, -0.4, 0.1, -0.5)
_NEW_MEAN = -0.2508
_NEW_SD = 1.0060
_WORTH_MEAN = 0.1147
_WORTH_SD = 1.7387

_MISSING_RATE = {
    "income": 0.03,
    "years_employed": 0.04,
    "employment_type": 0.025,
    "housing": 0.03,
}


@dataclasses.dataclass(frozen=True)
class GenerateResult:
    """Summary of one :func:`generate` call."""

    path: str
    rows: int
    format: str  # "csv", "csv.gz" or "parquet"
    positive_rate: float | None  # binary: fraction of rows with approved == "yes"; else None
    seconds: float
    seed: int
    bias: float
    drift: float
    size_bytes: int
    task: str = BINARY
    label: str = LABEL
    #: multiclass: each of RISK_TIERS with its share of the rows, in that order; else None
    class_shares: tuple[tuple[str, float], ...] | None = None
    #: regression: the label's mean, minimum and maximum; else None
    label_mean: float | None = None
    label_min: float | None = None
    label_max: float | None = None
    concept_drift: float = 0.0

    def label_summary(self) -> str:
        """What the label looks like, in a few words (the CLI prints it)."""
        if self.task == MULTICLASS:
            shares = " / ".join(f"{name} {share:.3f}" for name, share in self.class_shares)
            return f"{self.label} shares {shares}"
        if self.task == REGRESSION:
            return (f"{self.label} mean {self.label_mean:.2f}, min {self.label_min:.2f}, "
                    f"max {self.label_max:.2f}")
        return f"positive rate {self.positive_rate:.3f}"


# ---------------------------------------------------------------------------
# helpers


def _detect_format(path: str) -> str:
    lower = path.lower()
    for ext in FORMATS:
        if lower.endswith(ext):
            return ext[1:]
    raise ValueError(
        f"unsupported output file {path!r}: the extension must be one of "
        + ", ".join(FORMATS)
    )


def _schema(task: str = BINARY) -> pa.Schema:
    fields = []
    for name in columns_of(task):
        if name in _INT_COLUMNS:
            fields.append(pa.field(name, pa.int64(), nullable=False))
        elif name in NUMERIC or name == LABELS[REGRESSION]:
            fields.append(pa.field(name, pa.float64(), nullable=name in NULLABLE))
        else:
            fields.append(pa.field(name, pa.string(), nullable=name in NULLABLE))
    return pa.schema(fields)


def _cumulative(tables) -> np.ndarray:
    """Rows of probabilities -> normalised cumulative table, shape (k, m)."""
    p = np.atleast_2d(np.asarray(tables, dtype=np.float64))
    c = np.cumsum(p, axis=1)
    c /= c[:, -1:]
    c[:, -1] = np.inf  # guard against rounding at u close to 1
    return c


def _pick(u: np.ndarray, tables, which: np.ndarray | None = None) -> np.ndarray:
    """Categorical draw from uniforms ``u``.

    ``tables`` is one probability vector or a stack of them; ``which`` selects
    the table for each row (None: the single table).  Returns int64 codes.
    """
    cum = _cumulative(tables)
    if which is None:
        return np.searchsorted(cum[0], u, side="right").astype(np.int64)
    return (u[:, None] >= cum[which]).sum(axis=1).astype(np.int64)


def _keys(start: int, n: int, width: int) -> pa.Array:
    """``"A" + zero-padded index`` for rows start+1 .. start+n, built without
    a Python loop over rows."""
    ids = np.arange(start + 1, start + n + 1, dtype=np.int64)
    chars = np.empty((n, width + 1), dtype=np.uint8)
    chars[:, 0] = ord("A")
    for j in range(width):
        chars[:, width - j] = 48 + (ids // 10**j) % 10
    offsets = np.arange(0, (n + 1) * (width + 1), width + 1, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())]
    )


def _strings(levels, codes: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(levels, type=pa.string()).take(pa.array(codes, mask=mask))


def _make_chunk(
    rng: np.random.Generator,
    start: int,
    n: int,
    bias: float,
    drift: float,
    width: int,
    task: str = BINARY,
    concept_drift: float = 0.0,
) -> pa.Table:
    """Generate rows ``start .. start+n-1`` as an Arrow table."""
    # All random draws first, in a fixed order and amount, so that bias/drift
    # only change deterministic transformations of the same draws.
    u_sex = rng.random(n)
    u_race = rng.random(n)
    u_region = rng.random(n)
    g_age = rng.gamma(3.0, 7.0, n)
    u_edu = rng.random(n)
    u_emp = rng.random(n)
    b_years = rng.beta(2.0, 2.5, n)
    z_income = rng.standard_normal(n)
    z_credit = rng.standard_normal(n)
    u_purpose = rng.random(n)
    z_amount = rng.standard_normal(n)
    u_term = rng.random(n)
    b_debt = rng.beta(2.2, 6.0, n)
    u_housing = rng.random(n)
    u_label = rng.random(n)
    u_unseen = rng.random((3, n))
    u_missing = rng.random((len(NULLABLE), n))

    unseen_rate = 1.0 - math.exp(-0.16 * drift)  # exactly 0.0 when drift == 0

    sex = _pick(u_sex, _SEX_P)
    female = sex == 0
    race = _pick(u_race, _RACE_P)
    region = _pick(u_region, _REGION_P)
    region[u_unseen[0] < unseen_rate] = _REGION.index("overseas")

    age = np.minimum(18 + g_age.astype(np.int64), 85)
    education = _pick(u_edu, _EDUCATION_P, (age >= 23).astype(np.int64))
    employment = _pick(u_emp, _EMPLOYMENT_P, (age >= 60).astype(np.int64))
    employment[u_unseen[1] < unseen_rate] = _EMPLOYMENT.index("gig_worker")

    years = (age - 18) * b_years * np.take(_EMP_YEARS_FACTOR, employment)
    years = np.round(np.where(female, years * 0.93, years), 1)

    log_income = (
        10.45
        + np.take(_EDU_LOG_INCOME, education)
        + np.take(_EMP_LOG_INCOME, employment)
        + 0.018 * np.minimum(years, 25.0)
        - 0.05 * female
        + np.take(_EMP_INCOME_SIGMA, employment) * z_income
        - 0.2 * drift
    )
    income = np.round(np.exp(log_income), 2)

    credit = (
        640.0
        + 45.0 * (log_income + 0.2 * drift - 10.7)
        + 2.2 * np.minimum(years, 25.0)
        + 0.8 * (age - 18)
        - 60.0 * (employment == _EMPLOYMENT.index("unemployed"))
        + 65.0 * z_credit
        - 45.0 * drift
    )
    credit_score = np.clip(np.rint(credit), 300, 850).astype(np.int64)

    purpose = _pick(u_purpose, _PURPOSE_P, (age >= 30).astype(np.int64))
    purpose[u_unseen[2] < unseen_rate] = _PURPOSE.index("crypto")
    loan_amount = (
        np.take(_LOAN_BASE, purpose)
        * np.exp(0.45 * z_amount)
        * (np.exp(log_income + 0.2 * drift) / 50_000.0) ** 0.35
    )
    loan_amount = np.round(np.maximum(loan_amount, 500.0), 2)
    term_code = _pick(u_term, _TERM_P, purpose)
    term = np.take(np.asarray(_TERMS, dtype=np.int64), term_code)

    yearly_payment = loan_amount / (term / 12.0)
    dti = b_debt + 0.3 * yearly_payment / income + 0.08 * drift
    debt_to_income = np.round(np.clip(dti, 0.0, 1.5), 4)

    band = (age >= 30).astype(np.int64) + (age >= 50).astype(np.int64)
    housing = _pick(u_housing, _HOUSING_P, band)

    worth = (
        _LOGIT_INTERCEPT
        + 0.011 * (credit_score - 680)
        - 3.5 * (debt_to_income - 0.35)
        + 0.7 * (np.log(income) - 10.8)
        + 0.03 * np.minimum(years, 20.0)
        + np.take(_EMP_LOGIT, employment)
        + np.take(_HOUSING_LOGIT, housing)
        + np.take(_PURPOSE_LOGIT, purpose)
        + np.take(_REGION_LOGIT, region)
    )
    if concept_drift:  # skipped at 0, so that data keeps every byte
        worth = _rotate(worth, concept_drift, loan_amount, term, education, purpose, region)
    label = _label(task, worth, u_label, female, term, bias)

    miss = {
        name: u_missing[i] < _MISSING_RATE[name] for i, name in enumerate(NULLABLE)
    }

    columns = {
        KEY: _keys(start, n, width),
        "age": pa.array(age, type=pa.int64()),
        "income": pa.array(income, mask=miss["income"], type=pa.float64()),
        "credit_score": pa.array(credit_score, type=pa.int64()),
        "loan_amount": pa.array(loan_amount, type=pa.float64()),
        "loan_term_months": pa.array(term, type=pa.int64()),
        "debt_to_income": pa.array(debt_to_income, type=pa.float64()),
        "years_employed": pa.array(
            years, mask=miss["years_employed"], type=pa.float64()
        ),
        "employment_type": _strings(_EMPLOYMENT, employment, miss["employment_type"]),
        "education": _strings(_EDUCATION, education),
        "housing": _strings(_HOUSING, housing, miss["housing"]),
        "purpose": _strings(_PURPOSE, purpose),
        "region": _strings(_REGION, region),
        "sex": _strings(_SEX, sex),
        "race": _strings(_RACE, race),
        LABELS[task]: label,
    }
    return pa.Table.from_arrays([columns[c] for c in columns_of(task)], schema=_schema(task))


def _rotate(
    worth: np.ndarray,
    concept_drift: float,
    loan_amount: np.ndarray,
    term: np.ndarray,
    education: np.ndarray,
    purpose: np.ndarray,
    region: np.ndarray,
) -> np.ndarray:
    """The credit-worthiness of a changed concept: ``worth`` rotated by ``concept_drift * 90``
    degrees, about its mean at ``drift=0``, towards a new judgement: a lender who now judges by the
    loan (small, short loans for homes and businesses), education and region rather than by credit
    score, debt and income.  That judgement is centred and scaled to the spread of ``worth`` and
    nearly uncorrelated with it (-0.02), so the label keeps its balance and strength while at
    ``concept_drift=1`` the old concept no longer tells anything.  The features are untouched."""
    new = (
        -_NEW_LOG_AMOUNT * (np.log(loan_amount) - 10.2)
        - _NEW_TERM * (term - 36) / 12.0
        + np.take(_NEW_EDUCATION_LOGIT, education)
        + np.take(_NEW_PURPOSE_LOGIT, purpose)
        + np.take(_NEW_REGION_LOGIT, region)
    )
    new = (new - _NEW_MEAN) * (_WORTH_SD / _NEW_SD)
    angle = concept_drift * math.pi / 2
    return _WORTH_MEAN + math.cos(angle) * (worth - _WORTH_MEAN) + math.sin(angle) * new


def _logistic(u: np.ndarray) -> np.ndarray:
    """Standard logistic draws from uniforms ``u`` (their logit), the noise that approving when
    ``u < sigmoid(logit)`` implies: approval is ``logit - _logistic(u) > 0``."""
    u = np.clip(u, 1e-12, 1.0 - 1e-12)
    return np.log(u) - np.log1p(-u)


def _label(
    task: str,
    worth: np.ndarray,
    u_label: np.ndarray,
    female: np.ndarray,
    term: np.ndarray,
    bias: float,
) -> pa.Array:
    """The label column of ``task`` from the credit-worthiness ``worth`` (the approval logit
    before bias) and the label's uniform draw ``u_label``: one latent, so every task describes
    the same applicants with the same luck."""
    if task == BINARY:
        logit = worth - bias * BIAS_LOGIT * female
        approved = u_label < 1.0 / (1.0 + np.exp(-logit))
        return _strings((NEGATIVE, POSITIVE), approved.astype(np.int64))
    noise = _logistic(u_label)
    if task == MULTICLASS:
        latent = worth - bias * BIAS_LOGIT * female - _TIER_NOISE * noise
        tier = (latent < _TIER_CUTS[1]).astype(np.int64) + (latent < _TIER_CUTS[0])
        return _strings(RISK_TIERS, tier)
    x = (
        _RATE_BASE
        - _RATE_SLOPE * worth
        + _RATE_TERM * (term - 36) / 12.0
        + _RATE_NOISE * noise
        + bias * RATE_BIAS_LOGIT * female
    )
    rate = _RATE_FLOOR + (_RATE_CAP - _RATE_FLOOR) / (1.0 + np.exp(-x))
    return pa.array(np.round(rate, 2), type=pa.float64())


def _check_float(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    return out


# ---------------------------------------------------------------------------
# public entry point


def generate(
    path,
    rows: int,
    seed: int,
    bias: float = 0.0,
    drift: float = 0.0,
    task: str = BINARY,
    concept_drift: float = 0.0,
) -> GenerateResult:
    """Write ``rows`` synthetic credit applications to ``path``.

    The format follows the extension: ``.csv``, ``.csv.gz`` (gzip with a
    fixed header, so the bytes are reproducible) or ``.parquet`` (one row
    group per :data:`CHUNK_ROWS` rows).  Parent directories are created.  The
    file appears atomically; on error an existing file at ``path`` is left
    unchanged.

    ``task`` chooses the label, the file's last column (:data:`LABELS`):
    ``"binary"`` ``approved`` yes/no, ``"multiclass"`` ``risk_tier``
    (:data:`RISK_TIERS`) or ``"regression"`` ``interest_rate`` in percent.
    The other columns do not depend on it.

    ``seed`` is a non-negative integer; the same ``(rows, seed, bias, drift,
    concept_drift, task, format)`` always produces a byte-identical file.

    ``bias`` >= 0 disadvantages **female** applicants (``sex == "female"``):
    binary, their approval logit is lowered by ``bias * BIAS_LOGIT`` (0 means
    no direct discrimination, only a gap of a few points that comes from
    income differences; 1 gives a gap of roughly 30 percentage points);
    multiclass, the same shift moves them toward worse tiers; regression,
    their rate gets a surcharge (``bias * RATE_BIAS_LOGIT`` on its logit).

    ``drift`` >= 0 shifts the population (lower income and credit score,
    higher debt-to-income) and introduces the unseen values in
    :data:`UNSEEN_VALUES` (``employment_type="gig_worker"``,
    ``purpose="crypto"``, ``region="overseas"``), each on about
    ``1 - exp(-0.16 * drift)`` of the rows.  ``drift=0`` never produces them.

    ``concept_drift`` in [0, 1] changes how the label depends on the features
    (for every task), not the features: their columns are those of
    ``concept_drift=0``.  At 1 the label follows a judgement of other features,
    uncorrelated with the original one, so a model trained at 0 ranks at about
    chance.

    Raises ``ValueError`` for an unsupported extension, an unknown task,
    ``rows < 1``, negative ``seed``, negative / non-finite ``bias`` or
    ``drift``, or ``concept_drift`` outside [0, 1].
    """
    started = time.perf_counter()
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    fmt = _detect_format(target)
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    rows = _check_int("rows", rows, 1)
    seed = _check_int("seed", seed, 0)
    bias = _check_float("bias", bias)
    drift = _check_float("drift", drift)
    concept_drift = _check_float("concept_drift", concept_drift)
    if concept_drift > 1:
        raise ValueError(f"concept_drift must be between 0 and 1, got {concept_drift:g}")

    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    tally = _LabelTally(task)
    with atomic_open(target, "wb") as raw:
        _write_chunks(raw, fmt, rows, seed, bias, drift, task, tally, concept_drift)

    return GenerateResult(
        path=target,
        rows=rows,
        format=fmt,
        seconds=time.perf_counter() - started,
        seed=seed,
        bias=bias,
        drift=drift,
        size_bytes=os.path.getsize(target),
        task=task,
        label=LABELS[task],
        concept_drift=concept_drift,
        **tally.summary(rows),
    )


def _chunks(rows: int, seed: int, bias: float, drift: float, task: str = BINARY, concept_drift: float = 0.0):
    """Yield the data set as Arrow tables of at most CHUNK_ROWS rows."""
    chunk_rows = CHUNK_ROWS
    width = max(8, len(str(rows)))
    for index, start in enumerate(range(0, rows, chunk_rows)):
        n = min(chunk_rows, rows - start)
        rng = np.random.default_rng([seed, index])
        yield _make_chunk(rng, start, n, bias, drift, width, task, concept_drift)


class _LabelTally:
    """The label's summary, accumulated chunk by chunk (nothing but counts and sums is kept)."""

    def __init__(self, task: str):
        self.task = task
        self.counts = dict.fromkeys(RISK_TIERS if task == MULTICLASS else (POSITIVE,), 0)
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, table: pa.Table) -> None:
        column = table[LABELS[self.task]]
        if self.task == REGRESSION:
            self.total += pc.sum(column).as_py()
            extremes = pc.min_max(column).as_py()
            self.low = min(self.low, extremes["min"])
            self.high = max(self.high, extremes["max"])
            return
        for name in self.counts:
            self.counts[name] += int(pc.sum(pc.equal(column, name)).as_py() or 0)

    def summary(self, rows: int) -> dict:
        if self.task == REGRESSION:
            return {"positive_rate": None, "label_mean": self.total / rows,
                    "label_min": self.low, "label_max": self.high}
        if self.task == MULTICLASS:
            return {"positive_rate": None,
                    "class_shares": tuple((name, count / rows) for name, count in self.counts.items())}
        return {"positive_rate": self.counts[POSITIVE] / rows}


def _write_chunks(
    raw, fmt: str, rows: int, seed: int, bias: float, drift: float, task: str, tally: _LabelTally,
    concept_drift: float = 0.0,
) -> None:
    """Stream all chunks into the open binary file ``raw``, adding each to ``tally``."""
    schema = _schema(task)
    if fmt == "parquet":
        writer = pq.ParquetWriter(raw, schema, compression="snappy")
        try:
            for table in _chunks(rows, seed, bias, drift, task, concept_drift):
                tally.add(table)
                writer.write_table(table, row_group_size=table.num_rows)
        finally:
            writer.close()
        return

    sink = raw
    if fmt == "csv.gz":
        sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
    try:
        writer = pacsv.CSVWriter(sink, schema)
        try:
            for table in _chunks(rows, seed, bias, drift, task, concept_drift):
                tally.add(table)
                writer.write_table(table)
        finally:
            writer.close()
    finally:
        if sink is not raw:
            sink.close()  # writes the gzip trailer; leaves ``raw`` open
