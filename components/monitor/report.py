"""The monitoring report: one self-contained HTML page saying whether the serving model still fits.

Like the fairness report (``components/evaluator/report.py``) it needs no notebook, network or
JavaScript: the verdict and whether retraining is due, the serving model and the data judged, every
reason in a table, every feature's distance as a bar (inline SVG) with its threshold marked on it,
the schema anomalies, with labels the metrics at push against now and the re-checked gates, and the
earlier monitor runs of the pipeline as a chart over run order. It reads only the monitor's
``summary.json``, so a summary kept from any run renders the same page again.
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Optional

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1260px} h1{margin-bottom:0}
.verdict{font-size:1.3em;padding:.5em 1em;border-radius:6px;display:inline-block;margin:1em 0 .3em}
.healthy{background:#e3f5e1;color:#1b5e20} .drifted{background:#fff3d6;color:#8a5300}
.degraded{background:#fde2e1;color:#b71c1c} .unknown{background:#eee} p.retrain{font-size:1.05em;margin:.3em 0 1em}
@page{size:landscape}
table{border-collapse:collapse;margin:1em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4;white-space:nowrap} td{white-space:nowrap} th.l,td.k{text-align:left}
td.l{text-align:left;white-space:normal;overflow-wrap:break-word}
tr.fail td{background:#fde2e1} tr.noise td{background:#fff3d6} tr.insufficient td{color:#888}
tr.current td{font-weight:bold}
.tag{font-size:.8em;padding:1px 6px;border-radius:4px;background:#eee} .tag.fail,.tag.degraded{background:#f8b4b0}
.tag.pass,.tag.healthy{background:#c8e6c9} .tag.drifted{background:#ffe0a3}
.panels{display:flex;flex-wrap:wrap;gap:0 1em} figure{margin:1em 0}
figcaption,p.caption{font-size:.9em;color:#555;max-width:640px}
.gate{border-left:4px solid #ccc;padding-left:1em;margin:1em 0} .gate.fail{border-color:#c62828}
"""

_VERDICTS = {
    "healthy": "Healthy: the serving model still fits the data it sees.",
    "drifted": "Drifted: the data has moved away from the data the serving model was trained on.",
    "degraded": "Degraded: the serving model does worse on the new data than it did at its push.",
}
# A history point's colour, by its run's verdict.
_VERDICT_COLOURS = {"healthy": "#2e7d32", "drifted": "#f9a825", "degraded": "#c62828"}
_DECISION_COLOURS = {"drift": "#c62828", "sampling noise": "#ffb74d"}
_WITHIN = "#1976d2"
_AT_PUSH, _NOW = "#ffb74d", "#1976d2"
_LABEL_CHARS = 22  # a chart's row label longer than this is shortened; the tables carry the whole name


class _Safe(str):
    """Markup this module built itself (a tag, a chart); every other text put on the page is escaped."""


def _escape(value: Any) -> str:
    return value if isinstance(value, _Safe) else html.escape(str(value))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str:
    """A string field as shown: missing or empty reads "-"."""
    return "-" if value is None or value == "" else str(value)


def _number(value: Any, sign: bool = False) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:+.4f}" if sign else f"{value:.4f}"
    return _text(value)


def _p_value(value: Any) -> str:
    """A p-value: the tiny ones a real drift gives in scientific notation, so they do not read 0.0000."""
    if _finite(value) and 0 < value < 1e-4:
        return f"{value:.2e}"
    return _number(value)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _number(value)


def _yes_no(value: Any) -> str:
    return "-" if value is None else "yes" if value else "no"


def _tag(text: str, css: str) -> _Safe:
    return _Safe(f"<span class='tag {html.escape(css)}'>{html.escape(text)}</span>")


def _status_css(status: Any) -> str:
    return {"pass": "pass", "fail": "fail"}.get(status, "")


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[:_LABEL_CHARS - 1] + "\u2026"


