"""The monitoring report as an operator sees it: rendered by headless Chromium to PDF and read back
as text; and, without a browser, its escaping and its edge cases (no drift rows, one run, NaN)."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest

from components.monitor.report import render

RUN = "20261202-081500-ab12"


def _drift_row(feature, kind, value, threshold, decision, p_value=None, holm=None, note=""):
    numeric = kind == "numeric"
    return {"feature": feature, "type": kind, "measure": "jensen shannon divergence" if numeric else "l infty",
            "value": value, "threshold": threshold, "test": "KS" if numeric else "chi-square",
            "p_value": p_value, "holm_p_value": holm, "decision": decision, "note": note}


def _history(count: int) -> list[dict]:
    verdicts = ["healthy"] * (count - 1) + ["drifted"]
    return [{"run": f"202611{10 + index:02d}-030000-r{index}" if index < count - 1 else RUN,
             "at": f"2026-11-{10 + index:02d}T03:00:00Z" if index < count - 1 else "2026-12-02T08:15:00Z",
             "version": 1764650000, "verdict": verdict, "retrain": verdict != "healthy", "rows": 20000,
             "max_distance": 0.03 + 0.01 * index if verdict == "healthy" else 0.31, "metric": "auc",
             "value": None if verdict != "healthy" else 0.84 - 0.002 * index}
            for index, verdict in enumerate(verdicts)]


def drifted_summary() -> dict:
    """The monitor's summary of a span whose incomes shifted: unlabelled, so only drift was judged."""
    return {
        "pipeline": "quickstart", "run": RUN, "at": "2026-12-02T08:15:00Z", "task": "binary",
        "data": {"source": "data/span-3/credit.csv", "span": 3, "rows": 20000, "labelled": False,
                 "files": ["data/span-3/credit.csv"], "sha256": {"data/span-3/credit.csv": "ab" * 32}},
        "serving": {"version": 1764650000, "uri": "serving/credit/1764650000", "pushed_at": "2026-12-02T08:00:00Z",
                    "run": "20261202-080000-cd34", "trained_on": {"spans": [1, 2], "rows": 20000}},
        "verdict": "drifted", "retrain": True, "retrain_on": ["data_drift", "degradation"],
        "reasons": [{"kind": "data_drift", "what": "income", "slice": "-", "value": 0.3127, "bound": "<= 0.1",
                     "detail": "jensen shannon divergence 0.3127 over 0.1 (KS p 3.2e-12)", "triggers_retrain": True}],
        "drift": [_drift_row("income", "numeric", 0.3127, 0.1, "drift", 2.1e-13, 3.2e-12),
                  _drift_row("age", "numeric", 0.0121, 0.1, "within threshold"),
                  _drift_row("credit_score", "numeric", 0.1042, 0.1, "sampling noise", 0.21, 0.63,
                             "over the threshold, not significant"),
                  _drift_row("employment_type", "categorical", 0.0433, 0.1, "within threshold"),
                  _drift_row("sex", "categorical", 0.0150, 0.1, "within threshold")],
        "anomalies": [{"feature": "employment_type", "anomaly": "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                       "description": "Examples contain values missing from the schema: gig (~2%)."}],
        "evaluation": None,
        "history": _history(2),
    }


def degraded_summary() -> dict:
    """A labelled span on which the serving model lost AUC and its fairness between the sexes."""
    summary = drifted_summary()
    summary["data"]["labelled"] = True
    summary.update(verdict="degraded", retrain_on=["data_drift", "degradation", "fairness"], reasons=[
        {"kind": "degradation", "what": "auc", "slice": "overall", "value": 0.7103, "bound": ">= 0.8188",
         "detail": "auc fell from 0.8388 to 0.7103", "triggers_retrain": True},
        {"kind": "fairness", "what": "gates[2] fairness positive_rate across sex: min_ratio 0.8", "slice": "sex",
         "value": 0.4681, "bound": "min/max >= 0.8", "detail": "sex=female 0.2200 vs sex=male 0.4700",
         "triggers_retrain": True}])
    summary["drift"] = [_drift_row("income", "numeric", 0.0210, 0.1, "within threshold"),
                        _drift_row("sex", "categorical", 0.0120, 0.1, "within threshold")]
    summary["anomalies"] = []
    summary["history"][-1].update(verdict="degraded", max_distance=0.021, value=0.7103)
    summary["evaluation"] = {
        "metric": "auc",
        "metrics": [{"slice": "overall", "size": 2978, "metric": "auc", "at_push": 0.8388, "now": 0.7103,
                     "change": -0.1285},
                    {"slice": "sex=female", "size": 1460, "metric": "auc", "at_push": 0.8301, "now": 0.6952,
                     "change": -0.1349},
                    {"slice": "overall", "size": 2978, "metric": "accuracy", "at_push": 0.79, "now": 0.71,
                     "change": -0.08}],
        "checks": [{"gate": "gates[0] auc >= 0.75", "slice": "overall", "metric": "auc", "value": 0.7103,
                    "bound": ">= 0.75", "baseline": 0.8388, "status": "fail", "detail": "", "decided_by": "TFMA"},
                   {"gate": "gates[1] accuracy >= 0.6", "slice": "overall", "metric": "accuracy", "value": 0.71,
                    "bound": ">= 0.6", "baseline": None, "status": "pass", "detail": "", "decided_by": "TFMA"}],
        "fairness": [{"gate": "gates[2] fairness positive_rate across sex: min_ratio 0.8", "feature": "sex",
                      "metric": "positive_rate", "bound": "min/max >= 0.8", "status": "fail",
                      "groups": {"female": {"at_push": 0.41, "now": 0.22}, "male": {"at_push": 0.45, "now": 0.47}}}],
    }
    return summary


@pytest.fixture
def as_read(tmp_path):
    """Renders a summary, prints it to PDF in headless Chromium and returns the page's text laid
    out as printed (a table row on one line), each line's whitespace collapsed."""
    chromium, pdftotext = shutil.which("chromium"), shutil.which("pdftotext")
    if chromium is None or pdftotext is None:
        pytest.fail("this test needs Debian's chromium and poppler-utils: run `make browser`")

    def read(summary: dict) -> list[str]:
        page, pdf = tmp_path / "monitor.html", tmp_path / "monitor.pdf"
        page.write_text(render(summary), encoding="utf-8")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-quic", "--disable-background-networking", "--disable-component-update",
                 "--no-pdf-header-footer", f"--user-data-dir={tmp_path / 'chromium'}"]
        subprocess.run([chromium, *flags, f"--print-to-pdf={pdf}", page.as_uri()], check=True,
                       capture_output=True, timeout=120)
        text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True,
                              text=True).stdout
        return [" ".join(line.split()) for line in text.splitlines() if line.strip()]

    return read


