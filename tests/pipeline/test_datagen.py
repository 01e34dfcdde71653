import gzip
import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import datagen

EXPECTED_COLUMNS = [
    "applicant_id", "age", "income", "credit_score", "loan_amount",
    "loan_term_months", "debt_to_income", "years_employed", "employment_type",
    "education", "housing", "purpose", "region", "sex", "race", "approved",
]
KNOWN_VALUES = {
    "employment_type": {"salaried", "self_employed", "contractor", "unemployed", "retired"},
    "education": {"high_school", "bachelors", "masters", "doctorate", "other"},
    "housing": {"own", "mortgage", "rent", "other"},
    "purpose": {"home", "car", "education", "business", "medical", "debt_consolidation"},
    "region": {"north", "south", "east", "west", "central"},
    "sex": {"female", "male"},
    "race": {"group_a", "group_b", "group_c", "group_d", "group_e"},
    "approved": {"yes", "no"},
}


@pytest.fixture
def small_chunks(monkeypatch):
    """Make several chunks appear with small row counts."""
    monkeypatch.setattr(datagen, "CHUNK_ROWS", 1_000)


def read(path):
    path = str(path)
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def is_in(series, values):
    return series.map(lambda v: v in values).astype(bool)


def approval_rate(df):
    return (df["approved"] == "yes").mean()


def sex_gap(df):
    rates = df.groupby("sex")["approved"].apply(lambda s: (s == "yes").mean())
    return rates["male"] - rates["female"]


def test_public_constants():
    assert datagen.LABEL == "approved"
    assert datagen.POSITIVE == "yes"
    assert datagen.KEY == "applicant_id"
    assert datagen.SENSITIVE == ("sex", "race")
    assert set(datagen.SENSITIVE) <= set(datagen.CATEGORICAL)
    assert list(datagen.COLUMNS) == EXPECTED_COLUMNS
    assert set(datagen.NUMERIC) == {
        "age", "income", "credit_score", "loan_amount", "loan_term_months",
        "debt_to_income", "years_employed",
    }
    assert set(datagen.CATEGORICAL) == set(KNOWN_VALUES) - {"approved"}


@pytest.mark.parametrize("ext", ["csv.gz", "parquet", "csv"])
def test_same_seed_is_byte_identical(tmp_path, small_chunks, ext):
    a = datagen.generate(tmp_path / "a" / f"data.{ext}", rows=2_500, seed=7, bias=0.3, drift=0.4)
    b = datagen.generate(tmp_path / "b" / f"data.{ext}", rows=2_500, seed=7, bias=0.3, drift=0.4)
    assert (tmp_path / "a" / f"data.{ext}").read_bytes() == (tmp_path / "b" / f"data.{ext}").read_bytes()
    assert a.positive_rate == b.positive_rate


def test_binary_bytes_are_pinned(tmp_path):
    """The default (binary) data set is the one generated before the other tasks existed: the
    digest was taken from that code, so adding tasks changed no byte of it."""
    path = tmp_path / "data.csv"
    result = datagen.generate(path, rows=5_000, seed=0, bias=1, drift=1)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "7002a435a8545251cb24e799e4492434976e76dbaed7cd49261157f3cf450bee"
    assert result.positive_rate == 0.24
    assert datagen.generate(tmp_path / "same.csv", rows=5_000, seed=0, bias=1, drift=1,
                            task="binary").positive_rate == 0.24
    assert (tmp_path / "same.csv").read_bytes() == path.read_bytes()


def test_gzip_header_has_no_name_or_mtime(tmp_path):
    path = tmp_path / "data.csv.gz"
    datagen.generate(path, rows=10, seed=0)
    head = path.read_bytes()[:10]
    assert head[:2] == b"\x1f\x8b"
    assert head[3] & 0x08 == 0  # FNAME flag not set
    assert head[4:8] == b"\x00\x00\x00\x00"  # mtime == 0
    with gzip.open(path, "rt") as f:
        assert f.readline().startswith('"applicant_id"')