def _table(headers: list[str], rows: Iterable[list[Any]], align: str, classes: Optional[list[str]] = None) -> str:
    """A table whose columns ``align`` describes, a letter each: ``l`` text that may wrap, ``k`` a
    name or id kept on one line (a run id broken at its hyphens reads wrong), ``r`` a figure;
    ``classes`` gives each row's CSS class (fail, noise, current)."""
    head = "".join(f"<th>{html.escape(h)}</th>" if a == "r" else f"<th class='l'>{html.escape(h)}</th>"
                   for a, h in zip(align, headers))
    head = f"<tr>{head}</tr>" if any(headers) else ""  # a table of names and values needs no heading
    body = []
    for index, row in enumerate(rows):
        css = classes[index] if classes else ""
        cells = "".join(f"<td>{_escape(c)}</td>" if a == "r" else f"<td class='{a}'>{_escape(c)}</td>"
                        for a, c in zip(align, row))
        body.append(f"<tr class='{html.escape(css)}'>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def render(summary: dict) -> str:
    """The monitoring report page.

    Args:
        summary: The monitor's ``summary.json``: the run, the verdict and its reasons, the serving
            model, the data judged, every feature's drift, the schema anomalies, the evaluation on the
            new data (``None`` when it had no labels) and the monitor runs so far (``history``).

    Returns:
        The whole page as one HTML string (no external resources).
    """
    title = f"{_text(summary.get('pipeline'))} run {_text(summary.get('run'))}"
    evaluation = summary.get("evaluation")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>Monitoring report</h1><p>{html.escape(title)} at {html.escape(_text(summary.get('at')))}, "
             f"task {html.escape(_text(summary.get('task')))}</p>",
             _verdict(summary),
             "<h2>Serving model</h2>", _serving(summary.get("serving") or {}),
             "<h2>Data judged</h2>", _data(summary.get("data") or {}),
             "<h2>Reasons</h2>", _reasons(summary.get("reasons") or []),
             "<h2>Feature drift</h2>", _drift(summary.get("drift") or []),
             "<h2>Schema anomalies</h2>", _anomalies(summary.get("anomalies") or [])]
    if evaluation is None:
        parts += ["<h2>Model on the new data</h2>",
                  "<p>The data had no labels, so only drift was judged: the serving model's metrics, its gates "
                  "and its fairness were not re-checked.</p>"]
    else:
        parts += _evaluation(evaluation)
    parts += ["<h2>History</h2>", _history(summary.get("history") or [], summary.get("run"))]
    parts.append("</body></html>")
    return "\n".join(parts)


def _verdict(summary: dict) -> str:
    verdict = summary.get("verdict")
    css = verdict if verdict in _VERDICTS else "unknown"
    words = _VERDICTS.get(verdict, f"Verdict: {_text(verdict)}")
    retrain_on = ", ".join(str(kind) for kind in summary.get("retrain_on") or []) or "nothing"
    triggers: dict[str, list[str]] = {}
    for reason in summary.get("reasons") or []:
        if reason.get("triggers_retrain"):
            names = triggers.setdefault(_text(reason.get("kind")), [])
            if _text(reason.get("what")) not in names:
                names.append(_text(reason.get("what")))
    why = "; ".join(f"{kind} ({', '.join(names)})" for kind, names in triggers.items())
    if summary.get("retrain"):
        line = "Retraining is due" + (f", triggered by {why}." if why else ".")
    elif summary.get("reasons"):
        line = "No retraining is due: none of the reasons below is one that triggers it."
    else:
        line = "No retraining is due."
    return (f"<div class='verdict {css}'>{html.escape(words)}</div>"
            f"<p class='retrain'>{html.escape(line)} Retraining is triggered by (monitoring.retrain_on): "
            f"{html.escape(retrain_on)}.</p>")


def _serving(serving: dict) -> str:
    trained = serving.get("trained_on") or {}
    spans = trained.get("spans")
    spans_text = ", ".join(str(s) for s in spans) if spans else "no spans recorded"
    rows = [["version", _text(serving.get("version"))], ["location", _text(serving.get("uri"))],
            ["pushed at", _text(serving.get("pushed_at"))], ["pushed by run", _text(serving.get("run"))],
            ["trained on spans", spans_text], ["trained on rows", _count(trained.get("rows"))]]
    return _table(["", ""], rows, "kl")


