"""The model card of a pushed version: what a reviewer reads in it (printed by headless Chromium to PDF and
read back as text), its JSON against the published schema, what validation says of a wrong card, and
that nothing half-written or unescaped comes out."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess

import jsonschema
import pytest

from components.pusher import model_card
from components.pusher.model_card import (CARD_HTML, CARD_JSON, PEOPLE_FIELDS, SCHEMA_PATH, ModelCardError, build_card,
                                          render_html, validate, write_card)
from pipeline.errors import SluicewayError

RUN = "20261202-183000-ab12"
VERSION = 1796224576
SHA = {"data/span-1/credit.csv": "a1" * 32, "data/span-2/credit.csv": "b2" * 32}
FEATURES = {"label": "approved", "task": "binary", "positive": "yes", "numeric": ["age", "income", "credit_score"],
            "categorical": ["employment_type", "sex", "race"], "sensitive": ["sex", "race"]}


def _check(gate, slice_, metric, value, bound, status, judged, baseline=None, detail="", decided_by="TFMA"):
    return {"gate": gate, "slice": slice_, "metric": metric, "value": value, "bound": bound, "baseline": baseline,
            "status": status, "detail": detail, "decided_by": decided_by, "judged": judged}


FAIRNESS_FAIL = _check("gates[2] fairness positive_rate across sex: min_ratio 0.8", "sex=female vs sex=male",
                       "positive_rate@0.5 ratio", 0.7314, ">= 0.8", "fail", "value",
                       detail="sex=female: 0.4016 vs sex=male: 0.5491", decided_by="sluiceway")
CHECKS = [
    _check("gates[0] auc min 0.75 overall", "overall", "auc", 0.8241, ">= 0.75", "pass", "lower bound"),
    _check("gates[1] auc min 0.65 per sex", "sex=female", "auc", 0.8012, ">= 0.65", "pass", "lower bound"),
    _check("gates[1] auc min 0.65 per sex", "sex=male", "auc", 0.8390, ">= 0.65", "pass", "lower bound"),
    FAIRNESS_FAIL,
    _check("gates[3] fairness false_positive_rate across race: max_gap 0.25", "race=group_a vs race=group_b",
           "false_positive_rate@0.5 gap", 0.0612, "<= 0.25", "pass", "significant gap"),
    _check("gates[4] no_regression auc: max_drop 0.01", "overall", "auc", 0.8241, "change >= -0.01", "pass", "value",
           baseline=0.8190),
]


def _row(slice_, size, auc, interval, positive_rate, insufficient=False, wide=()):
    features = [part.split("=")[0] for part in slice_.split(", ")] if slice_ != "overall" else []
    metrics = {"auc": auc, "accuracy": auc - 0.08, "precision": 0.71, "recall": 0.66, "f1": 0.684,
               "calibration": 1.02, "example_count": size, "positive_rate@0.5": positive_rate,
               "false_positive_rate@0.5": 0.14}
    return {"slice": slice_, "features": features, "size": size, "insufficient": insufficient, "metrics": metrics,
            "intervals": {"auc": interval, "accuracy": [auc - 0.1, auc - 0.06],
                          "positive_rate@0.5": [positive_rate - 0.02, positive_rate + 0.02]},
            "wide": list(wide)}


def evaluation() -> dict:
    """The Evaluator's metrics.json of a binary model with intervals, a baseline and one tiny slice."""
    rows = [_row("overall", 2978.0, 0.8241, [0.8090, 0.8392], 0.4751),
            _row("race=group_a", 1530.0, 0.8301, [0.8088, 0.8514], 0.4802),
            _row("race=group_b", 1436.0, 0.8178, [0.7955, 0.8401], 0.4697),
            _row("sex=female", 1460.0, 0.8012, [0.7801, 0.8223], 0.4016),
            _row("sex=male", 1518.0, 0.8390, [0.8190, 0.8590], 0.5491),
            _row("race=group_c, sex=female", 12.0, 0.6667, [0.3120, 1.0], 0.25, insufficient=True,
                 wide=["auc", "positive_rate@0.5"])]
    baseline = [{**r, "metrics": {**r["metrics"], "auc": r["metrics"]["auc"] - 0.005}} for r in rows[:5]]
    return {"split": "eval", "task": "binary", "decision_thresholds": [0.5], "min_slice_size": 30,
            "baseline_model": "serving/credit/1764650000", "baseline_problem": None, "slices": rows,
            "baseline_slices": baseline,
            "intervals": {"method": "closed_form", "level": 0.95,
                          "methods": {"auc": "hanley-mcneil", "accuracy": "wilson", "positive_rate@0.5": "wilson"}}}


