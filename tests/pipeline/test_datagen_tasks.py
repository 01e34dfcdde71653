"""generate-data's multiclass (risk_tier) and regression (interest_rate) labels."""

import numpy as np
import pandas as pd
import pytest

from pipeline import datagen
from pipeline.cli import main

FEATURES = list(datagen.NUMERIC) + list(datagen.CATEGORICAL)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(datagen, "CHUNK_ROWS", 1_000)


def read(path):
    path = str(path)
    return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)


def generated(tmp_path, task, rows=20_000, seed=21, **kwargs):
    path = tmp_path / f"{task}-{seed}-{kwargs.get('bias', 0)}-{kwargs.get('drift', 0)}.parquet"
    result = datagen.generate(path, rows=rows, seed=seed, task=task, **kwargs)
    return result, read(path)


def design(df):
    """A plain numeric design matrix (one-hot categories, log money, gaps filled) for linear fits."""
    x = pd.get_dummies(df[FEATURES], columns=list(datagen.CATEGORICAL), dummy_na=True).astype(float)
    for name in ("income", "loan_amount"):
        x[name] = np.log(x[name])
    x = x.fillna(x.mean())
    return ((x - x.mean()) / x.std().replace(0, 1)).to_numpy()


def fair_and_biased(tmp_path, task):
    """The data set without and with bias 1, after checking that bias changed women's labels only;
    returns both frames and the men's mask."""
    label = datagen.LABELS[task]
    _, fair = generated(tmp_path, task, rows=10_000)
    _, biased = generated(tmp_path, task, rows=10_000, bias=1.0)
    pd.testing.assert_frame_equal(fair.drop(columns=label), biased.drop(columns=label))
    men = fair["sex"] == "male"
    assert (fair.loc[men, label] == biased.loc[men, label]).all()
    return fair, biased, men


def test_tasks_and_labels():
    assert datagen.TASKS == ("binary", "multiclass", "regression")
    assert datagen.LABELS == {"binary": "approved", "multiclass": "risk_tier", "regression": "interest_rate"}
    assert datagen.RISK_TIERS == ("low", "medium", "high")
    assert datagen.columns_of() == datagen.COLUMNS
    for task, label in datagen.LABELS.items():
        assert datagen.columns_of(task) == datagen.COLUMNS[:-1] + (label,)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("ext", ["csv.gz", "parquet", "csv"])
def test_same_seed_is_byte_identical(tmp_path, small_chunks, task, ext):
    a = datagen.generate(tmp_path / "a" / f"d.{ext}", rows=2_500, seed=7, bias=0.3, drift=0.4, task=task)
    b = datagen.generate(tmp_path / "b" / f"d.{ext}", rows=2_500, seed=7, bias=0.3, drift=0.4, task=task)
    assert (tmp_path / "a" / f"d.{ext}").read_bytes() == (tmp_path / "b" / f"d.{ext}").read_bytes()
    assert a.label_summary() == b.label_summary()
    datagen.generate(tmp_path / f"c.{ext}", rows=2_500, seed=8, bias=0.3, drift=0.4, task=task)
    assert (tmp_path / f"c.{ext}").read_bytes() != (tmp_path / "a" / f"d.{ext}").read_bytes()


