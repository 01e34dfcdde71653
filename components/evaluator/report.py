"""The fairness report: one self-contained HTML page a reviewer opens in any browser.

No notebook, no network, no JavaScript: tables of every slice's metrics, one bar chart (inline
SVG) per sensitive feature with the gates' bounds drawn in, failed checks in red, candidate and
baseline side by side, slices with too few examples flagged.
"""

from __future__ import annotations

import html
from typing import Any

from components.evaluator import metrics as table
from components.evaluator.eval_config import decision_threshold
from pipeline.config import EvaluatorConfig, FairnessGate, FeaturesConfig

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{margin-bottom:0} .verdict{font-size:1.3em;padding:.5em 1em;border-radius:6px;display:inline-block;margin:1em 0}
.blessed{background:#e3f5e1;color:#1b5e20} .blocked{background:#fde2e1;color:#b71c1c}
table{border-collapse:collapse;margin:1em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td{white-space:nowrap} td.l{text-align:left;white-space:normal} tr.fail td{background:#fde2e1} tr.insufficient td{color:#888}
.tag{font-size:.8em;padding:1px 6px;border-radius:4px;background:#eee} .tag.fail{background:#f8b4b0}
.tag.pass{background:#c8e6c9} figure{margin:1em 0} figcaption{font-size:.9em;color:#555}
"""


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def render(rows: list[dict], baseline_rows: list[dict] | None, checks: list[dict], blessed: bool,
           evaluator: EvaluatorConfig, features: FeaturesConfig, title: str) -> str:
    """The report page.

    Args:
        rows: The candidate's per-slice rows (``metrics.json`` ``slices``).
        baseline_rows: The serving model's rows, or ``None`` without one.
        checks: Every gate check (``blessing.json`` ``checks``).
        blessed: The verdict.
        evaluator: The ``evaluator`` section (thresholds, min slice size, gates).
        features: The ``features`` section (which features are sensitive).
        title: Shown as the page's heading (pipeline and run).
    """
    threshold = evaluator.decision_thresholds[0]
    verdict = ("<div class='verdict blessed'>Blessed: every gate passed; the model may be pushed.</div>" if blessed
               else "<div class='verdict blocked'>Blocked: the model is not pushed. Failed checks are in red.</div>")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body>", f"<h1>Fairness report</h1><p>{html.escape(title)}</p>", verdict,
             "<h2>Gate checks</h2>", _checks_table(checks)]
    for feature in features.sensitive:
        parts.append(f"<h2>By {html.escape(feature)}</h2>")
        for gate in [g for g in evaluator.gates if isinstance(g, FairnessGate) and g.feature == feature] or [None]:
            rate = table.metric(gate.fairness if gate else "positive_rate")
            metric = rate.row_key(decision_threshold(evaluator, gate))
            parts.append(_chart(feature, metric, gate, rows, baseline_rows, evaluator))
    parts += ["<h2>Every slice</h2>", _slices_table(rows, baseline_rows, threshold, evaluator), "</body></html>"]
    return "\n".join(parts)


def _checks_table(checks: list[dict]) -> str:
    if not checks:
        return "<p>No gates are configured (evaluator.gates).</p>"
    head = "<tr><th>gate</th><th>slice</th><th>metric</th><th>value</th><th>bound</th><th>baseline</th><th>status</th></tr>"
    body = []
    for c in checks:
        status = c["status"]
        css = "fail" if status == "fail" else "insufficient" if status == "insufficient data" else ""
        tag = f"<span class='tag {'fail' if status == 'fail' else 'pass' if status == 'pass' else ''}'>{status}</span>"
        detail = f" {html.escape(c['detail'])}" if c.get("detail") else ""
        body.append(f"<tr class='{css}'><td class='l'>{html.escape(c['gate'])}</td><td class='l'>"
                    f"{html.escape(c['slice'])}</td><td class='l'>{html.escape(c['metric'])}</td>"
                    f"<td>{_number(c['value'])}</td><td>{html.escape(c['bound'] or '-')}</td>"
                    f"<td>{_number(c['baseline'])}</td><td class='l'>{tag}{detail}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _chart(feature: str, metric: str, gate, rows: list[dict], baseline_rows: list[dict] | None,
           evaluator: EvaluatorConfig) -> str:
    groups = [r for r in rows if r["features"] == [feature]]
    base = {r["slice"]: r["metrics"].get(metric) for r in baseline_rows or [] if r["features"] == [feature]}
    if not groups:
        return f"<p>No slices of {html.escape(feature)}.</p>"
    width, bar, gap, left = 640, 18, 14, 180
    height = 30 + len(groups) * (bar * (2 if base else 1) + gap)
    values = [r["metrics"].get(metric) or 0.0 for r in groups] + [v or 0.0 for v in base.values()]
    top = max(1e-9, max(values) * 1.15)
    scale = (width - left - 20) / top
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
           f"aria-label='{html.escape(metric)} by {html.escape(feature)}'>"]
    y = 20
    for row in groups:
        value = row["metrics"].get(metric)
        colour = "#bbb" if row["insufficient"] else "#1976d2"
        label = html.escape(row["slice"]) + (" (insufficient data)" if row["insufficient"] else "")
        svg.append(f"<text x='{left - 6}' y='{y + bar - 5}' text-anchor='end' font-size='12'>{label}</text>")
        svg.append(f"<rect x='{left}' y='{y}' width='{(value or 0) * scale:.1f}' height='{bar}' fill='{colour}'/>")
        svg.append(f"<text x='{left + (value or 0) * scale + 4:.1f}' y='{y + bar - 5}' font-size='11'>"
                   f"{_number(value)}</text>")
        y += bar
        if base:
            old = base.get(row["slice"])
            svg.append(f"<rect x='{left}' y='{y}' width='{(old or 0) * scale:.1f}' height='{bar - 4}' fill='#ffb74d'/>")
            svg.append(f"<text x='{left + (old or 0) * scale + 4:.1f}' y='{y + bar - 8}' font-size='11'>"
                       f"baseline {_number(old)}</text>")
            y += bar
        y += gap
    caption = f"{metric} by {feature}"
    if gate is not None:
        sufficient = [r["metrics"].get(metric) for r in groups if not r["insufficient"] and r["metrics"].get(metric)]
        if gate.reference is not None:
            anchor = next((r["metrics"].get(metric) for r in groups if r["slice"] == f"{feature}={gate.reference}"), None)
        else:
            anchor = max(sufficient) if sufficient else None
        if anchor is not None:
            bound = max(0.0, anchor - gate.max_gap if gate.max_gap is not None else anchor * gate.min_ratio)
            x = left + bound * scale
            svg.append(f"<line x1='{x:.1f}' y1='10' x2='{x:.1f}' y2='{height - 5}' stroke='#c62828' "
                       "stroke-dasharray='5,3' stroke-width='2'/>")
            kind = f"max_gap {gate.max_gap:g}" if gate.max_gap is not None else f"min_ratio {gate.min_ratio:g}"
            anchor_side = "end" if x > width / 2 else "start"  # keep the label inside the chart
            svg.append(f"<text x='{x + (-3 if anchor_side == 'end' else 3):.1f}' y='12' font-size='11' "
                       f"fill='#c62828' text-anchor='{anchor_side}'>gate bound ({kind}): {bound:.4f}</text>")
            caption += f"; dashed red line: the lowest value the gate ({kind}) allows"
    if base:
        caption += "; blue: candidate, orange: baseline (the model serving now)"
    svg.append("</svg>")
    return f"<figure>{''.join(svg)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _slices_table(rows: list[dict], baseline_rows: list[dict] | None, threshold: float,
                  evaluator: EvaluatorConfig) -> str:
    columns = table.report_columns(threshold)  # headers name the threshold: accuracy@0.5
    base = {r["slice"]: r for r in baseline_rows or []}
    head = "<tr><th>slice</th><th>examples</th>" + "".join(f"<th>{html.escape(header)}</th>"
                                                         for _, _, header in columns)
    head += "<th>baseline auc</th></tr>" if base else "</tr>"
    body = []
    for row in rows:
        css = "insufficient" if row["insufficient"] else ""
        flag = f" <span class='tag'>insufficient data (&lt; {evaluator.min_slice_size})</span>" if row["insufficient"] else ""
        cells = "".join(f"<td>{_number(row['metrics'].get(key))}</td>" for _, key, _ in columns)
        extra = f"<td>{_number(base.get(row['slice'], {}).get('metrics', {}).get('auc'))}</td>" if base else ""
        body.append(f"<tr class='{css}'><td class='l'>{html.escape(row['slice'])}{flag}</td>"
                    f"<td>{row['size']:,.0f}</td>{cells}{extra}</tr>")
    return f"<table>{head}{''.join(body)}</table>"
