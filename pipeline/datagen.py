"""Deterministic synthetic credit-approval data set.

``generate(path, rows, seed)`` writes a realistic tabular binary-classification
data set (one row per loan application, label ``approved`` = ``"yes"``/``"no"``)
to ``.csv``, ``.csv.gz`` or ``.parquet``.  It is used by the quickstart and by
the tests of the pipeline components, so it has to be:

* **deterministic** -- the same ``(rows, seed, bias, drift, format)`` always
  gives a byte-identical file.  Rows are produced in fixed-size chunks of
  :data:`CHUNK_ROWS`; chunk ``i`` uses ``np.random.default_rng([seed, i])``.
  ``bias`` and ``drift`` only change how the random draws are transformed,
  never which draws are made, so e.g. ``drift=0`` and ``drift=1`` describe the
  same applicants, one of them seen in a shifted world.
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
    approved          string   "yes"/"no"  (the label)

Roughly 2.5-4 % of ``income``, ``years_employed``, ``employment_type`` and
``housing`` are missing (empty CSV field, null in Parquet).  ``applicant_id``,
``approved``, ``sex`` and ``race`` are never missing.

The label is drawn from a logistic model of credit score, debt-to-income,
income, years employed, employment type, housing and purpose; the overall
approval rate is about 50 %.  Women earn slightly less on average in the
simulated population, which by itself gives a small (a few points) approval
gap between the sexes; race has no effect on anything.

``bias`` (>= 0) injects *direct* discrimination **against** ``sex ==
"female"``: ``bias * BIAS_LOGIT`` is subtracted from the approval logit of
female applicants.  ``bias=1`` gives a female/male approval-rate gap of about
30 percentage points.

``drift`` (>= 0) simulates a shifted serving population: incomes fall by
``exp(-0.2 * drift)``, credit scores drop by ``45 * drift`` points,
debt-to-income grows by ``0.08 * drift``, and three categorical columns gain
values never seen at ``drift=0``: ``employment_type="gig_worker"``,
``purpose="crypto"`` and ``region="overseas"``, each on a fraction
``1 - exp(-0.16 * drift)`` of the rows (about 15 % at ``drift=1``).
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

LABEL = "approved"
POSITIVE = "yes"
NEGATIVE = "no"
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
    positive_rate: float  # fraction of rows with approved == "yes"
    seconds: float
    seed: int
    bias: float
    drift: float
    size_bytes: int


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


def _schema() -> pa.Schema:
    fields = []
    for name in COLUMNS:
        if name in _INT_COLUMNS:
            fields.append(pa.field(name, pa.int64(), nullable=False))
        elif name in NUMERIC:
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
    rng: np.random.Generator, start: int, n: int, bias: float, drift: float, width: int
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

    logit = (
        _LOGIT_INTERCEPT
        + 0.011 * (credit_score - 680)
        - 3.5 * (debt_to_income - 0.35)
        + 0.7 * (np.log(income) - 10.8)
        + 0.03 * np.minimum(years, 20.0)
        + np.take(_EMP_LOGIT, employment)
        + np.take(_HOUSING_LOGIT, housing)
        + np.take(_PURPOSE_LOGIT, purpose)
        + np.take(_REGION_LOGIT, region)
        - bias * BIAS_LOGIT * female
    )
    approved = u_label < 1.0 / (1.0 + np.exp(-logit))

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
        LABEL: _strings((NEGATIVE, POSITIVE), approved.astype(np.int64)),
    }
    return pa.Table.from_arrays([columns[c] for c in COLUMNS], schema=_schema())


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
    path, rows: int, seed: int, bias: float = 0.0, drift: float = 0.0
) -> GenerateResult:
    """Write ``rows`` synthetic credit applications to ``path``.

    The format follows the extension: ``.csv``, ``.csv.gz`` (gzip with a
    fixed header, so the bytes are reproducible) or ``.parquet`` (one row
    group per :data:`CHUNK_ROWS` rows).  Parent directories are created.  The
    file appears atomically; on error an existing file at ``path`` is left
    unchanged.

    ``seed`` is a non-negative integer; the same ``(rows, seed, bias, drift,
    format)`` always produces a byte-identical file.

    ``bias`` >= 0 lowers the approval logit of **female** applicants
    (``sex == "female"``) by ``bias * BIAS_LOGIT``: 0 means no direct
    discrimination (only a gap of a few points that comes from income
    differences), 1 gives a gap of roughly 30 percentage points.

    ``drift`` >= 0 shifts the population (lower income and credit score,
    higher debt-to-income) and introduces the unseen values in
    :data:`UNSEEN_VALUES` (``employment_type="gig_worker"``,
    ``purpose="crypto"``, ``region="overseas"``), each on about
    ``1 - exp(-0.16 * drift)`` of the rows.  ``drift=0`` never produces them.

    Raises ``ValueError`` for an unsupported extension, ``rows < 1``,
    negative ``seed`` or negative / non-finite ``bias`` or ``drift``.
    """
    started = time.perf_counter()
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    fmt = _detect_format(target)
    rows = _check_int("rows", rows, 1)
    seed = _check_int("seed", seed, 0)
    bias = _check_float("bias", bias)
    drift = _check_float("drift", drift)

    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    with atomic_open(target, "wb") as raw:
        positives = _write_chunks(raw, fmt, rows, seed, bias, drift)

    return GenerateResult(
        path=target,
        rows=rows,
        format=fmt,
        positive_rate=positives / rows,
        seconds=time.perf_counter() - started,
        seed=seed,
        bias=bias,
        drift=drift,
        size_bytes=os.path.getsize(target),
    )


def _chunks(rows: int, seed: int, bias: float, drift: float):
    """Yield the data set as Arrow tables of at most CHUNK_ROWS rows."""
    chunk_rows = CHUNK_ROWS
    width = max(8, len(str(rows)))
    for index, start in enumerate(range(0, rows, chunk_rows)):
        n = min(chunk_rows, rows - start)
        rng = np.random.default_rng([seed, index])
        yield _make_chunk(rng, start, n, bias, drift, width)


def _count_positive(table: pa.Table) -> int:
    return int(pc.sum(pc.equal(table[LABEL], POSITIVE)).as_py() or 0)


def _write_chunks(raw, fmt: str, rows: int, seed: int, bias: float, drift: float) -> int:
    """Stream all chunks into the open binary file ``raw``; return #positives."""
    positives = 0
    schema = _schema()
    if fmt == "parquet":
        writer = pq.ParquetWriter(raw, schema, compression="snappy")
        try:
            for table in _chunks(rows, seed, bias, drift):
                positives += _count_positive(table)
                writer.write_table(table, row_group_size=table.num_rows)
        finally:
            writer.close()
        return positives

    sink = raw
    if fmt == "csv.gz":
        sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
    try:
        writer = pacsv.CSVWriter(sink, schema)
        try:
            for table in _chunks(rows, seed, bias, drift):
                positives += _count_positive(table)
                writer.write_table(table)
        finally:
            writer.close()
    finally:
        if sink is not raw:
            sink.close()  # writes the gzip trailer; leaves ``raw`` open
    return positives