@pytest.mark.parametrize("ext", ["csv.gz", "parquet"])
def test_different_seeds_differ(tmp_path, ext):
    datagen.generate(tmp_path / f"a.{ext}", rows=500, seed=1)
    datagen.generate(tmp_path / f"b.{ext}", rows=500, seed=2)
    assert (tmp_path / f"a.{ext}").read_bytes() != (tmp_path / f"b.{ext}").read_bytes()
    a, b = read(tmp_path / f"a.{ext}"), read(tmp_path / f"b.{ext}")
    assert not a["income"].equals(b["income"])
    assert list(a["applicant_id"]) == list(b["applicant_id"])


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "parquet"])
def test_row_count_columns_and_result(tmp_path, small_chunks, ext):
    path = tmp_path / f"data.{ext}"
    result = datagen.generate(path, rows=2_345, seed=3)
    df = read(path)
    assert len(df) == 2_345
    assert list(df.columns) == EXPECTED_COLUMNS
    assert result.rows == 2_345
    assert result.format == ext
    assert result.path == str(path)
    assert result.seconds >= 0
    assert result.positive_rate == pytest.approx(approval_rate(df))
    with pytest.raises(Exception):
        result.rows = 1  # frozen


def test_parquet_row_groups_follow_chunks(tmp_path, small_chunks):
    path = tmp_path / "data.parquet"
    datagen.generate(path, rows=2_500, seed=3)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]


def test_csv_and_parquet_hold_the_same_data(tmp_path, small_chunks):
    datagen.generate(tmp_path / "d.csv.gz", rows=1_500, seed=11, drift=0.5)
    datagen.generate(tmp_path / "d.parquet", rows=1_500, seed=11, drift=0.5)
    pd.testing.assert_frame_equal(read(tmp_path / "d.csv.gz"), read(tmp_path / "d.parquet"))


def test_generation_is_chunked(tmp_path, monkeypatch, small_chunks):
    sizes = []
    real = datagen._make_chunk

    def spy(rng, start, n, *args):
        sizes.append(n)
        return real(rng, start, n, *args)

    monkeypatch.setattr(datagen, "_make_chunk", spy)
    datagen.generate(tmp_path / "d.csv", rows=3_200, seed=0)
    assert sizes == [1000, 1000, 1000, 200]


def test_keys_unique_and_sequential(tmp_path, small_chunks):
    datagen.generate(tmp_path / "d.csv", rows=2_050, seed=5)
    ids = read(tmp_path / "d.csv")["applicant_id"]
    assert ids.is_unique
    assert ids.iloc[0] == "A00000001"
    assert ids.iloc[-1] == "A00002050"
    assert list(ids) == [f"A{i:08d}" for i in range(1, 2_051)]


def test_values_types_and_ranges(tmp_path):
    datagen.generate(tmp_path / "d.parquet", rows=5_000, seed=9)
    df = read(tmp_path / "d.parquet")
    for col in ("age", "credit_score", "loan_term_months"):
        assert df[col].dtype == np.int64
    for col in ("income", "loan_amount", "debt_to_income", "years_employed"):
        assert df[col].dtype == np.float64
    assert df["age"].between(18, 85).all()
    assert df["credit_score"].between(300, 850).all()
    assert set(df["loan_term_months"]) <= {12, 24, 36, 48, 60}
    assert (df["income"].dropna() > 0).all()
    assert (df["loan_amount"] > 0).all()
    assert df["debt_to_income"].between(0, 1.5).all()
    assert df["debt_to_income"].median() < 0.6
    assert (df["years_employed"].dropna() >= 0).all()
    assert (df["years_employed"].dropna() <= df["age"][df["years_employed"].notna()] - 18).all()
    for col, values in KNOWN_VALUES.items():
        assert set(df[col].dropna()) == values, col
    race_share = df["race"].value_counts(normalize=True)
    assert race_share.max() > 2 * race_share.min()  # unequal group sizes
    assert 0.40 <= approval_rate(df) <= 0.60
    # plausible relationships
    assert df["age"].corr(df["years_employed"]) > 0.4
    edu_income = df.groupby("education")["income"].median()
    assert edu_income["doctorate"] > edu_income["bachelors"] > edu_income["high_school"]
    approved = df["approved"] == "yes"
    assert df.loc[approved, "credit_score"].mean() > df.loc[~approved, "credit_score"].mean() + 20
    assert df.loc[approved, "debt_to_income"].mean() < df.loc[~approved, "debt_to_income"].mean()