def _data(data: dict) -> str:
    rows = [["source", _text(data.get("source"))], ["span", _text(data.get("span"))],
            ["rows", _count(data.get("rows"))], ["labelled", _yes_no(data.get("labelled"))]]
    parts = [_table(["", ""], rows, "kl")]
    hashes = dict(data.get("sha256") or {})
    files = [str(f) for f in data.get("files") or []]
    files += [str(f) for f in hashes if str(f) not in files]
    if files:
        parts.append(_table(["file", "sha256"], ([f, _text(hashes.get(f))] for f in files), "lk"))
    return "".join(parts)


def _reasons(reasons: list[dict]) -> str:
    if not reasons:
        return "<p>None: every feature is within its threshold, the data matches the schema and every check passes.</p>"
    rows = [[_text(r.get("kind")), _text(r.get("what")), _text(r.get("slice")), _number(r.get("value")),
             _text(r.get("bound")), _text(r.get("detail")), _yes_no(r.get("triggers_retrain"))] for r in reasons]
    return _table(["kind", "what", "slice", "value", "bound", "detail", "triggers retraining"], rows, "klkrklk",
                  ["fail" if r.get("triggers_retrain") else "" for r in reasons])


def _drift(drift: list[dict]) -> str:
    if not drift:
        return "<p>No feature distances were recorded for this run.</p>"
    groups: dict[str, list[dict]] = {"numeric": [], "categorical": []}
    for row in drift:
        groups.setdefault(_text(row.get("type")), []).append(row)
    charts = [_distance_chart(kind, rows) for kind, rows in groups.items() if rows]
    caption = ("Each bar is a feature's distance from the training data, the black mark on it that feature's "
               "threshold. Red: drift; orange: over the threshold but sampling noise (its test found no "
               "significant difference); blue: within the threshold.")
    headers = ["feature", "type", "measure", "value", "threshold", "test", "p-value", "Holm p-value", "decision",
               "note"]
    rows = [[_text(r.get("feature")), _text(r.get("type")), _text(r.get("measure")), _number(r.get("value")),
             _number(r.get("threshold")), _text(r.get("test")), _p_value(r.get("p_value")),
             _p_value(r.get("holm_p_value")), _text(r.get("decision")), _text(r.get("note"))] for r in drift]
    classes = [{"drift": "fail", "sampling noise": "noise"}.get(r.get("decision"), "") for r in drift]
    return (f"<div class='panels'>{''.join(charts)}</div><p class='caption'>{html.escape(caption)}</p>"
            + _table(headers, rows, "kklrrkrrkl", classes))


def _distance_chart(kind: str, rows: list[dict]) -> str:
    """One panel of distance bars: the features of one type, the threshold marked across each bar."""
    width, left, plot, bar, gap = 600, 165, 165, 16, 8
    height = 34 + len(rows) * (bar + gap)
    measured = [v for r in rows for v in (r.get("value"), r.get("threshold")) if _finite(v)]
    top = max([1e-9, *measured]) * 1.05
    scale = plot / top

    def x_of(value: Any) -> float:
        return left + max(0.0, value if _finite(value) else 0.0) * scale

    measures = sorted({_text(r.get("measure")) for r in rows})
    heading = f"{kind} features: {', '.join(measures)}"
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
           f"aria-label='{html.escape(heading)}'>",
           f"<text x='4' y='14' font-size='13' font-weight='bold'>{html.escape(heading)}</text>",
           f"<line x1='{left}' y1='20' x2='{left}' y2='{height - 4}' stroke='#999'/>"]
    y = 26
    for row in rows:
        name, value, threshold = _text(row.get("feature")), row.get("value"), row.get("threshold")
        decision = row.get("decision")
        colour = _DECISION_COLOURS.get(decision, _WITHIN)
        svg.append(f"<text x='{left - 6}' y='{y + bar - 4}' text-anchor='end' font-size='12'>"
                   f"<title>{html.escape(name)}</title>{html.escape(_short(name))}</text>")
        svg.append(f"<rect x='{left}' y='{y}' width='{x_of(value) - left:.1f}' height='{bar}' fill='{colour}'/>")
        if _finite(threshold):
            mark = x_of(threshold)
            svg.append(f"<line x1='{mark:.1f}' y1='{y - 3}' x2='{mark:.1f}' y2='{y + bar + 3}' stroke='#222' "
                       "stroke-width='2'/>")
        flag = f" \u00b7 {decision}" if decision in _DECISION_COLOURS else ""
        svg.append(f"<text x='{left + plot + 8}' y='{y + bar - 4}' font-size='10'>{html.escape(_number(value))} "
                   f"(threshold {html.escape(_number(threshold))}){html.escape(flag)}</text>")
        y += bar + gap
    svg.append("</svg>")
    return f"<figure>{''.join(svg)}</figure>"