def _row(lines: list[str], first: str, after: str = "") -> str:
    """The first printed line starting with ``first`` below the line starting with ``after``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    return next(line for line in lines[start:] if line.startswith(first))


@pytest.mark.browser
def test_a_drifted_span_names_the_feature_with_its_distance_and_threshold(as_read):
    lines = as_read(drifted_summary())
    text = " ".join(lines)
    assert "Drifted: the data has moved away" in text
    assert "Retraining is due, triggered by data_drift (income)." in text
    assert _row(lines, "income", "numeric features") == "income 0.3127 (threshold 0.1000) · drift"  # its bar
    assert "0.3127 0.1000 KS 2.10e-13 3.20e-12 drift" in _row(lines, "income numeric")
    assert _row(lines, "credit_score", "numeric features").endswith("(threshold 0.1000) · sampling noise")
    assert "0.1042 0.1000 KS 0.2100 0.6300 sampling noise" in _row(lines, "credit_score numeric")
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in _row(lines, "employment_type", "Schema anomalies")
    assert "trained on spans 1, 2" in lines and "version 1764650000" in lines


@pytest.mark.browser
def test_a_degraded_model_shows_its_metric_drop_and_the_failed_fairness_check(as_read):
    lines = as_read(degraded_summary())
    text = " ".join(lines)
    assert "Degraded: the serving model does worse" in text and "Drifted:" not in text
    assert _row(lines, "overall", "Model on the new data") == "overall 2,978 auc 0.8388 0.7103 -0.1285"
    assert "at push 0.8388" in _row(lines, "at push", "auc by slice")  # the paired bars' labels
    assert "now 0.7103" in _row(lines, "overall", "auc by slice")
    assert _row(lines, "gates[0]", "Gates re-checked") == ("gates[0] auc >= 0.75 overall auc 0.7103 >= 0.75 0.8388 "
                                                         "fail TFMA -")
    fairness = text[text.index("Fairness at push and now"):text.index("History")]
    assert "positive_rate by sex, bound min/max >= 0.8 fail" in fairness
    assert _row(lines, "female", "Fairness at push") == "female 0.4100 0.2200 -0.1900"
    assert _row(lines, "male", "Fairness at push") == "male 0.4500 0.4700 +0.0200"


@pytest.mark.browser
def test_unlabelled_data_says_only_drift_was_judged(as_read):
    lines = as_read(drifted_summary())
    text = " ".join(lines)
    assert "The data had no labels, so only drift was judged" in text
    assert "Gates re-checked" not in text and "labelled no" in lines


@pytest.mark.browser
def test_five_monitor_runs_all_appear_in_the_history(as_read):
    summary = drifted_summary()
    summary["history"] = _history(5)
    lines = as_read(summary)
    for run in summary["history"]:
        row = _row(lines, run["run"], "History")
        assert f"{run['verdict']} {'yes' if run['retrain'] else 'no'} 20,000 {run['max_distance']:.4f} auc" in row
    assert _row(lines, RUN, "History").startswith(f"{RUN} (this run)")
    assert "0.3100 this run" in " ".join(lines[lines.index("largest feature distance"):])


def _strings_marked(value, mark, keys=False):
    """``value`` with ``mark`` put in front of every string in it, and of the keys of the
    dictionaries whose keys are data (file names, fairness groups)."""
    if isinstance(value, str):
        return mark + value
    if isinstance(value, dict):
        return {mark + k if keys else k: _strings_marked(v, mark, k in ("sha256", "groups"))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_strings_marked(v, mark) for v in value]
    return value


def test_every_value_on_the_page_is_escaped():
    summary = degraded_summary()
    summary["drift"].append(_drift_row("<script>", "numeric", 0.01, 0.1, "within threshold"))
    page = render(summary)
    assert "<script>" not in page and "&lt;script&gt;" in page
    marked = render(_strings_marked(degraded_summary(), "<i x='1'>"))
    assert "<i " not in marked and marked.count("&lt;i x=&#x27;1&#x27;&gt;") > 50


def test_a_first_run_without_drift_rows_or_figures_still_renders():
    summary = drifted_summary()
    summary.update(drift=[], reasons=[], anomalies=[], verdict="healthy", retrain=False)
    summary["history"] = _history(1)
    summary["history"][0].update(verdict="healthy", value=math.nan, max_distance=0.02)
    summary["serving"]["trained_on"]["spans"] = None
    page = render(summary)
    assert "No feature distances were recorded" in page and "No retraining is due." in page
    assert page.count("<circle") == 1  # one run: one point (its metric is NaN, so only the distance)
    assert "no spans recorded" in page


def test_many_long_named_features_and_missing_values_render_one_bar_each():
    summary = drifted_summary()
    summary["drift"] = [_drift_row(f"applicant_household_monthly_income_component_{i}", "numeric",
                                   None if i == 0 else math.nan if i == 1 else i / 100, 0.1,
                                   "drift" if i > 10 else "within threshold") for i in range(36)]
    page = render(summary)
    assert page.count("fill='#c62828'/>") == 25  # drifted bars in red
    assert page.count("(threshold 0.1000)") == 36
    assert "<td>-</td>" in page and "applicant_household_m\u2026" in page  # shortened in the chart only