def test_every_task_describes_the_same_applicants(tmp_path, small_chunks):
    frames = {}
    for task in datagen.TASKS:
        datagen.generate(tmp_path / f"{task}.csv", rows=2_500, seed=3, bias=0.5, drift=0.5, task=task)
        frames[task] = read(tmp_path / f"{task}.csv")
        assert list(frames[task].columns) == list(datagen.columns_of(task))
        assert frames[task][datagen.LABELS[task]].notna().all()
    features = [frame.iloc[:, :-1] for frame in frames.values()]
    for other in features[1:]:
        pd.testing.assert_frame_equal(features[0], other)
    # the tiers and the rates order applicants as the approval does
    joined = frames["binary"].assign(tier=frames["multiclass"]["risk_tier"],
                                     rate=frames["regression"]["interest_rate"])
    approval = joined.groupby("tier")["approved"].apply(lambda s: (s == "yes").mean())
    assert approval["low"] > approval["medium"] > approval["high"]
    rates = joined.groupby("approved")["rate"].mean()
    assert rates["no"] > rates["yes"] + 1.0


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_csv_and_parquet_hold_the_same_data(tmp_path, small_chunks, task):
    datagen.generate(tmp_path / "d.csv.gz", rows=1_500, seed=11, drift=0.5, task=task)
    datagen.generate(tmp_path / "d.parquet", rows=1_500, seed=11, drift=0.5, task=task)
    pd.testing.assert_frame_equal(read(tmp_path / "d.csv.gz"), read(tmp_path / "d.parquet"))


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_summary_matches_the_file_across_chunks(tmp_path, small_chunks, task):
    path = tmp_path / "d.csv"
    result = datagen.generate(path, rows=3_456, seed=2, bias=0.4, task=task)
    label = read(path)[datagen.LABELS[task]]
    assert (result.task, result.label, result.positive_rate) == (task, datagen.LABELS[task], None)
    if task == "multiclass":
        shares = label.value_counts(normalize=True)
        assert [name for name, _ in result.class_shares] == list(datagen.RISK_TIERS)
        for name, share in result.class_shares:
            assert share == pytest.approx(shares[name])
        assert result.label_mean is None
        assert result.label_summary().startswith("risk_tier shares low 0.")
    else:
        assert result.label_mean == pytest.approx(label.mean())
        assert (result.label_min, result.label_max) == (label.min(), label.max())
        assert result.class_shares is None
        assert result.label_summary() == (f"interest_rate mean {label.mean():.2f}, min {label.min():.2f}, "
                                          f"max {label.max():.2f}")


def test_binary_summary_is_the_positive_rate(tmp_path):
    result = datagen.generate(tmp_path / "d.csv", rows=500, seed=1)
    assert (result.task, result.label, result.class_shares, result.label_mean) == ("binary", "approved", None, None)
    assert result.label_summary() == f"positive rate {result.positive_rate:.3f}"


# --- multiclass ----------------------------------------------------------------------------------


def test_risk_tiers_are_balanced_and_ordered(tmp_path):
    _, df = generated(tmp_path, "multiclass")
    shares = df["risk_tier"].value_counts(normalize=True)
    assert set(shares.index) == set(datagen.RISK_TIERS)
    assert shares.min() > 0.25 and shares.max() < 0.42, shares.to_dict()
    by_tier = df.groupby("risk_tier")[["credit_score", "debt_to_income"]].mean()
    assert by_tier.loc["low", "credit_score"] > by_tier.loc["medium", "credit_score"] + 15
    assert by_tier.loc["medium", "credit_score"] > by_tier.loc["high", "credit_score"] + 15
    assert by_tier.loc["low", "debt_to_income"] < by_tier.loc["high", "debt_to_income"]
    women = df.groupby("sex")["risk_tier"].apply(lambda s: (s == "high").mean())
    assert abs(women["female"] - women["male"]) < 0.05


def test_risk_tier_is_learnable(tmp_path):
    linear_model = pytest.importorskip("sklearn.linear_model")
    _, df = generated(tmp_path, "multiclass", rows=6_000)
    x, y = design(df), df["risk_tier"].to_numpy()
    model = linear_model.LogisticRegression(max_iter=1_000).fit(x[:4_000], y[:4_000])
    accuracy = (model.predict(x[4_000:]) == y[4_000:]).mean()
    majority = pd.Series(y[4_000:]).value_counts(normalize=True).max()
    assert 0.62 < accuracy < 0.82, accuracy
    assert accuracy > majority + 0.25


def test_bias_moves_women_to_worse_tiers(tmp_path):
    fair, biased, men = fair_and_biased(tmp_path, "multiclass")
    rank = {"low": 0, "medium": 1, "high": 2}
    before, after = fair.loc[~men, "risk_tier"].map(rank), biased.loc[~men, "risk_tier"].map(rank)
    assert (after >= before).all()  # nobody moves to a better tier
    high = biased.groupby("sex")["risk_tier"].apply(lambda s: (s == "high").mean())
    low = biased.groupby("sex")["risk_tier"].apply(lambda s: (s == "low").mean())
    assert high["female"] > high["male"] + 0.25
    assert low["female"] < low["male"] - 0.2