def _anomalies(anomalies: list[dict]) -> str:
    if not anomalies:
        return "<p>None: the data matches the schema.</p>"
    rows = [[_text(a.get("feature")), _text(a.get("anomaly")), _text(a.get("description"))] for a in anomalies]
    return _table(["feature", "anomaly", "description"], rows, "kkl", ["fail"] * len(rows))


def _evaluation(evaluation: dict) -> list[str]:
    metric = _text(evaluation.get("metric"))
    metrics = evaluation.get("metrics") or []
    parts = [f"<h2>Model on the new data</h2><p>Degradation is judged on {html.escape(metric)}; the figures at "
             "push are the ones recorded when the serving model was pushed.</p>"]
    if metrics:
        rows = []
        for m in metrics:
            change = m.get("change")
            if change is None and _finite(m.get("at_push")) and _finite(m.get("now")):
                change = m["now"] - m["at_push"]
            rows.append([_text(m.get("slice")), _count(m.get("size")), _text(m.get("metric")),
                         _number(m.get("at_push")), _number(m.get("now")), _number(change, sign=True)])
        parts.append(_table(["slice", "examples", "metric", "at push", "now", "change"], rows, "krkrrr"))
        names = list(dict.fromkeys(_text(m.get("metric")) for m in metrics))
        names.sort(key=lambda name: name != metric)  # the degradation metric's chart first
        charts = [_paired_chart(f"{name} by slice", [(_text(m.get("slice")), m.get("at_push"), m.get("now"))
                                                     for m in metrics if _text(m.get("metric")) == name])
                  for name in names]
        parts.append(f"<div class='panels'>{''.join(charts)}</div>")
    else:
        parts.append("<p>No metrics were computed on the new data.</p>")
    parts += ["<h3>Gates re-checked on the new data</h3>", _checks(evaluation.get("checks") or [])]
    parts += ["<h3>Fairness at push and now</h3>", _fairness(evaluation.get("fairness") or [])]
    return parts


def _paired_chart(heading: str, pairs: list[tuple[str, Any, Any]]) -> str:
    """Bars in pairs: each row's figure at push (orange) above its figure now (blue); the bars start
    at 0, negative figures to the left."""
    width, left, plot, bar, gap = 600, 165, 260, 14, 10
    height = 40 + len(pairs) * (2 * bar + gap)
    values = [v for _, before, after in pairs for v in (before, after) if _finite(v)]
    top, bottom = max([0.0, *values]), min([0.0, *values])
    scale = plot / ((top - bottom) or 1.0)
    zero = left - bottom * scale

    def rect(value: Any, y: float, fill: str) -> str:
        end = zero + (value if _finite(value) else 0.0) * scale
        start, stop = sorted((zero, end))
        return f"<rect x='{start:.1f}' y='{y}' width='{stop - start:.1f}' height='{bar - 2}' fill='{fill}'/>"

    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
           f"aria-label='{html.escape(heading)}'>",
           f"<text x='4' y='14' font-size='13' font-weight='bold'>{html.escape(heading)}</text>",
           f"<line x1='{zero:.1f}' y1='20' x2='{zero:.1f}' y2='{height - 14}' stroke='#999'/>"]
    y = 26
    for label, before, after in pairs:
        svg.append(f"<text x='{left - 6}' y='{y + bar + 4}' text-anchor='end' font-size='12'>"
                   f"<title>{html.escape(label)}</title>{html.escape(_short(label))}</text>")
        for offset, value, fill, name in ((0, before, _AT_PUSH, "at push"), (bar, after, _NOW, "now")):
            svg.append(rect(value, y + offset, fill))
            svg.append(f"<text x='{left + plot + 8}' y='{y + offset + bar - 4}' font-size='11'>{name} "
                       f"{html.escape(_number(value))}</text>")
        y += 2 * bar + gap
    svg.append(f"<text x='4' y='{height - 2}' font-size='11' fill='#555'>orange: at push, blue: now</text></svg>")
    return f"<figure>{''.join(svg)}</figure>"


