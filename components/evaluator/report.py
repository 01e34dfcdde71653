"""The fairness report: one self-contained HTML page a reviewer opens in any browser.

No notebook, no network, no JavaScript: tables of every slice's metrics, one bar chart (inline
SVG) per sensitive feature with the gates' bounds drawn in, failed checks in red, candidate and
baseline side by side, slices with too few examples flagged. Per task: a binary or multiclass
fairness gate's rate (multiclass: of its class, one-vs-rest), a regression gate's metric in the
label's units (the bars start at 0, negative values to the left); multiclass adds the per-class
table and the confusion matrix, regression the calibration buckets (mean prediction vs mean label).
"""

from __future__ import annotations

import html
import math
from typing import Any, Mapping, Optional

from components.evaluator import metrics as table
from components.evaluator.eval_config import decision_threshold
from pipeline.config import EvaluatorConfig, FairnessGate, FeaturesConfig

# What a sensitive feature's chart shows when no fairness gate is on it.
DEFAULT_CHART = {table.BINARY: "positive_rate", table.MULTICLASS: "accuracy", table.REGRESSION: "mae"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{margin-bottom:0} .verdict{font-size:1.3em;padding:.5em 1em;border-radius:6px;display:inline-block;margin:1em 0}
.blessed{background:#e3f5e1;color:#1b5e20} .blocked{background:#fde2e1;color:#b71c1c}
table{border-collapse:collapse;margin:1em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td{white-space:nowrap} td.l{text-align:left;white-space:normal} tr.fail td{background:#fde2e1} tr.insufficient td{color:#888}
.tag{font-size:.8em;padding:1px 6px;border-radius:4px;background:#eee} .tag.fail{background:#f8b4b0}
.tag.pass{background:#c8e6c9} .tag.wide{background:#ffe0b2} small{color:#555} figure{margin:1em 0} figcaption{font-size:.9em;color:#555}
"""


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


TOO_WIDE = "too wide to judge"


def figure(row: Mapping[str, Any], key: str) -> str:
    """A slice's value with its confidence interval, ``0.8123 [0.7901, 0.8334]``, marked when the
    interval is too wide to judge (``evaluator.intervals.max_width``)."""
    value = row["metrics"].get(key)
    if value is None:
        return "-"
    text = f"{value:.4f}"
    interval = (row.get("intervals") or {}).get(key)
    if interval:
        text += f" [{interval[0]:.4f}, {interval[1]:.4f}]"
    if key in (row.get("wide") or ()):
        text += f" ({TOO_WIDE})"
    return text


def attribution_lines(attributions: Mapping[str, Any], top: int = 10) -> list[str]:
    """The Markdown report's attributions: the top features overall, and each sensitive feature's
    share with its proxies."""
    from pipeline.table import markdown_table

    lines = ["## Feature attributions", "", f"{attributions.get('note', '')} Method: {attributions.get('method')}, "
             f"loss: {attributions.get('loss')}, {attributions.get('examples', 0):,} examples.", "",
             markdown_table(["feature", "importance", "share"],
                            [[f["feature"], f"{f['importance']:.4f}", f"{f['share']:.1%}"]
                             for f in attributions.get("features", [])[:top]]), ""]
    for feature, found in (attributions.get("sensitive") or {}).items():
        proxies = ", ".join(f"{p['feature']} ({p['measure']} {p['association']:.2f}, share {p['share']:.1%})"
                            for p in found.get("proxies", [])) or "none found"
        lines += [f"Sensitive feature **{feature}**: share {found.get('share', 0):.1%} (rank {found.get('rank')}); "
                  f"strongest proxies in train: {proxies}.", ""]
    return lines


def intervals_note(evaluator: EvaluatorConfig, task: str, classes=()) -> str:
    """What the brackets are: the level, each method and the metrics it gave, the width flagged."""
    from components.evaluator import intervals

    settings = evaluator.intervals
    if settings.method == "off":
        return "No confidence intervals (evaluator.intervals.method: off)."
    if settings.method == "closed_form":
        by_method: dict[str, list[str]] = {}
        for key, method in intervals.closed_form_methods(task, evaluator.decision_thresholds, classes).items():
            name = key.split("@", 1)[0].split("[", 1)[0]
            if name not in by_method.setdefault(method, []):
                by_method[method].append(name)
        how = "; ".join(f"{method}: {', '.join(names)}" for method, names in by_method.items())
    else:
        how = f"{intervals.TFMA_METHODS[settings.method]} (TFMA's resampling) for every metric"
    return (f"In brackets: the {settings.level:.0%} confidence interval ({how}). Marked '{TOO_WIDE}': wider than "
            f"{settings.max_width:g} (a metric between 0 and 1) or {settings.max_width:g} x the value (others), "
            "evaluator.intervals.max_width.")


def render(rows: list[dict], baseline_rows: list[dict] | None, checks: list[dict], blessed: bool,
           evaluator: EvaluatorConfig, features: FeaturesConfig, title: str,
           plots: Optional[Mapping[str, Any]] = None, attributions: Optional[Mapping[str, Any]] = None) -> str:
    """The report page.

    Args:
        rows: The candidate's per-slice rows (``metrics.json`` ``slices``).
        baseline_rows: The serving model's rows, or ``None`` without one.
        checks: Every gate check (``blessing.json`` ``checks``).
        blessed: The verdict.
        evaluator: The ``evaluator`` section (thresholds, min slice size, gates).
        features: The ``features`` section (which features are sensitive).
        title: Shown as the page's heading (pipeline and run).
        plots: The overall slice's plots (``metrics.json``): multiclass ``classes`` and
            ``confusion_matrix``, regression ``calibration_plot``.
        attributions: The feature attributions (``attributions.json``), or ``None``.
    """
    task = features.task
    threshold = evaluator.decision_thresholds[0]
    plots = plots or {}
    verdict = ("<div class='verdict blessed'>Blessed: every gate passed; the model may be pushed.</div>" if blessed
               else "<div class='verdict blocked'>Blocked: the model is not pushed. Failed checks are in red.</div>")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body>", f"<h1>Fairness report</h1><p>{html.escape(title)}</p>", verdict,
             "<h2>Gate checks</h2>", _checks_table(checks)]
    for feature in features.sensitive:
        parts.append(f"<h2>By {html.escape(feature)}</h2>")
        for gate in [g for g in evaluator.gates if isinstance(g, FairnessGate) and g.feature == feature] or [None]:
            metric = table.metric(gate.fairness if gate else DEFAULT_CHART[task], task)
            key = metric.row_key(decision_threshold(evaluator, gate), gate.class_name if gate else None)
            parts.append(_chart(feature, key, gate, rows, baseline_rows, evaluator))
    parts += ["<h2>Every slice</h2>", f"<p>{html.escape(intervals_note(evaluator, task, plots.get('classes', ())))}</p>",
              _slices_table(rows, baseline_rows, threshold, evaluator, task)]
    if task == table.MULTICLASS and rows and plots.get("classes"):
        parts += ["<h2>Per class (overall, one-vs-rest)</h2>", _html_table(*class_rows(rows[0], plots["classes"])),
                  "<h2>Confusion matrix (overall)</h2><p>Rows: the label; columns: the predicted (most probable) "
                  "class.</p>", _html_table(*confusion_rows(plots))]
    if task == table.REGRESSION and plots.get("calibration_plot"):
        parts += ["<h2>Calibration (overall)</h2><p>Mean prediction and mean label of the examples in each band of "
                  "predictions.</p>", _html_table(*calibration_rows(plots))]
    if attributions:
        from components.evaluator.attributions import html_section

        parts.append(html_section(dict(attributions)))
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_figure(row: Mapping[str, Any] | None, key: str) -> str:
    """A table cell's value, its interval in small type, and a tag when it is too wide to judge."""
    if row is None or row["metrics"].get(key) is None:
        return "-"
    text = _number(row["metrics"][key])
    interval = (row.get("intervals") or {}).get(key)
    if interval:
        text += f" <small>[{interval[0]:.4f}, {interval[1]:.4f}]</small>"
    if key in (row.get("wide") or ()):
        text += f" <span class='tag wide'>{TOO_WIDE}</span>"
    return text


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + f"<td class='l'>{html.escape(row[0])}</td>"
                   + "".join(f"<td>{html.escape(cell)}</td>" for cell in row[1:]) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def class_rows(overall: dict, classes: list[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the per-class table (multiclass, both reports): a row per class, its
    one-vs-rest figures."""
    metrics = table.class_columns(table.MULTICLASS)
    return (["class", *[m.name for m in metrics]],
            [[c, *[_number(overall["metrics"].get(m.row_key(0.0, c))) for m in metrics]] for c in classes])


def confusion_rows(plots: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the multiclass confusion matrix (rows: the label, columns: the predicted class)."""
    classes = plots["classes"]
    return (["label / predicted", *classes],
            [[c, *[f"{n:,}" for n in row]] for c, row in zip(classes, plots["confusion_matrix"])])


def calibration_rows(plots: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the regression calibration buckets."""
    def edge(value: float) -> str:
        return f"{value:.4g}" if abs(value) != float("inf") else ("-inf" if value < 0 else "inf")

    return (["predictions", "examples", "mean prediction", "mean label"],
            [[f"[{edge(b['from'])}, {edge(b['to'])})", f"{b['examples']:,.0f}", _number(b["mean_prediction"]),
              _number(b["mean_label"])] for b in plots["calibration_plot"]])


def _checks_table(checks: list[dict]) -> str:
    if not checks:
        return "<p>No gates are configured (evaluator.gates).</p>"
    head = ("<tr><th>gate</th><th>slice</th><th>metric</th><th>value [interval]</th><th>bound</th><th>judged</th>"
            "<th>baseline</th><th>status</th></tr>")
    body = []
    for c in checks:
        status = c["status"]
        css = "fail" if status == "fail" else "insufficient" if status == "insufficient data" else ""
        tag = f"<span class='tag {'fail' if status == 'fail' else 'pass' if status == 'pass' else ''}'>{status}</span>"
        detail = f" {html.escape(c['detail'])}" if c.get("detail") else ""
        body.append(f"<tr class='{css}'><td class='l'>{html.escape(c['gate'])}</td><td class='l'>"
                    f"{html.escape(c['slice'])}</td><td class='l'>{html.escape(c['metric'])}</td>"
                    f"<td>{_number(c['value'])}{_bracket(c.get('interval'))}</td><td>{html.escape(c['bound'] or '-')}</td>"
                    f"<td class='l'>{html.escape(_judged(c))}</td>"
                    f"<td>{_number(c['baseline'])}</td><td class='l'>{tag}{detail}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _bracket(interval) -> str:
    return f" <small>[{interval[0]:.4f}, {interval[1]:.4f}]</small>" if interval else ""


def _judged(check: Mapping[str, Any]) -> str:
    """What a check compared with its bound, and who decided: TFMA's threshold on the value, or
    sluiceway's logic on an interval (TFMA's thresholds compare point estimates)."""
    judged = check.get("judged") or "value"
    if judged == "value":
        return f"value ({check.get('decided_by', 'TFMA')})"
    return f"{judged} (sluiceway, on the interval)"


def _chart(feature: str, metric: str, gate, rows: list[dict], baseline_rows: list[dict] | None,
           evaluator: EvaluatorConfig) -> str:
    groups = [r for r in rows if r["features"] == [feature]]
    base = {r["slice"]: r["metrics"].get(metric) for r in baseline_rows or [] if r["features"] == [feature]}
    if not groups:
        return f"<p>No slices of {html.escape(feature)}.</p>"
    width, bar, gap, left = 640, 18, 14, 180
    height = 30 + len(groups) * (bar * (2 if base else 1) + gap)

    def finite(value) -> float:
        return value if value is not None and math.isfinite(value) else 0.0

    values = [finite(r["metrics"].get(metric)) for r in groups] + [finite(v) for v in base.values()]
    values += [finite(v) for r in groups for v in (r.get("intervals") or {}).get(metric, [])]
    bounds = _gate_bounds(feature, metric, gate, groups)
    top = max([1e-9, *values, *bounds]) * 1.15
    bottom = min([0.0, *values, *bounds]) * 1.15  # a negative mean prediction draws to the left of 0
    scale = (width - left - 20) / (top - bottom)
    zero = left - bottom * scale

    def x_of(value: float) -> float:
        return zero + value * scale

    def rect(value, y: float, height_: float, fill: str) -> str:
        start, end = sorted((zero, x_of(finite(value))))
        return f"<rect x='{start:.1f}' y='{y}' width='{end - start:.1f}' height='{height_}' fill='{fill}'/>"

    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
           f"aria-label='{html.escape(metric)} by {html.escape(feature)}'>"]
    if bottom < 0:
        svg.append(f"<line x1='{zero:.1f}' y1='10' x2='{zero:.1f}' y2='{height - 5}' stroke='#999'/>")
    y = 20
    for row in groups:
        value = row["metrics"].get(metric)
        colour = "#bbb" if row["insufficient"] else "#1976d2"
        label = html.escape(row["slice"]) + (" (insufficient data)" if row["insufficient"] else "")
        svg.append(f"<text x='{left - 6}' y='{y + bar - 5}' text-anchor='end' font-size='12'>{label}</text>")
        svg.append(rect(value, y, bar, colour))
        interval = (row.get("intervals") or {}).get(metric)
        end = x_of(finite(value))
        if interval:  # the confidence interval as a whisker over the bar
            low, high = x_of(interval[0]), x_of(interval[1])
            middle = y + bar / 2
            svg.append(f"<line x1='{low:.1f}' y1='{middle}' x2='{high:.1f}' y2='{middle}' stroke='#222' "
                       "stroke-width='1.5'/>" + "".join(
                           f"<line x1='{x:.1f}' y1='{middle - 4}' x2='{x:.1f}' y2='{middle + 4}' stroke='#222'/>"
                           for x in (low, high)))
            end = max(end, high)
        text = _number(value) + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
        if metric in (row.get("wide") or ()):
            text += f" {TOO_WIDE}"
        svg.append(f"<text x='{max(end, zero) + 4:.1f}' y='{y + bar - 5}' font-size='11'>{html.escape(text)}</text>")
        y += bar
        if base:
            old = base.get(row["slice"])
            svg.append(rect(old, y, bar - 4, "#ffb74d"))
            svg.append(f"<text x='{max(x_of(finite(old)), zero) + 4:.1f}' y='{y + bar - 8}' font-size='11'>"
                       f"baseline {_number(old)}</text>")
            y += bar
        y += gap
    caption = f"{metric} by {feature}" + ("; black whiskers: confidence intervals" if any(
        (r.get("intervals") or {}).get(metric) for r in groups) else "")
    if gate is not None and bounds:
        kind = f"max_gap {gate.max_gap:g}" if gate.max_gap is not None else f"min_ratio {gate.min_ratio:g}"
        for index, bound in enumerate(bounds):
            x = x_of(bound)
            svg.append(f"<line x1='{x:.1f}' y1='10' x2='{x:.1f}' y2='{height - 5}' stroke='#c62828' "
                       "stroke-dasharray='5,3' stroke-width='2'/>")
            anchor_side = "end" if x > width / 2 else "start"  # keep the label inside the chart
            which = "gate bound" if len(bounds) == 1 else ("lowest allowed" if index == 0 else "highest allowed")
            svg.append(f"<text x='{x + (-3 if anchor_side == 'end' else 3):.1f}' y='{12 + 12 * index}' "
                       f"font-size='11' fill='#c62828' text-anchor='{anchor_side}'>{which} ({kind}): "
                       f"{bound:.4f}</text>")
        caption += (f"; dashed red line: the lowest value the gate ({kind}) allows" if len(bounds) == 1 else
                    f"; dashed red lines: the values the gate ({kind}) allows lie between them")
    if base:
        caption += "; blue: candidate, orange: baseline (the model serving now)"
    svg.append("</svg>")
    return f"<figure>{''.join(svg)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _gate_bounds(feature: str, metric: str, gate, groups: list[dict]) -> list[float]:
    """The values a fairness gate allows, drawn into its chart: the lowest one (max_gap: the
    highest group's value - max_gap; min_ratio: its value x min_ratio); against a reference group,
    the reference's value -/+ max_gap (or x min_ratio and / min_ratio)."""
    if gate is None:
        return []
    sufficient = [v for r in groups if not r["insufficient"] and (v := r["metrics"].get(metric)) is not None
                  and math.isfinite(v)]
    if gate.reference is not None:
        anchor = next((r["metrics"].get(metric) for r in groups if r["slice"] == f"{feature}={gate.reference}"), None)
        if anchor is None or not math.isfinite(anchor):
            return []
        if gate.max_gap is not None:
            return [anchor - gate.max_gap, anchor + gate.max_gap]
        return [anchor * gate.min_ratio, anchor / gate.min_ratio] if gate.min_ratio > 0 and anchor > 0 else []
    if not sufficient:
        return []
    anchor = max(sufficient)
    lowest = anchor - gate.max_gap if gate.max_gap is not None else anchor * gate.min_ratio
    return [max(0.0, lowest) if min(sufficient) >= 0 else lowest]


def _slices_table(rows: list[dict], baseline_rows: list[dict] | None, threshold: float,
                  evaluator: EvaluatorConfig, task: str = table.BINARY) -> str:
    columns = table.report_columns(threshold, task, evaluator.top_k)  # headers name the threshold: accuracy@0.5
    headline = table.HEADLINES[task][0]  # the baseline's figure beside the candidate's: auc, accuracy, rmse
    base = {r["slice"]: r for r in baseline_rows or []}
    head = "<tr><th>slice</th><th>examples</th>" + "".join(f"<th>{html.escape(header)}</th>"
                                                         for _, _, header in columns)
    head += f"<th>baseline {headline}</th></tr>" if base else "</tr>"
    body = []
    for row in rows:
        css = "insufficient" if row["insufficient"] else ""
        flag = f" <span class='tag'>insufficient data (&lt; {evaluator.min_slice_size})</span>" if row["insufficient"] else ""
        cells = "".join(f"<td>{_html_figure(row, key)}</td>" for _, key, _ in columns)
        extra = f"<td>{_html_figure(base.get(row['slice']), headline)}</td>" if base else ""
        body.append(f"<tr class='{css}'><td class='l'>{html.escape(row['slice'])}{flag}</td>"
                    f"<td>{row['size']:,.0f}</td>{cells}{extra}</tr>")
    return f"<table>{head}{''.join(body)}</table>"