@pytest.mark.parametrize("ext", ["csv.gz", "parquet"])
def test_missing_values(tmp_path, ext):
    datagen.generate(tmp_path / f"d.{ext}", rows=5_000, seed=4)
    df = read(tmp_path / f"d.{ext}")
    for col in ("income", "years_employed", "employment_type", "housing"):
        share = df[col].isna().mean()
        assert 0.01 < share < 0.08, (col, share)
    for col in ("applicant_id", "approved", "sex", "race"):
        assert df[col].notna().all(), col


def test_missing_values_are_empty_csv_fields(tmp_path):
    path = tmp_path / "d.csv"
    datagen.generate(path, rows=2_000, seed=4)
    lines = path.read_text().splitlines()
    assert any(",," in line for line in lines[1:])
    assert "nan" not in path.read_text().lower().replace("finan", "")


def test_bias_creates_sex_gap(tmp_path):
    datagen.generate(tmp_path / "fair.parquet", rows=20_000, seed=21, bias=0.0)
    datagen.generate(tmp_path / "biased.parquet", rows=20_000, seed=21, bias=1.0)
    fair, biased = read(tmp_path / "fair.parquet"), read(tmp_path / "biased.parquet")
    assert abs(sex_gap(fair)) < 0.05
    assert sex_gap(biased) > 0.20
    # bias acts on the label only: features are unchanged
    pd.testing.assert_frame_equal(fair.drop(columns="approved"), biased.drop(columns="approved"))
    # and only against women: men's labels are identical
    men = fair["sex"] == "male"
    assert (fair.loc[men, "approved"] == biased.loc[men, "approved"]).all()


def test_drift(tmp_path):
    datagen.generate(tmp_path / "base.parquet", rows=10_000, seed=8, drift=0.0)
    datagen.generate(tmp_path / "drift.parquet", rows=10_000, seed=8, drift=1.0)
    base, drifted = read(tmp_path / "base.parquet"), read(tmp_path / "drift.parquet")
    unseen = {col: set(vals) for col, vals in datagen.UNSEEN_VALUES.items()}
    assert unseen == {
        "employment_type": {"gig_worker"}, "purpose": {"crypto"}, "region": {"overseas"},
    }
    for col, values in unseen.items():
        assert not is_in(base[col], values).any(), col
        share = is_in(drifted[col], values).mean()
        assert 0.10 <= share <= 0.20, (col, share)
    assert drifted["income"].mean() < 0.9 * base["income"].mean()
    assert drifted["credit_score"].mean() < base["credit_score"].mean() - 25
    assert drifted["debt_to_income"].mean() > base["debt_to_income"].mean() + 0.05


def test_drift_zero_never_produces_unseen_values(tmp_path, small_chunks):
    datagen.generate(tmp_path / "d.csv", rows=30_000, seed=123)
    df = read(tmp_path / "d.csv")
    for col, values in datagen.UNSEEN_VALUES.items():
        assert not is_in(df[col], values).any(), col


def test_unseen_share_grows_with_drift(tmp_path):
    shares = []
    for drift in (0.25, 1.0, 3.0):
        datagen.generate(tmp_path / "d.parquet", rows=5_000, seed=1, drift=drift)
        shares.append((read(tmp_path / "d.parquet")["purpose"] == "crypto").mean())
    assert 0 < shares[0] < shares[1] < shares[2]