def _checks(checks: list[dict]) -> str:
    if not checks:
        return "<p>No gates are configured (evaluator.gates), so none was re-checked.</p>"
    rows, classes = [], []
    for c in checks:
        status = _text(c.get("status"))
        rows.append([_text(c.get("gate")), _text(c.get("slice")), _text(c.get("metric")), _number(c.get("value")),
                     _text(c.get("bound")), _number(c.get("baseline")), _tag(status, _status_css(status)),
                     _text(c.get("decided_by")), _text(c.get("detail"))])
        classes.append("fail" if status == "fail" else "insufficient" if status == "insufficient data" else "")
    return _table(["gate", "slice", "metric", "now", "bound", "at push", "status", "decided by", "detail"], rows,
                  "lkkrkrkkl", classes)


def _fairness(fairness: list[dict]) -> str:
    if not fairness:
        return "<p>No fairness gates are configured, so no group was compared.</p>"
    parts = []
    for f in fairness:
        status = _text(f.get("status"))
        groups = f.get("groups") or {}
        heading = (f"{_text(f.get('gate'))}: {_text(f.get('metric'))} by {_text(f.get('feature'))}, "
                   f"bound {_text(f.get('bound'))}")
        rows = []
        for group, figures in groups.items():
            figures = figures or {}
            before, after = figures.get("at_push"), figures.get("now")
            change = after - before if _finite(before) and _finite(after) else None
            rows.append([str(group), _number(before), _number(after), _number(change, sign=True)])
        chart = _paired_chart(f"{_text(f.get('metric'))} by {_text(f.get('feature'))}",
                              [(str(g), (v or {}).get("at_push"), (v or {}).get("now")) for g, v in groups.items()])
        parts.append(f"<div class='gate {'fail' if status == 'fail' else ''}'><p>{html.escape(heading)} "
                     f"{_tag(status, _status_css(status))}</p>"
                     + _table(["group", "at push", "now", "change"], rows, "krrr") + (chart if groups else "")
                     + "</div>")
    return "".join(parts)


def _history(history: list[dict], current: Any) -> str:
    if not history:
        return "<p>No monitor runs are recorded for this pipeline.</p>"
    rows, classes = [], []
    for h in history:
        verdict = _text(h.get("verdict"))
        is_current = current is not None and h.get("run") == current
        rows.append([_text(h.get("run")) + (" (this run)" if is_current else ""), _text(h.get("at")),
                     _text(h.get("version")), _tag(verdict, verdict if verdict in _VERDICTS else ""),
                     _yes_no(h.get("retrain")), _count(h.get("rows")), _number(h.get("max_distance")),
                     _text(h.get("metric")), _number(h.get("value"))])
        classes.append("current" if is_current else "")
    table = _table(["run", "at", "version", "verdict", "retraining due", "rows", "max distance", "metric", "value"],
                   rows, "kkkkkrrkr", classes)
    return _history_chart(history, current) + table


