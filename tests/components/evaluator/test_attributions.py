"""Feature attributions (permutation importance on the raw features) on small SavedModels whose
scores are known functions of their inputs: which features they use decides what the figures must
say, per task, per group of a sensitive feature, and for proxies built into the train data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.common import tasks
from components.evaluator import attributions
from tests.components.evaluator import tiny_models as tm

pytestmark = pytest.mark.slow  # builds SavedModels

LABEL = "approved"
NUMERIC = ["x", "unused", "income"]
CATEGORICAL = ["sex", "proxy", "noise"]
FEMALE_LOGIT = 1.5


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _credit_columns(rows: int, seed: int, others: int = 0) -> dict[str, list]:
    """Examples where the label depends on ``x`` and on ``sex``; ``proxy`` is sex 90% of the time,
    ``income`` leans on sex, ``noise`` and ``unused`` are independent of everything. ``others``
    examples of a third, small sex group come last."""
    rng = np.random.default_rng(seed)
    sex = np.array(["female", "male"])[rng.integers(0, 2, rows)].tolist() + ["other"] * others
    n = len(sex)
    female = np.array([s == "female" for s in sex])
    x = rng.normal(size=n)
    flip = rng.random(n) < 0.1
    proxy = np.where(flip, np.where(female, "m", "f"), np.where(female, "f", "m"))
    income = 2.0 * female + rng.normal(size=n)
    approved = rng.random(n) < _sigmoid(2.0 * x + FEMALE_LOGIT * female - 0.75)
    return {"x": x.tolist(), "unused": rng.normal(size=n).tolist(), "income": income.tolist(), "sex": sex,
            "proxy": proxy.tolist(), "noise": np.array(["a", "b", "c"])[rng.integers(0, 3, n)].tolist(),
            LABEL: np.where(approved, "yes", "no").tolist()}


def _save_binary(model_dir: str, x_weight: float, female_weight: float, offset: float) -> str:
    """A binary model scoring sigmoid(x_weight * x + female_weight * [sex == female] + offset); its
    label is 1 for ``yes``, 0 for another value, -1 where the example has none."""
    import tensorflow as tf

    spec = {"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
            "sex": tf.io.FixedLenFeature([1], tf.string, default_value=[""])}
    label_spec = {LABEL: tf.io.FixedLenFeature([1], tf.string, default_value=[""])}

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(examples, spec)
            female = tf.cast(tf.equal(parsed["sex"], "female"), tf.float32)
            return {tasks.SCORES: tf.sigmoid(x_weight * parsed["x"] + female_weight * female + offset)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_features(self, examples):
            return tf.io.parse_example(examples, spec)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_label(self, examples):
            raw = tf.io.parse_example(examples, label_spec)[LABEL][:, 0]
            label = tf.where(tf.equal(raw, ""), tf.constant(-1, tf.int64), tf.cast(tf.equal(raw, "yes"), tf.int64))
            return {tasks.label_key(LABEL, tasks.BINARY): label}

    return tm._save(Model(), model_dir)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attributions")
    eval_columns = _credit_columns(600, seed=1, others=10)
    return {"folder": folder, "eval_columns": eval_columns,
            "eval": tm.write_examples(str(folder / "eval.tfrecord"), eval_columns),
            "train": tm.write_examples(str(folder / "train.tfrecord"), _credit_columns(2000, seed=2))}


@pytest.fixture(scope="module")
def models(data):
    import tensorflow as tf

    folder = data["folder"]
    built = {"x_only": _save_binary(str(folder / "x_only"), 2.0, 0.0, 0.0),
             "with_sex": _save_binary(str(folder / "with_sex"), 2.0, FEMALE_LOGIT, -0.75),
             "constant": _save_binary(str(folder / "constant"), 0.0, 0.0, 0.3),
             "sex_backwards": _save_binary(str(folder / "sex_backwards"), 2.0, -FEMALE_LOGIT, 0.75)}
    return {name: tf.saved_model.load(path) for name, path in built.items()}


def _compute(model, records, train=None, **changes):
    arguments = dict(label=LABEL, task=tasks.BINARY, numeric=NUMERIC, categorical=CATEGORICAL, sensitive=["sex"])
    return attributions.compute(model, records, train, **{**arguments, **changes})


def _by_feature(rows: list[dict]) -> dict[str, dict]:
    return {row["feature"]: row for row in rows}


def test_a_model_of_x_alone_gives_x_the_whole_share(models, data):
    result = _compute(models["x_only"], data["eval"])
    features = _by_feature(result["features"])
    assert features["x"]["share"] == pytest.approx(1.0)
    assert features["x"]["importance"] > 0.2
    for unused in ("unused", "income", "sex", "proxy", "noise"):
        assert features[unused] == {"feature": unused, "importance": 0.0, "share": 0.0}
    assert [r["importance"] for r in result["features"]] == sorted((r["importance"] for r in result["features"]),
                                                                  reverse=True)
    columns = data["eval_columns"]
    p = np.clip(_sigmoid(2.0 * np.array(columns["x"], dtype=np.float32)), 1e-7, 1 - 1e-7)
    y = np.array(columns[LABEL]) == "yes"
    assert result["baseline_loss"] == pytest.approx(float(-np.mean(np.where(y, np.log(p), np.log(1 - p)))), abs=1e-5)
    assert (result["method"], result["loss"], result["examples"], result["split_examples"]) == (
        "permutation importance", "log loss", 610, 610)
    assert "shuffled" in result["note"]


def test_a_model_using_sex_shows_it(models, data):
    without = _compute(models["x_only"], data["eval"])["sensitive"]["sex"]
    using = _compute(models["with_sex"], data["eval"])["sensitive"]["sex"]
    assert without["share"] == 0.0 and without["importance"] == 0.0
    assert using["share"] > 0.05 and using["importance"] > 0.02
    assert using["rank"] == 2  # after x, before every feature the model ignores


def test_a_feature_used_the_wrong_way_round_gets_no_share(models, data):
    result = _compute(models["sex_backwards"], data["eval"])
    features = _by_feature(result["features"])
    assert features["sex"]["importance"] < -0.02  # shuffling sex makes this model less wrong
    assert features["sex"]["share"] == 0.0 and features["x"]["share"] == pytest.approx(1.0)
    assert result["features"][-1]["feature"] == "sex"


def test_examples_without_a_label_are_left_out(models, data):
    unlabelled = {name: values[:20] for name, values in data["eval_columns"].items()}
    unlabelled[LABEL] = [None] * 20
    records = data["eval"] + tm.write_examples(str(data["folder"] / "unlabelled.tfrecord"), unlabelled)
    result = _compute(models["x_only"], records)
    assert (result["examples"], result["split_examples"]) == (610, 630)
    assert result == {**_compute(models["x_only"], data["eval"]), "split_examples": 630}


def test_groups_of_the_sensitive_feature_get_their_own_figures(models, data):
    result = _compute(models["with_sex"], data["eval"], split_examples=5000)
    groups = result["slices"]["sex"]
    assert set(groups) == {"sex=female", "sex=male", "sex=other"}
    assert groups["sex=other"] == {"examples": 10, "insufficient": True}
    sizes = {g: data["eval_columns"]["sex"].count(g.split("=")[1]) for g in groups}
    for name in ("sex=female", "sex=male"):
        assert groups[name]["examples"] == sizes[name] and not groups[name]["insufficient"]
        features = _by_feature(groups[name]["features"])
        assert features["x"]["importance"] > 0.1
        assert features["unused"]["importance"] == 0.0
        assert sum(f["share"] for f in groups[name]["features"]) == pytest.approx(1.0, abs=1e-5)
    # shuffling sex moves every male example's score and every female one's: both groups lose
    assert _by_feature(groups["sex=female"]["features"])["sex"]["importance"] > 0.01
    assert result["split_examples"] == 5000 and result["examples"] == 610


def test_the_feature_built_as_a_proxy_of_sex_comes_first(models, data):
    result = _compute(models["with_sex"], data["eval"], data["train"])
    proxies = result["sensitive"]["sex"]["proxies"]
    assert len(proxies) == 3
    assert proxies[0]["feature"] == "proxy" and proxies[0]["measure"] == "Cramér's V"
    assert proxies[0]["association"] > 0.7
    assert proxies[1]["feature"] == "income" and proxies[1]["measure"] == "correlation ratio"
    assert 0.4 < proxies[1]["association"] < proxies[0]["association"]
    assert all(p["association"] < 0.1 for p in proxies[2:])
    shares = _by_feature(result["features"])
    assert all(p["share"] == shares[p["feature"]]["share"] for p in proxies)
    alone = _compute(models["with_sex"], data["eval"], None)["sensitive"]["sex"]
    assert alone["proxies"] == [] and "no train examples" in alone["proxy_note"]


def test_share_of_adds_the_proxies_when_asked(models, data):
    result = _compute(models["with_sex"], data["eval"], data["train"])
    entry = result["sensitive"]["sex"]
    assert attributions.share_of(result, "sex") == entry["share"]
    with_proxies = attributions.share_of(result, "sex", with_proxies=True)
    assert with_proxies == pytest.approx(entry["share"] + sum(p["share"] for p in entry["proxies"]), abs=1e-6)
    strong = attributions.share_of(result, "sex", with_proxies=True, min_association=0.7)
    assert strong == pytest.approx(entry["share"] + entry["proxies"][0]["share"], abs=1e-6)
    assert attributions.share_of(result, "x") == _by_feature(result["features"])["x"]["share"]


def test_the_same_seed_gives_the_same_figures(models, data):
    first = _compute(models["with_sex"], data["eval"], data["train"], seed=3, repeats=2, batch_size=128)
    again = _compute(models["with_sex"], data["eval"], data["train"], seed=3, repeats=2, batch_size=128)
    other = _compute(models["with_sex"], data["eval"], data["train"], seed=4, repeats=2, batch_size=128)
    assert first == again
    assert json.loads(json.dumps(first)) == first
    assert _by_feature(first["features"])["x"]["importance"] != _by_feature(other["features"])["x"]["importance"]
    assert first["repeats"] == 2 and first["seed"] == 3


def test_a_model_that_ignores_every_feature_gets_no_share(models, data):
    result = _compute(models["constant"], data["eval"], data["train"])
    assert all(row["importance"] == 0.0 and row["share"] == 0.0 for row in result["features"])
    page = attributions.html_section(result)
    assert "<svg" in page and "Feature attributions" in page
    nothing = _compute(models["constant"], [])
    assert (nothing["examples"], nothing["baseline_loss"], nothing["slices"]) == (0, None, {"sex": {}})
    assert "Feature attributions" in attributions.html_section(nothing)


def test_a_banded_numeric_sensitive_feature_is_grouped_by_its_bands(models, data):
    result = _compute(models["x_only"], data["eval"], data["train"], sensitive=["x"], bands={"x": [-1.0, 1.0]})
    x = np.array(data["eval_columns"]["x"], dtype=np.float32)
    groups = result["slices"]["x"]
    assert {name: g["examples"] for name, g in groups.items()} == {
        "x=<-1": int((x < -1).sum()), "x=[-1,1)": int(((x >= -1) & (x < 1)).sum()), "x=>=1": int((x >= 1).sum())}
    # the middle band's examples sit near x's mean: a value shuffled in moves them less than the others
    overall = _by_feature(result["features"])["x"]["importance"]
    assert _by_feature(groups["x=[-1,1)"]["features"])["x"]["importance"] < overall
    assert all(p["measure"] in ("Cramér's V", "correlation ratio") for p in result["sensitive"]["x"]["proxies"])


def test_absent_values_stay_absent_when_shuffled(tmp_path):
    """A record lacking a feature is rebuilt without it, and a value shuffled onto a record that
    lacked it is there afterwards."""
    import tensorflow as tf

    records = tm.write_examples(str(tmp_path / "absent.tfrecord"),
                                {"x": [1.0, None, 3.0], "sex": ["f", "m", None], LABEL: ["yes", "no", None]})
    rest, entries = attributions._entries(records, ["x", "sex"], tf.train.Example)
    rebuilt = [attributions._frame(rest[i] + entries[0][i] + entries[1][i]) for i in range(3)]
    assert [tf.train.Example.FromString(r) for r in rebuilt] == [tf.train.Example.FromString(r) for r in records]
    swapped = tf.train.Example.FromString(attributions._frame(rest[0] + entries[0][1] + entries[1][0]))
    assert "x" not in swapped.features.feature and swapped.features.feature["sex"].bytes_list.value == [b"f"]
    filled = tf.train.Example.FromString(attributions._frame(rest[1] + entries[0][2] + entries[1][1]))
    assert filled.features.feature["x"].float_list.value == [3.0]
    assert filled.features.feature[LABEL].bytes_list.value == [b"no"]


def test_multiclass_leaves_out_unseen_classes(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(5)
    x, group = rng.normal(size=400), np.array(["a", "b"])[rng.integers(0, 2, 400)]
    probabilities = tm.multiclass_scores(x, group)
    labels = [tm.CLASSES[rng.choice(3, p=p)] for p in probabilities]
    labels[:7] = ["unheard-of"] * 7
    records = tm.write_examples(str(tmp_path / "eval.tfrecord"),
                                {"x": x.tolist(), "group": group.tolist(), tm.MULTICLASS_LABEL: labels})
    model = tf.saved_model.load(tm.save_multiclass_model(str(tmp_path / "model")))
    result = attributions.compute(model, records, None, label=tm.MULTICLASS_LABEL, task=tasks.MULTICLASS,
                                  numeric=["x"], categorical=["group"], sensitive=["group"])
    assert result["examples"] == 393 and result["split_examples"] == 400 and result["loss"] == "log loss"
    ids = np.array([tm.CLASSES.index(c) for c in labels[7:]])
    expected = -np.mean(np.log(probabilities[7:][np.arange(393), ids]))
    assert result["baseline_loss"] == pytest.approx(expected, abs=1e-4)
    features = _by_feature(result["features"])
    assert features["x"]["share"] == pytest.approx(1.0) and features["x"]["importance"] > 0.3
    assert features["group"]["importance"] == 0.0
    assert set(result["slices"]["group"]) == {"group=a", "group=b"}


def test_regression_importance_is_the_squared_error_shuffling_adds(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(6)
    x, group = rng.normal(size=500), np.array(["a", "b"])[rng.integers(0, 2, 500)]
    rate = tm.regression_predictions(x, group) + rng.normal(scale=0.5, size=500)
    records = tm.write_examples(str(tmp_path / "eval.tfrecord"),
                                {"x": x.tolist(), "group": group.tolist(), tm.REGRESSION_LABEL: rate.tolist()})
    model = tf.saved_model.load(tm.save_regression_model(str(tmp_path / "model")))
    result = attributions.compute(model, records, None, label=tm.REGRESSION_LABEL, task=tasks.REGRESSION,
                                  numeric=["x"], categorical=["group"], sensitive=["group"], repeats=3)
    assert result["loss"] == "squared error"
    assert result["baseline_loss"] == pytest.approx(0.25, rel=0.2)
    # shuffling x adds E[(3x - 3x')^2] = 18 var(x) to the squared error
    x_row = _by_feature(result["features"])["x"]
    assert x_row["importance"] == pytest.approx(18 * x.var(), rel=0.15) and x_row["share"] == pytest.approx(1.0)
    assert _by_feature(result["features"])["group"]["importance"] == 0.0


def test_associations_measure_what_they_say():
    # 2x2 table [[30, 10], [10, 30]]: chi2 = 20 on 80 examples, V = sqrt(20 / 80)
    first = np.array(["a"] * 40 + ["b"] * 40, dtype=object)
    second = np.array(["u"] * 30 + ["v"] * 10 + ["u"] * 10 + ["v"] * 30, dtype=object)
    assert attributions.cramers_v(first, second) == pytest.approx(0.5)
    # group means 1 and 2 around 1.5: between 1, total 5, eta = sqrt(1 / 5)
    groups = np.array(["a", "a", "b", "b"], dtype=object)
    assert attributions.correlation_ratio(groups, np.array([0.0, 2.0, 1.0, 3.0])) == pytest.approx(0.2 ** 0.5)
    same = np.array(["a", "b", "a", "b"], dtype=object)
    assert attributions.cramers_v(same, same) == pytest.approx(1.0)
    assert attributions.cramers_v(same, np.array(["u", "u", "v", "v"], dtype=object)) == pytest.approx(0.0)
    assert attributions.correlation_ratio(same, np.array([1.0, 5.0, 1.0, 5.0])) == pytest.approx(1.0)
    assert attributions.correlation_ratio(same, np.array([1.0, 1.0, 5.0, 5.0])) == pytest.approx(0.0)
    numbers = np.array([1.0, np.nan, 2.0, 3.0])
    categories = np.array(["a", "a", None, "b"], dtype=object)
    value, measure = attributions.association_of(categories, numbers)  # only rows 0 and 3 have both
    assert measure == "correlation ratio" and value == pytest.approx(1.0)


def test_the_report_section_escapes_names_and_draws_bars(models, data):
    records = tm.write_examples(str(data["folder"] / "odd.tfrecord"),
                                {**{k: v[:200] for k, v in data["eval_columns"].items()},
                                 "<b>": (["<i>", "&"] * 100)})
    result = attributions.compute(models["with_sex"], records, None, label=LABEL, task=tasks.BINARY,
                                  numeric=["x"], categorical=["sex", "<b>"], sensitive=["sex", "<b>"])
    page = attributions.html_section(result)
    assert "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;" in page and "&lt;b&gt;=&lt;i&gt;" in page and "&lt;b&gt;=&amp;" in page
    assert page.count("<svg") == 1 + 2 + 2  # overall, the groups of sex and of <b>
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("#c2185b") == 2 * 5 + 1  # both sensitive features' bars in each chart, and the legend
    empty = attributions.html_section({**result, "features": [], "slices": {}, "sensitive": {}})
    assert "Feature attributions" in empty and "<svg" not in empty