def manifest() -> dict:
    """The push manifest as the Pusher writes it (and the model_type the Trainer recorded)."""
    spans = [{"number": n, "source": f"data/span-{n}/credit.csv", "files": [f"data/span-{n}/credit.csv"],
              "rows": 10000, "sha256": {f"data/span-{n}/credit.csv": SHA[f"data/span-{n}/credit.csv"]}}
             for n in (1, 2)]
    return {"version": VERSION, "pushed_at": "2026-12-02T18:40:11Z", "source_model": f"/runs/{RUN}/Trainer/model",
            "run": RUN, "metrics": {"auc": 0.8241, "accuracy": 0.7441}, "gates": copy.deepcopy(CHECKS),
            "hyperparameters": {"hidden_units": [64, 32], "embedding_dim": 8, "dropout": 0.1,
                                "learning_rate": 0.001, "batch_size": 128},
            "model_fingerprint": "f0" * 32, "model_sha256": "c3" * 32, "model_files": {"saved_model.pb": 123456},
            "model_files_sha256": "d4" * 32, "config_sha256": "e5" * 32, "data_sha256": SHA, "spans": spans,
            "code_version": "9a" * 32, "reference": {"metrics.json": "11" * 32}, "model_type": "wide_and_deep",
            "serving_check": {"checks": [{"check": "loads in a clean process", "status": "pass"},
                                         {"check": "scores match the Evaluator's", "status": "pass"}],
                              "load_seconds": 3.1, "latency": {"1": {"p50_ms": 1.2, "p99_ms": 2.4},
                                                               "100": {"p50_ms": 9.0, "p99_ms": 14.0}}}}


def attributions() -> dict:
    return {"method": "permutation importance", "loss": "log loss", "examples": 2978, "repeats": 1, "seed": 0,
            "baseline_loss": 0.45, "note": "each feature's column shuffled once; the loss's rise is its importance",
            "features": [{"feature": "income", "importance": 0.05, "share": 0.17},
                         {"feature": "credit_score", "importance": 0.12, "share": 0.4},
                         {"feature": "age", "importance": 0.03, "share": 0.1},
                         {"feature": "sex", "importance": 0.001, "share": 0.01}],
            "slices": {"sex": {"sex=female": {"examples": 1460, "insufficient": False,
                                              "features": [{"feature": "credit_score", "importance": 0.1,
                                                            "share": 0.38}]}}},
            "sensitive": {"sex": {"share": 0.01, "rank": 9, "importance": 0.001,
                                  "proxies": [{"feature": "income", "association": 0.31,
                                               "measure": "correlation ratio", "share": 0.05}]},
                          "race": {"share": 0.0, "rank": 10, "importance": 0.0, "proxies": []}}}


PEOPLE = {
    "overview": "Scores credit applications: the probability that an application is approved.",
    "owners": [{"name": "Credit Risk ML", "contact": "credit-ml@example.com"}],
    "intended_uses": ["ranking applications for a human underwriter's review"],
    "intended_users": ["underwriters of the consumer credit team"],
    "out_of_scope_uses": ["automatic rejection without review", "applicants outside the training region"],
    "limitations": ["trained on two quarters of applications only"],
    "ethical_considerations": [{"name": "historical approvals encode past bias",
                                "mitigation": "fairness gates on sex and race; quarterly review"}],
}
APPROVAL = {"by": "Dana Reviewer", "at": "2026-12-02T18:35:00Z", "run": RUN,
            "reason": "the gap comes from a policy change; remediation tracked as FAIR-12",
            "failed_checks": [FAIRNESS_FAIL]}