def _history_chart(history: list[dict], current: Any) -> str:
    """Two panels over the runs in order (oldest left): the metric's value and the largest feature
    distance, each point in its run's verdict colour and this run's point ringed."""
    width, left, right, plot_height, panel = 680, 70, 30, 110, 160
    inset = 40  # keeps the first and last points' labels off the axis and inside the picture
    names = ", ".join(dict.fromkeys(_text(h.get("metric")) for h in history if h.get("metric"))) or "metric"
    count = len(history)
    span = width - left - right - 2 * inset
    xs = [left + inset + span / 2] if count == 1 else [left + inset + i * span / (count - 1) for i in range(count)]
    every = max(1, math.ceil(count / 10))  # at most ten runs labelled, counted back from this (the last) one
    labelled = {i for i in range(count) if (count - 1 - i) % every == 0}
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{2 * panel + 20}' role='img' "
           "aria-label='monitor runs over time'>"]
    for index, (key, heading) in enumerate((("value", f"{names} on the new data"),
                                            ("max_distance", "largest feature distance"))):
        top = 24 + index * panel
        svg.append(f"<text x='4' y='{top - 8}' font-size='13' font-weight='bold'>{html.escape(heading)}</text>")
        svg.append(f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + plot_height}' stroke='#999'/>"
                   f"<line x1='{left}' y1='{top + plot_height}' x2='{width - right}' y2='{top + plot_height}' "
                   "stroke='#999'/>")
        values = [h.get(key) if _finite(h.get(key)) else None for h in history]
        known = [v for v in values if v is not None]
        if not known:
            svg.append(f"<text x='{left + 10}' y='{top + plot_height / 2}' font-size='12' fill='#555'>"
                       "not measured in any run</text>")
            continue
        low, high = min(known), max(known)
        if high == low:  # one run, or the same figure every time: centre it
            pad = abs(high) * 0.1 or 0.05
            low, high = low - pad, high + pad

        def y_of(value: float) -> float:
            return top + 18 + (high - value) / (high - low) * (plot_height - 24)

        for y, figure in ((top + 10, high), (top + plot_height - 2, low)):
            svg.append(f"<text x='{left - 6}' y='{y}' text-anchor='end' font-size='10'>{figure:.4f}</text>")
        segment: list[str] = []
        for x, value in zip(xs, values + [None]):  # an unmeasured run breaks the line
            if value is None:
                if len(segment) > 1:
                    svg.append(f"<polyline points='{' '.join(segment)}' fill='none' stroke='#888'/>")
                segment = []
            else:
                segment.append(f"{x:.1f},{y_of(value):.1f}")
        if len(segment) > 1:
            svg.append(f"<polyline points='{' '.join(segment)}' fill='none' stroke='#888'/>")
        for position, (x, value, run) in enumerate(zip(xs, values, history)):
            if value is None:
                continue
            colour = _VERDICT_COLOURS.get(run.get("verdict"), "#777")
            ring = current is not None and run.get("run") == current
            svg.append(f"<circle cx='{x:.1f}' cy='{y_of(value):.1f}' r='{7 if ring else 4}' fill='{colour}'"
                       + (" stroke='#000' stroke-width='2'" if ring else "") + f"><title>"
                       f"{html.escape(_text(run.get('run')))}: {_number(value)}</title></circle>")
            if ring or position in labelled:
                label = f"{_number(value)}" + (" this run" if ring else "")
                svg.append(f"<text x='{x:.1f}' y='{y_of(value) - 10:.1f}' text-anchor='middle' font-size='10'>"
                           f"{html.escape(label)}</text>")
        for position, (x, run) in enumerate(zip(xs, history)):
            if index == 1 and position in labelled:
                svg.append(f"<text x='{x:.1f}' y='{top + plot_height + 14}' text-anchor='middle' font-size='10'>"
                           f"{html.escape(_text(run.get('at'))[:10])}</text>")
    svg.append("</svg>")
    caption = ("Monitor runs of this pipeline in order, oldest left. Points: green healthy, amber drifted, red "
               "degraded; the ringed point is this run; a run without a figure leaves a gap.")
    return f"<figure>{''.join(svg)}<figcaption>{html.escape(caption)}</figcaption></figure>"