def test_drift_moves_tiers_toward_high_risk(tmp_path):
    _, base = generated(tmp_path, "multiclass", rows=10_000)
    _, drifted = generated(tmp_path, "multiclass", rows=10_000, drift=1.0)
    assert (drifted["purpose"] == "crypto").mean() > 0.1
    assert (drifted["risk_tier"] == "high").mean() > (base["risk_tier"] == "high").mean() + 0.15
    pd.testing.assert_series_equal(base["sex"], drifted["sex"])


# --- regression ----------------------------------------------------------------------------------


def test_interest_rate_is_a_positive_right_skewed_percentage(tmp_path):
    _, df = generated(tmp_path, "regression")
    rate = df["interest_rate"]
    assert rate.dtype == np.float64
    assert rate.between(3.0, 36.0).all()
    assert (rate == rate.round(2)).all()
    assert 8.0 < rate.median() < 10.5 and rate.mean() > rate.median() + 0.5
    assert rate.skew() > 1.0
    assert abs(np.log(rate).skew()) < rate.skew() / 2  # a log label makes sense
    assert (rate > 34.0).mean() < 0.002  # no pile-up at the cap
    assert rate.nunique() > 1_000
    by_sex = df.groupby("sex")["interest_rate"].mean()
    assert abs(by_sex["female"] - by_sex["male"]) < 0.5


def test_interest_rate_is_learnable(tmp_path):
    linear_model = pytest.importorskip("sklearn.linear_model")
    _, df = generated(tmp_path, "regression", rows=10_000)
    x, y = design(df), df["interest_rate"].to_numpy()
    model = linear_model.Ridge().fit(x[:7_000], np.log(y[:7_000]))
    predicted = np.exp(model.predict(x[7_000:]))
    r2 = 1 - ((y[7_000:] - predicted) ** 2).sum() / ((y[7_000:] - y[7_000:].mean()) ** 2).sum()
    assert 0.5 < r2 < 0.8, r2


def test_bias_is_a_surcharge_on_women(tmp_path):
    fair, biased, men = fair_and_biased(tmp_path, "regression")
    surcharge = biased.loc[~men, "interest_rate"] - fair.loc[~men, "interest_rate"]
    assert (surcharge >= 0).all()
    assert 1.5 < surcharge.mean() < 4.0, surcharge.mean()
    assert biased["interest_rate"].max() <= 36.0


def test_drift_raises_rates(tmp_path):
    _, base = generated(tmp_path, "regression", rows=10_000)
    _, drifted = generated(tmp_path, "regression", rows=10_000, drift=1.0)
    assert drifted["interest_rate"].mean() > base["interest_rate"].mean() + 1.5
    assert (drifted["employment_type"] == "gig_worker").mean() > 0.1


# --- errors and the CLI --------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary ", "Multiclass", "", None, "ordinal"])
def test_unknown_task_raises(tmp_path, task):
    with pytest.raises(ValueError, match="task must be one of binary, multiclass, regression"):
        datagen.generate(tmp_path / "d.csv", rows=10, seed=0, task=task)
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_the_label_summary(tmp_path, capsys):
    for task, expected in (("binary", "(positive rate 0."),
                           ("multiclass", "(risk_tier shares low 0."),
                           ("regression", "(interest_rate mean ")):
        path = tmp_path / f"{task}.csv"
        assert main(["generate-data", "-o", str(path), "--rows", "300", "--seed", "4", "--bias", "0.5",
                     "--task", task]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith(f"Wrote 300 rows to {path} in ") and expected in line, line
        assert line.endswith(", bias 0.5, drift 0, concept drift 0)")
        assert list(read(path).columns)[-1] == datagen.LABELS[task]


def test_cli_default_task_is_binary(tmp_path, capsys):
    assert main(["generate-data", "-o", str(tmp_path / "a.csv"), "--rows", "200", "--seed", "4"]) == 0
    assert "(positive rate 0." in capsys.readouterr().out
    datagen.generate(tmp_path / "b.csv", rows=200, seed=4)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_cli_refuses_an_unknown_task(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate-data", "-o", str(tmp_path / "d.csv"), "--task", "ordinal"])
    assert exit_.value.code == 2
    assert "invalid choice: 'ordinal'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