SCHEMA_FEATURES = [{"name": name, "type": kind} for name, kind in
                   [("age", "INT"), ("income", "FLOAT"), ("credit_score", "INT"), ("employment_type", "BYTES"),
                    ("sex", "BYTES"), ("race", "BYTES"), ("approved", "BYTES")]]
STATISTICS = [{"split": "train", "rows": 14003,
               "features": [{"name": "income", "type": "numeric", "missing": 0.0, "mean": 52110.5, "std": 20100.2,
                             "min": 8000.0, "median": 50010.0, "max": 240000.0},
                            {"name": "sex", "type": "categorical", "missing": 0.0, "unique": 2,
                             "top": [{"value": "male", "count": 7100}, {"value": "female", "count": 6903}]}]},
              {"split": "eval", "rows": 2978, "features": []}]


def card(**changes) -> dict:
    arguments = dict(manifest=manifest(), evaluation=evaluation(), attributions=attributions(),
                     people=copy.deepcopy(PEOPLE), pipeline_name="credit", features=copy.deepcopy(FEATURES),
                     schema_features=SCHEMA_FEATURES, statistics=STATISTICS, approval=copy.deepcopy(APPROVAL))
    arguments.update(changes)
    return build_card(**arguments)


@pytest.fixture
def as_read(tmp_path):
    """Renders a card, prints it to PDF in headless Chromium and returns the printed text, a line per
    printed line with its whitespace collapsed (a table row on one line)."""
    chromium, pdftotext = shutil.which("chromium"), shutil.which("pdftotext")
    if chromium is None or pdftotext is None:
        pytest.fail("this test needs Debian's chromium and poppler-utils: run `make browser`")

    def read(built: dict) -> list[str]:
        page, pdf = tmp_path / CARD_HTML, tmp_path / "model_card.pdf"
        page.write_text(render_html(built), encoding="utf-8")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-quic", "--disable-background-networking", "--disable-component-update",
                 "--no-pdf-header-footer", f"--user-data-dir={tmp_path / 'chromium'}"]
        subprocess.run([chromium, *flags, f"--print-to-pdf={pdf}", page.as_uri()], check=True,
                       capture_output=True, timeout=120)
        text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True,
                              text=True).stdout
        return [" ".join(line.split()) for line in text.splitlines() if line.strip()]

    return read


def _section(lines: list[str], heading: str, following: str) -> str:
    """The printed text from the line ``heading`` to the line ``following``."""
    start = lines.index(heading)
    return " ".join(lines[start:lines.index(following, start + 1)])


def _line(lines: list[str], first: str, after: str) -> str:
    start = lines.index(after)
    return next(line for line in lines[start:] if line.startswith(first))