@pytest.mark.parametrize("name", ["data.json", "data.txt", "data.gz", "data"])
def test_unknown_extension_raises(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(ValueError) as err:
        datagen.generate(path, rows=10, seed=0)
    assert str(path) in str(err.value)
    assert ".csv.gz" in str(err.value) and ".parquet" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs",
    [dict(rows=0), dict(rows=-5), dict(bias=-0.1), dict(drift=-1.0),
     dict(drift=float("nan")), dict(seed=-1)],
)
def test_invalid_arguments(tmp_path, kwargs):
    args = dict(rows=10, seed=0) | kwargs
    with pytest.raises(ValueError):
        datagen.generate(tmp_path / "d.csv", **args)
    assert not (tmp_path / "d.csv").exists()


def test_creates_parent_directory(tmp_path):
    path = tmp_path / "x" / "y" / "d.csv"
    datagen.generate(path, rows=3, seed=0)
    assert len(read(path)) == 3


def test_overwrites_existing_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("old contents\n")
    datagen.generate(path, rows=4, seed=0)
    assert len(read(path)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "parquet"])
def test_failure_midway_leaves_existing_target_untouched(tmp_path, monkeypatch, small_chunks, ext):
    path = tmp_path / f"d.{ext}"
    path.write_bytes(b"precious old data")
    real = datagen._make_chunk
    calls = []

    def flaky(*args):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(datagen, "_make_chunk", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        datagen.generate(path, rows=3_000, seed=0)
    assert len(calls) == 2  # the first chunk was written before the failure
    assert path.read_bytes() == b"precious old data"
    assert [p.name for p in tmp_path.iterdir()] == [f"d.{ext}"]


def test_failure_without_existing_target_leaves_nothing(tmp_path, monkeypatch, small_chunks):
    real = datagen._make_chunk
    calls = []

    def flaky(*args):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(datagen, "_make_chunk", flaky)
    with pytest.raises(RuntimeError):
        datagen.generate(tmp_path / "d.csv.gz", rows=3_000, seed=0)
    assert list(tmp_path.iterdir()) == []


# --- concept drift: the label's dependence on the features changes, the features do not ----------


def auc(score, positive) -> float:
    """The AUC of ``score`` for the boolean ``positive`` (Mann-Whitney, ties counted half)."""
    ranks = pd.Series(np.asarray(score, dtype=float)).rank().to_numpy()
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.mark.parametrize("task", datagen.TASKS)
def test_concept_drift_leaves_every_feature_column_as_it_is(tmp_path, small_chunks, task):
    datagen.generate(tmp_path / "c0.parquet", rows=3_000, seed=5, task=task)
    datagen.generate(tmp_path / "c1.parquet", rows=3_000, seed=5, task=task, concept_drift=1.0)
    before, after = read(tmp_path / "c0.parquet"), read(tmp_path / "c1.parquet")
    label = datagen.LABELS[task]
    pd.testing.assert_frame_equal(before.drop(columns=label), after.drop(columns=label))
    changed = (before[label] != after[label]).mean()
    assert changed > 0.3, changed  # the label is another one


@pytest.mark.parametrize("drift", [0.0, 1.0])
def test_concept_drift_composes_with_drift_on_the_label_only(tmp_path, drift):
    datagen.generate(tmp_path / "a.parquet", rows=2_000, seed=2, drift=drift, bias=0.5)
    datagen.generate(tmp_path / "b.parquet", rows=2_000, seed=2, drift=drift, bias=0.5, concept_drift=0.5)
    a, b = read(tmp_path / "a.parquet"), read(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a.drop(columns="approved"), b.drop(columns="approved"))
    assert (a["approved"] != b["approved"]).any()


def test_concept_drift_zero_is_the_data_without_it(tmp_path):
    datagen.generate(tmp_path / "a.csv", rows=2_000, seed=3, bias=1, drift=1)
    result = datagen.generate(tmp_path / "b.csv", rows=2_000, seed=3, bias=1, drift=1, concept_drift=0.0)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert result.concept_drift == 0.0


def test_concept_drift_moves_the_label_off_the_old_features_onto_others(tmp_path):
    """What the old concept ranks well (credit score, debt) ranks at chance at C=1, what it ignored
    (the loan's size) now ranks; the approval rate stays about the same all along."""
    by_c = {}
    for c in (0.0, 0.5, 1.0):
        datagen.generate(tmp_path / "d.parquet", rows=20_000, seed=12, concept_drift=c)
        df = read(tmp_path / "d.parquet")
        approved = df["approved"] == "yes"
        by_c[c] = {"credit": auc(df["credit_score"], approved), "debt": auc(-df["debt_to_income"], approved),
                   "small_loan": auc(-df["loan_amount"], approved), "rate": approved.mean()}
    assert by_c[0.0]["credit"] > 0.70 and by_c[0.0]["debt"] > 0.65
    assert by_c[0.0]["credit"] > by_c[0.5]["credit"] > by_c[1.0]["credit"]
    assert abs(by_c[1.0]["credit"] - 0.5) < 0.05
    assert by_c[1.0]["debt"] < by_c[0.0]["debt"] - 0.08  # what is left: small loans weigh less on the debt
    assert abs(by_c[0.0]["small_loan"] - 0.5) < 0.05 and by_c[1.0]["small_loan"] > 0.65
    for c, figures in by_c.items():
        assert 0.45 <= figures["rate"] <= 0.60, (c, figures)


def test_concept_drift_changes_every_task_and_keeps_its_balance(tmp_path):
    datagen.generate(tmp_path / "m0.parquet", rows=10_000, seed=6, task="multiclass")
    datagen.generate(tmp_path / "m1.parquet", rows=10_000, seed=6, task="multiclass", concept_drift=1.0)
    m0, m1 = read(tmp_path / "m0.parquet"), read(tmp_path / "m1.parquet")
    risky = {name: frame["risk_tier"] == "high" for name, frame in (("m0", m0), ("m1", m1))}
    assert auc(-m0["credit_score"], risky["m0"]) > 0.70
    assert abs(auc(-m1["credit_score"], risky["m1"]) - 0.5) < 0.04
    for share in m1["risk_tier"].value_counts(normalize=True):
        assert 0.25 <= share <= 0.42
    datagen.generate(tmp_path / "r0.parquet", rows=10_000, seed=6, task="regression")
    datagen.generate(tmp_path / "r1.parquet", rows=10_000, seed=6, task="regression", concept_drift=1.0)
    r0, r1 = read(tmp_path / "r0.parquet"), read(tmp_path / "r1.parquet")
    assert r0["interest_rate"].corr(r0["credit_score"], method="spearman") < -0.5
    assert abs(r1["interest_rate"].corr(r1["credit_score"], method="spearman")) < 0.1
    assert r1["interest_rate"].corr(np.log(r1["loan_amount"]), method="spearman") > 0.3
    assert abs(r1["interest_rate"].mean() - r0["interest_rate"].mean()) < 1.0


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), float("inf")])
def test_concept_drift_outside_0_to_1_raises(tmp_path, value):
    with pytest.raises(ValueError, match="concept_drift"):
        datagen.generate(tmp_path / "d.csv", rows=10, seed=0, concept_drift=value)
    assert not (tmp_path / "d.csv").exists()


def test_cli_concept_drift(tmp_path, capsys):
    from pipeline.cli import main

    path = tmp_path / "d.csv"
    assert main(["generate-data", "-o", str(path), "--rows", "300", "--seed", "4", "--concept-drift", "0.5"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith(", bias 0, drift 0, concept drift 0.5)"), line
    datagen.generate(tmp_path / "same.csv", rows=300, seed=4, concept_drift=0.5)
    assert path.read_bytes() == (tmp_path / "same.csv").read_bytes()
    assert main(["generate-data", "-o", str(tmp_path / "bad.csv"), "--rows", "30", "--concept-drift", "2"]) == 1
    assert "generate-data: concept_drift must be between 0 and 1, got 2" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()
