"""The fairness report as a reviewer sees it: rendered by headless Chromium, read back as text."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from components.evaluator.report import render
from pipeline.config import EvaluatorConfig, FeaturesConfig

pytestmark = pytest.mark.browser

FEATURES = FeaturesConfig(label="approved", positive="yes", numeric=["age"], categorical=["sex", "race"],
                          sensitive=["sex"])
EVALUATOR = EvaluatorConfig.model_validate({"min_slice_size": 30, "gates": [
    {"metric": "auc", "min": 0.7}, {"fairness": "positive_rate", "feature": "sex", "min_ratio": 0.8}]})


def _row(name, features, size, auc, positive_rate):
    return {"slice": name, "features": features, "size": size, "insufficient": size < 30,
            "metrics": {"auc": auc, "accuracy": 0.75, "positive_rate@0.5": positive_rate}}


ROWS = [_row("overall", [], 3000, 0.84, 0.36), _row("sex=female", ["sex"], 1450, 0.83, 0.1716),
        _row("sex=male", ["sex"], 1527, 0.82, 0.5475), _row("sex=other", ["sex"], 23, 0.5, 0.3)]
CHECKS = [
    {"gate": "gates[0] auc min 0.7 overall", "slice": "overall", "metric": "auc", "value": 0.84, "bound": ">= 0.7",
     "baseline": 0.83, "status": "pass", "detail": ""},
    {"gate": "gates[1] fairness positive_rate across sex: min_ratio 0.8", "slice": "sex=female vs sex=male",
     "metric": "positive_rate@0.5 ratio", "value": 0.3134, "bound": ">= 0.8", "baseline": None, "status": "fail",
     "detail": "sex=female: 0.1716 vs sex=male: 0.5475"},
]


def _visible_text(tmp_path, page: str) -> str:
    chromium, pdftotext = shutil.which("chromium"), shutil.which("pdftotext")
    if not (chromium and pdftotext):
        pytest.fail("this test needs Debian's chromium and poppler-utils: run `make browser`")
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                    html.as_uri()], check=True, capture_output=True, timeout=120)
    return subprocess.run([pdftotext, str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout


def test_the_rendered_report_shows_the_failing_gate_with_its_values(tmp_path):
    text = _visible_text(tmp_path, render(ROWS, [dict(r) for r in ROWS], CHECKS, False, EVALUATOR, FEATURES,
                                          "quickstart run 1"))
    assert "Blocked: the model is not pushed" in text
    # the failing check's row (a table row may wrap over several lines of text)
    failing = " ".join(text[text.index("gates[1] fairness"):text.index("By sex")].split())
    assert "fail" in failing and "0.3134" in failing and ">= 0.8" in failing and "sex=female vs" in failing
    flat = " ".join(text.split())
    assert "sex=female: 0.1716" in flat and "sex=male: 0.5475" in flat
    assert "gate bound (min_ratio 0.8): 0.4380" in flat  # the bound drawn into the chart
    assert "insufficient data (< 30)" in flat and "baseline" in flat


def test_a_blessed_model_reads_as_blessed(tmp_path):
    checks = [dict(CHECKS[0])]
    text = _visible_text(tmp_path, render(ROWS, None, checks, True, EVALUATOR, FEATURES, "quickstart run 2"))
    assert "Blessed: every gate passed" in text and "Blocked" not in text