@pytest.mark.browser
def test_a_reviewer_reads_every_section_with_the_version_the_figures_and_the_override(as_read):
    lines = as_read(card(people={key: value for key, value in PEOPLE.items() if key != "out_of_scope_uses"}))
    text = " ".join(lines)
    assert lines[0] == "Model card: credit"
    assert lines[1].startswith(f"Version {VERSION}, pushed 2026-12-02T18:40:11Z by run {RUN}.")
    override = _section(lines, "Shipped by reviewer override", "Model details")
    assert "approved by Dana Reviewer" in override and "approved at 2026-12-02T18:35:00Z" in override
    assert "reason the gap comes from a policy change; remediation tracked as FAIR-12" in override
    assert "0.7314 >= 0.8 - value fail sluiceway" in _line(lines, "gates[2] fairness", "The failed checks approved")
    assert "sex=female: 0.4016 vs sex=male: 0.5491" in override  # the check's detail

    details = _section(lines, "Model details", "Intended use")
    assert f"version {VERSION}" in details and "Credit Risk ML (credit-ml@example.com)" in details
    assert "replaced version 1764650000 (serving/credit/1764650000)" in details
    assert "family / architecture neural network: wide and deep (tf_keras)" in text
    assert "Not provided: add model_card.references to the pipeline YAML" in details
    assert _line(lines, "2 data/span-2/credit.csv", "Lineage").endswith("b2" * 32)  # the span, its file and sha256

    intended = _section(lines, "Intended use", "Factors")
    assert "ranking applications for a human underwriter's review" in intended
    assert "underwriters of the consumer credit team" in intended
    assert "Not provided: add model_card.out_of_scope_uses to the pipeline YAML" in intended
    factors = _section(lines, "Factors", "Metrics")
    assert "Sensitive features: sex, race." in factors and "Sliced by: race; sex; race x sex." in factors
    assert "Intervals: closed_form, at the 95% level." in _section(lines, "Metrics", "Training and evaluation data")
    assert _line(lines, "auc ", "Metrics") == "auc area under the ROC curve higher is better - hanley-mcneil"
    assert _line(lines, "accuracy ", "Metrics").endswith("higher is better 0.5000 wilson")

    analyses = _section(lines, "Quantitative analyses", "Ethical considerations")
    female = lines.index(_line(lines, "sex=female 1,460", "Per slice"))
    assert lines[female].startswith("sex=female 1,460 0.8012 0.7212")  # auc, then accuracy
    assert lines[female + 1].startswith("[0.7801, 0.8223] [0.7012, 0.7412]")  # their intervals, printed under them
    tiny = lines.index(_line(lines, "race=group_c,", "Per slice"))
    assert lines[tiny].startswith("race=group_c, 12 insufficient data 0.6667")
    assert lines[tiny + 2] == "interval too wide interval too wide"  # auc's and positive_rate's
    assert _line(lines, "overall auc", "Candidate and the serving model") == "overall auc 0.8241 0.8191 +0.0050"
    assert _line(lines, "gates[0]", "Gate checks") == ("gates[0] auc min 0.75 overall overall auc 0.8241 >= 0.75 - "
                                                       "lower bound pass TFMA")
    assert "significant gap pass TFMA" in _line(lines, "gates[3]", "Gate checks")
    assert "change >= -0.01 0.8190 value pass TFMA" in _line(lines, "gates[4]", "Gate checks")
    assert _line(lines, "sex ", "feature importance share") == "sex 0.0010 0.0100"
    assert _line(lines, "sex ", "sensitive feature share rank proxies (associated features)") == \
        "sex 0.0100 9 income: correlation ratio 0.3100, share 0.0500"
    assert "credit_score 40.0%" in analyses  # its bar's label

    ethical = _section(lines, "Ethical considerations", "Caveats and recommendations")
    assert ("historical approvals encode past bias fairness gates on sex and race; quarterly review the owners"
            in ethical)
    assert "shipped by reviewer override (Dana Reviewer)" in ethical
    assert "the model's use of sex 1.0% of the permutation importance (rank 9)" in ethical
    assert "(correlation ratio 0.3100)" in ethical  # income, a proxy of sex
    assert ("gates[2] fairness positive_rate across sex: min_ratio 0.8 1 1 0 failed, shipped by reviewer override"
            in ethical)  # the fairness gates' table
    caveats = _section(lines, "Caveats and recommendations", "Not provided")
    assert "stated trained on two quarters of applications only - the owners" in caveats
    assert "insufficient data slice race=group_c, sex=female has 12 examples, fewer than min_slice_size 30" in caveats
    assert "interval too wide slice race=group_c, sex=female: the intervals of auc (0.6667 [0.3120, 1.0000])" in caveats
    assert "failed check approved gates[2] fairness positive_rate across sex: min_ratio 0.8 failed on" in caveats
    assert text.endswith("Nobody filled these fields of the pipeline YAML's model_card section: "
                         "model_card.out_of_scope_uses, model_card.references, model_card.licenses, "
                         "model_card.citations.")


@pytest.mark.browser
def test_a_card_nobody_wrote_says_what_to_add_in_each_section_and_has_no_override_box(as_read):
    lines = as_read(card(people={}, approval=None, attributions=None))
    text = " ".join(lines)
    assert "Shipped by reviewer override" not in text
    for field in PEOPLE_FIELDS:
        assert f"Not provided: add model_card.{field} to the pipeline YAML" in text
    assert "Not computed for this version: no feature attributions were recorded." in text
    # without an approval the failed fairness check is a caveat of its own, and the page says so
    assert "and no approval is recorded" in _section(lines, "Caveats and recommendations", "Not provided")


def test_the_card_validates_against_the_published_schema():
    built = card()
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        published = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(published)
    jsonschema.Draft202012Validator(published).validate(json.loads(json.dumps(built)))
    validate(built)
    assert built["$schema"] == published["$id"]
    assert [e["field"] for e in built["empty_sections"]] == ["references", "licenses", "citations"]


def test_the_published_schema_is_the_one_the_code_declares():
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == model_card.render_schema(), (
        "schemas/model_card.schema.json is out of date with components/pusher/model_card.py; regenerate it with "
        "`.venv/bin/python -m components.pusher.model_card > schemas/model_card.schema.json`")


def test_what_the_run_knows_goes_into_the_json():
    built = card()
    details = built["model_details"]
    assert details["version"] == {"number": VERSION, "pushed_at": "2026-12-02T18:40:11Z"}
    assert details["lineage"]["spans"][1]["files"] == [{"path": "data/span-2/credit.csv",
                                                        "sha256": SHA["data/span-2/credit.csv"]}]
    assert details["lineage"]["replaced"] == {"version": 1764650000, "uri": "serving/credit/1764650000"}
    assert details["lineage"]["serving_check"] == {"checks": 2, "failed": 0, "load_seconds": 3.1, "p99_ms": 2.4}
    assert built["model_parameters"]["family"].startswith("neural network: wide and deep")
    female = next(s for s in built["quantitative_analyses"]["slices"] if s["slice"] == "sex=female")
    auc = next(m for m in female["metrics"] if m["key"] == "auc")
    assert auc == {"key": "auc", "value": 0.8012, "interval": [0.7801, 0.8223], "wide": False,
                   "baseline": pytest.approx(0.7962)}
    reported = {m["key"]: m for m in built["metrics"]["reported"]}
    assert reported["accuracy"]["decision_threshold"] == 0.5 and reported["auc"]["decision_threshold"] is None
    assert reported["positive_rate@0.5"]["interval_method"] == "wilson"
    assert built["training_data"]["rows"] == 14003 and built["evaluation_data"]["rows"] == 2978
    sex = {"name": "sex", "type": "BYTES", "role": "categorical feature, sensitive"}
    assert sex in built["training_data"]["features"]
    fairness = {g["gate"]: g["outcome"] for g in built["considerations"]["fairness_gates"]}
    assert fairness == {FAIRNESS_FAIL["gate"]: "failed, shipped by reviewer override",
                        "gates[3] fairness false_positive_rate across race: max_gap 0.25": "pass"}
    kinds = [c["kind"] for c in built["considerations"]["limitations"]]
    assert kinds == ["stated", "insufficient data", "interval too wide", "failed check approved"]
    assert [a["feature"] for a in built["quantitative_analyses"]["attributions"]["features"]][:2] == \
        ["credit_score", "income"]


def test_a_manifest_and_evaluation_missing_everything_still_make_a_valid_card():
    built = build_card(manifest={}, evaluation={}, attributions=None, people={}, pipeline_name="bare",
                       features={"label": "y", "task": "regression"})
    validate(built)
    page = render_html(built)
    assert page.count("not recorded") >= 8 and "No gate was declared" in page
    assert built["model_details"]["lineage"]["replaced"] is None and built["training_data"]["rows"] is None


def test_a_wrong_type_fails_validation_naming_its_path():
    built = card()
    built["model_details"]["owners"] = "Credit Risk ML"
    built["quantitative_analyses"]["slices"][3]["metrics"][0]["interval"] = [0.78]
    del built["metrics"]["split"]
    with pytest.raises(ModelCardError) as raised:
        validate(built)
    message = str(raised.value)
    assert isinstance(raised.value, SluicewayError) and "3 problems" in message
    assert "model_details.owners: expected an array, got a string (\"Credit Risk ML\")" in message
    assert "quantitative_analyses.slices[3].metrics[0].interval: expected at least 2 items, got 1" in message
    assert "metrics: missing 'split' (required)" in message


def test_a_figure_that_is_not_a_number_is_null_in_the_card_and_rejected_when_put_there_by_hand():
    rows = evaluation()
    rows["slices"][5]["metrics"]["auc"] = math.nan
    built = card(evaluation=rows)
    tiny = built["quantitative_analyses"]["slices"][5]
    assert tiny["metrics"][0] == {"key": "auc", "value": None, "interval": [0.312, 1.0], "wide": True,
                                  "baseline": None}
    validate(built)
    built["model_details"]["lineage"]["serving_check"]["p99_ms"] = math.inf
    with pytest.raises(ModelCardError, match=r"model_details\.lineage\.serving_check\.p99_ms: expected a finite"):
        validate(built)


def test_write_card_writes_both_files_and_nothing_when_the_card_is_wrong(tmp_path, monkeypatch):
    good = card()
    json_path, html_path = write_card(str(tmp_path), good)
    with open(json_path, encoding="utf-8") as handle:
        assert json.load(handle) == json.loads(json.dumps(good))
    with open(html_path, encoding="utf-8") as handle:
        assert html_path == str(tmp_path / CARD_HTML) and "<svg" in handle.read()

    bad = card()
    bad["model_details"]["owners"] = "Credit Risk ML"
    folder = tmp_path / "bad"
    folder.mkdir()
    with pytest.raises(ModelCardError):
        write_card(str(folder), bad)
    assert os.listdir(folder) == []

    real, written = model_card.atomic_write_text, []

    def disk_full_at_the_page(path, text, **kwargs):
        if str(path).endswith(CARD_HTML):
            raise OSError(28, "No space left on device")
        written.append(path)
        real(path, text, **kwargs)

    monkeypatch.setattr(model_card, "atomic_write_text", disk_full_at_the_page)
    folder = tmp_path / "full"
    folder.mkdir()
    with pytest.raises(OSError, match="No space left"):
        write_card(str(folder), good)
    assert written == [str(folder / CARD_JSON)] and os.listdir(folder) == []  # the JSON went with the page


def test_values_from_the_data_reach_the_page_escaped():
    rows = evaluation()
    rows["slices"][3]["slice"] = "sex=<script>alert(1)</script>"
    people = {**PEOPLE, "owners": [{"name": "<script>steal()</script>", "contact": "x@example.com"}]}
    page = render_html(card(evaluation=rows, people=people))
    assert "<script" not in page
    assert "sex=&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;script&gt;steal()&lt;/script&gt;" in page


def test_the_page_loads_nothing_and_runs_nothing():
    page = render_html(card())
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page


def test_tfdv_statistics_and_schema_are_summarized_for_the_card():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

    statistics = text_format.Parse("""
        datasets { num_examples: 200
          features { path { step: "income" } type: FLOAT
            num_stats { common_stats { num_non_missing: 190 num_missing: 10 } mean: 50.5 std_dev: 3.0 min: 1.0
                        median: 49.0 max: 99.0 } }
          features { path { step: "sex" } type: STRING
            string_stats { common_stats { num_non_missing: 200 } unique: 2
                           top_values { value: "male" frequency: 120 }
                           top_values { value: "female" frequency: 80 } } } }
        """, statistics_pb2.DatasetFeatureStatisticsList())
    schema = text_format.Parse('feature { name: "income" type: FLOAT } feature { name: "sex" type: BYTES }',
                               schema_pb2.Schema())
    summary = model_card.statistics_summary("train", statistics)
    assert summary == {"split": "train", "rows": 200, "features": [
        {"name": "income", "type": "numeric", "missing": 0.05, "mean": 50.5, "std": 3.0, "min": 1.0, "median": 49.0,
         "max": 99.0},
        {"name": "sex", "type": "categorical", "missing": 0.0, "unique": 2,
         "top": [{"value": "male", "count": 120.0}, {"value": "female", "count": 80.0}]}]}
    built = card(statistics=[summary], schema_features=model_card.schema_summary(schema))
    validate(built)
    assert built["training_data"]["features"] == [
        {"name": "income", "type": "FLOAT", "role": "numeric feature"},
        {"name": "sex", "type": "BYTES", "role": "categorical feature, sensitive"}]
    assert built["training_data"]["statistics"][1]["top"][0] == {"value": "male", "count": 120.0}
