"""The model card written into every pushed version: ``model_card.json`` and ``model_card.html``.

A card follows the sections of Mitchell et al.'s "Model Cards for Model Reporting" (and of the Model
Card Toolkit's schema): model details, intended use, factors, metrics, training and evaluation data,
model parameters, quantitative analyses, and ethical considerations with caveats. Two kinds of
content go into it:

- what the run knows, read from the push manifest, the Evaluator's ``metrics.json`` and the feature
  attributions: lineage, every slice's figures with their intervals, every gate check and who
  decided it, which groups the fairness gates compared and how that came out, and the caveats that
  follow (slices too small to judge, intervals too wide to judge, failed checks a reviewer approved);
- what only people know, from the pipeline YAML's ``model_card`` section (``PEOPLE_FIELDS``): the
  overview, owners, intended uses and users, uses that are out of scope, limitations, ethical
  considerations, references, licenses and citations. A field nobody filled is listed in the card's
  ``empty_sections`` and its section of the page says so, naming the YAML key to add.

The JSON is validated against the card's JSON Schema (draft 2020-12) before anything is written.
That schema is declared here, ``card_schema()``, so an installed sluiceway (the Kubeflow image holds
no ``schemas/`` folder) validates with it; ``schemas/model_card.schema.json`` is its committed text,
published for other readers of the cards, and a test fails when it falls behind. Regenerate with
``python -m components.pusher.model_card > schemas/model_card.schema.json``.

The page is self-contained: inline CSS, inline SVG charts, no JavaScript, no network. It is rendered
with jinja2 with autoescaping on, so every value from the data (a slice's value, an owner's name)
reaches the page as text.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from typing import Any, Iterable, Mapping, Optional

from components.evaluator import metrics as metric_table
from pipeline.errors import SluicewayError
from pipeline.files import atomic_write_text

CARD_JSON, CARD_HTML = "model_card.json", "model_card.html"
SCHEMA_ID = "https://sluiceway.dev/schemas/model_card.schema.json"
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "schemas", "model_card.schema.json")
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
TEMPLATE = "model_card.html.j2"

# The fields of the YAML's model_card section, what people write: each is optional.
PEOPLE_FIELDS = ("overview", "owners", "intended_uses", "intended_users", "out_of_scope_uses", "limitations",
                 "ethical_considerations", "references", "licenses", "citations")
# Where each of them goes on the card (a section, or part of one).
FIELD_SECTIONS = {
    "overview": "model_details.overview",
    "owners": "model_details.owners",
    "references": "model_details.references",
    "licenses": "model_details.licenses",
    "citations": "model_details.citations",
    "intended_uses": "intended_use.primary_uses",
    "intended_users": "intended_use.primary_users",
    "out_of_scope_uses": "intended_use.out_of_scope_uses",
    "ethical_considerations": "considerations.ethical_considerations",
    "limitations": "considerations.limitations",
}
NOT_RECORDED = "not recorded"
TOP_FEATURES = 10  # attributions shown as bars; the JSON keeps every feature
SLICE_TOP_FEATURES = 3  # per slice of the attributions

_MODEL_FAMILIES = {
    "wide_and_deep": "neural network: wide and deep (tf_keras)",
    "dnn": "neural network: deep, fully connected (tf_keras)",
    "gradient_boosted_trees": "decision forest: gradient boosted trees (TensorFlow Decision Forests)",
    "random_forest": "decision forest: random forest (TensorFlow Decision Forests)",
}
_FAILED, _PASSED, _INSUFFICIENT = "fail", "pass", "insufficient data"  # check statuses (evaluator/gates.py)
_OVERRIDDEN = "failed, shipped by reviewer override"


class ModelCardError(SluicewayError):
    """A model card does not match its schema (or cannot be rendered); the message names each JSON path
    (``model_details.owners``) and what was expected there. Nothing was written."""


def build_card(*, manifest: dict, evaluation: dict, attributions: dict | None, people: dict, pipeline_name: str,
               features: dict, schema_features: list[dict] | None = None, statistics: list[dict] | None = None,
               approval: dict | None = None) -> dict:
    """The model card of a pushed version, as a JSON-ready dict (see ``card_schema`` for its form).

    Every input but ``pipeline_name`` may lack any of its keys: what is missing is ``null`` (shown as
    "not recorded") or an empty list. Figures that are not finite numbers (TFMA's NaN on a slice with
    one class) are ``null``.

    Args:
        manifest: The push manifest (``components.pusher.core.push``): version, pushed_at, run, metrics,
            gates (check dicts), hyperparameters, model_fingerprint, model_sha256, config_sha256,
            data_sha256, spans, code_version, serving_check, and when recorded model_type (the
            ``trainer.model``), model_family, replaces (the version replaced), triggered_by, approval.
        evaluation: The Evaluator's ``metrics.json``: split, task, decision_thresholds, min_slice_size,
            baseline_model, baseline_problem, slices (rows with slice, features, size, insufficient,
            metrics and optionally intervals and wide), baseline_slices, and optionally intervals
            (method, level, methods per metric key).
        attributions: ``attributions.json`` (method, loss, features, slices, sensitive ...), or ``None``.
        people: The YAML's ``model_card`` section (``PEOPLE_FIELDS``; any may be absent or empty).
        pipeline_name: ``pipeline.name``: the card's name.
        features: The ``features`` section: label, task, positive, numeric, categorical, sensitive.
        schema_features: The schema's features, each ``{"name", "type"}`` (``schema_summary`` makes them).
        statistics: Per split ``{"split", "rows", "features": [{"name", "type", "missing", "mean", "std",
            "min", "median", "max", "unique", "top": [{"value", "count"}]}]}`` (``statistics_summary``).
        approval: The reviewer's override that shipped a blocked model: by, at, reason, run,
            failed_checks (check dicts); ``None`` (then the manifest's ``approval``, if any).

    Returns:
        The card.
    """
    people = {key: value for key, value in (people or {}).items() if value not in (None, "", [], {})}
    approval = approval if approval is not None else manifest.get("approval")
    task = features.get("task") or evaluation.get("task")
    checks = [_check(c) for c in manifest.get("gates") or []]
    slices = _analysed_slices(evaluation, task)
    approval_card = _approval(approval)
    analysed = _attributions(attributions)
    card = {
        "$schema": SCHEMA_ID,
        "model_details": _model_details(manifest, evaluation, people, pipeline_name, approval_card),
        "intended_use": {"primary_uses": _texts(people.get("intended_uses")),
                         "primary_users": _texts(people.get("intended_users")),
                         "out_of_scope_uses": _texts(people.get("out_of_scope_uses"))},
        "factors": _factors(features, evaluation),
        "metrics": _metrics(evaluation, task),
        "training_data": _dataset("train", manifest, evaluation, schema_features, statistics, features),
        "evaluation_data": _dataset(evaluation.get("split") or "eval", manifest, evaluation, schema_features,
                                    statistics, features),
        "model_parameters": _model_parameters(manifest, features, task),
        "quantitative_analyses": {
            "slices": slices,
            "baseline": {"model": evaluation.get("baseline_model"), "problem": evaluation.get("baseline_problem"),
                         "compared": bool(evaluation.get("baseline_slices"))},
            "gate_checks": checks,
            "attributions": analysed,
        },
        "considerations": _considerations(people, checks, slices, evaluation, analysed, features, approval_card),
        "empty_sections": [{"field": field, "section": FIELD_SECTIONS[field]}
                           for field in PEOPLE_FIELDS if field not in people],
    }
    return card


def render_html(card: dict) -> str:
    """The card as one self-contained HTML page (inline CSS and SVG; no script, no network).

    Raises:
        ModelCardError: The card lacks what the page shows (it was not made by ``build_card``).
    """
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(figure=_figure, interval=_interval_text, text=_text, short=_short, count=_count)
    try:
        return environment.get_template(TEMPLATE).render(
            card=card, not_provided={entry["field"]: True for entry in card.get("empty_sections", [])},
            charts=_charts(card), tables=_tables(card))
    except (jinja2.UndefinedError, KeyError, TypeError) as exc:
        problem = f"model card: cannot render the page: {exc}; expected a card made by build_card"
        raise ModelCardError(problem) from None


def validate(card: dict) -> None:
    """Checks a card against the model card schema (``card_schema``).

    Raises:
        ModelCardError: Every place the card differs from the schema, each as its JSON path and what
            was expected there (also a number that is not finite, which JSON cannot hold).
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(card_schema())
    problems = sorted(((_json_path(error.absolute_path), _expected(error)) for error in validator.iter_errors(card)),
                      key=lambda problem: problem[0])
    problems += [(path, "expected a finite number or null, got " + repr(value))
                 for path, value in _non_finite(card, ())]
    if problems:
        count = len(problems)
        raise ModelCardError(f"model card: {count} problem{'s' if count != 1 else ''} against {SCHEMA_ID}"
                             + "".join(f"\n  {path or '(the card)'}: {message}" for path, message in problems))


def write_card(folder: str, card: dict) -> tuple[str, str]:
    """Validates the card and writes ``model_card.json`` and ``model_card.html`` into ``folder``.

    Both texts are made before anything is written, and each file is written atomically, so a card
    that fails validation or rendering leaves ``folder`` as it was.

    Returns:
        The paths of the JSON and the HTML file.

    Raises:
        ModelCardError: The card does not match the schema, or cannot be rendered.
        OSError: ``folder`` cannot be written (a JSON file written before the failure is removed).
    """
    validate(card)
    text = json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    page = render_html(card)
    json_path, html_path = os.path.join(folder, CARD_JSON), os.path.join(folder, CARD_HTML)
    existed = os.path.exists(json_path)
    atomic_write_text(json_path, text)
    try:
        atomic_write_text(html_path, page)
    except BaseException:
        if not existed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(json_path)  # no card half-written: the JSON goes with the page it describes
        raise
    return json_path, html_path


def schema_summary(schema) -> list[dict]:
    """The features of a TFDV schema (a ``tensorflow_metadata`` ``Schema``), for ``build_card``:
    ``{"name", "type"}`` each, the type as TFDV names it (``INT``, ``FLOAT``, ``BYTES``)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    return [{"name": feature.name, "type": schema_pb2.FeatureType.Name(feature.type)} for feature in schema.feature]


def statistics_summary(split: str, statistics) -> dict:
    """One split's TFDV statistics (a ``DatasetFeatureStatisticsList``), summarized for ``build_card``:
    the split's rows and per feature its missing share, and the numeric figures (mean, std, min,
    median, max) or the categorical ones (unique values, the most frequent ones)."""
    dataset = statistics.datasets[0] if statistics.datasets else None
    rows = int(dataset.num_examples) if dataset is not None else None
    summary = {"split": split, "rows": rows, "features": []}
    for feature in dataset.features if dataset is not None else []:
        name = feature.path.step[-1] if feature.path.step else feature.name
        kind = feature.WhichOneof("stats")
        entry: dict[str, Any] = {"name": name, "type": "numeric" if kind == "num_stats" else
                                 "categorical" if kind == "string_stats" else kind}
        common = getattr(feature, kind).common_stats if kind in ("num_stats", "string_stats") else None
        if common is not None:
            total = common.num_non_missing + common.num_missing
            entry["missing"] = common.num_missing / total if total else None
        if kind == "num_stats":
            stats = feature.num_stats
            entry.update(mean=stats.mean, std=stats.std_dev, min=stats.min, median=stats.median, max=stats.max)
        elif kind == "string_stats":
            stats = feature.string_stats
            entry.update(unique=int(stats.unique),
                         top=[{"value": v.value, "count": v.frequency} for v in list(stats.top_values)[:5]])
        summary["features"].append(entry)
    return summary


# -- building ---------------------------------------------------------------------------------------------------


def _finite(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _texts(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


def _check(check: Mapping[str, Any]) -> dict:
    """A gate check as the card keeps it (the manifest's, and from now on with ``judged``)."""
    return {"gate": str(check.get("gate", "")), "slice": str(check.get("slice", "")),
            "metric": str(check.get("metric", "")), "value": _finite(check.get("value")),
            "bound": str(check.get("bound") or ""), "baseline": _finite(check.get("baseline")),
            "status": str(check.get("status", "")), "detail": str(check.get("detail") or ""),
            "decided_by": check.get("decided_by"), "judged": check.get("judged")}


def _approval(approval: Mapping[str, Any] | None) -> dict | None:
    if not approval:
        return None
    return {"by": approval.get("by"), "at": approval.get("at"), "reason": approval.get("reason"),
            "run": approval.get("run"), "failed_checks": [_check(c) for c in approval.get("failed_checks") or []]}


def _owners(owners: Any) -> list[dict]:
    if owners is None:
        return []
    if isinstance(owners, (str, Mapping)):
        owners = [owners]  # one owner written without a list
    return [{"name": str(o.get("name", "")), "contact": o.get("contact")} if isinstance(o, Mapping)
            else {"name": str(o), "contact": None} for o in owners]


def _files(sha256: Any) -> list[dict]:
    return [{"path": str(path), "sha256": digest} for path, digest in (sha256 or {}).items()]


def _spans(spans: Any) -> list[dict]:
    return [{"number": span.get("number"), "source": span.get("source"), "rows": span.get("rows"),
             "files": [{"path": str(path), "sha256": (span.get("sha256") or {}).get(path)}
                       for path in span.get("files") or (span.get("sha256") or {})]}
            for span in spans or []]


def _replaced(manifest: Mapping[str, Any], evaluation: Mapping[str, Any]) -> dict | None:
    """The version this push replaced: the manifest's record of it, or the serving model the Evaluator
    compared the candidate with (the one serving when the run evaluated)."""
    recorded = manifest.get("replaces")
    if isinstance(recorded, Mapping):
        return {"version": recorded.get("version"), "uri": recorded.get("uri")}
    if recorded is not None:
        return {"version": recorded, "uri": None}
    uri = evaluation.get("baseline_model")
    if not uri:
        return None
    name = str(uri).rstrip("/").rsplit("/", 1)[-1]
    return {"version": int(name) if name.isdigit() else None, "uri": str(uri)}


def _trigger(trigger: Any) -> dict | None:
    if not trigger:
        return None
    if not isinstance(trigger, Mapping):
        return {"run": str(trigger), "verdict": None, "reasons": None}
    reasons = trigger.get("reasons_text") or trigger.get("reasons")
    if isinstance(reasons, list):
        reasons = "; ".join(str(r.get("detail", r)) if isinstance(r, Mapping) else str(r) for r in reasons)
    return {"run": trigger.get("run"), "verdict": trigger.get("verdict"), "reasons": reasons or None}


def _serving_check(serving: Any) -> dict | None:
    if not serving:
        return None
    checks = serving.get("checks") or []
    p99 = ((serving.get("latency") or {}).get("1") or {}).get("p99_ms")
    return {"checks": len(checks), "failed": sum(c.get("status") == _FAILED for c in checks),
            "load_seconds": _finite(serving.get("load_seconds")), "p99_ms": _finite(p99)}


def _model_details(manifest, evaluation, people, pipeline_name, approval) -> dict:
    return {
        "name": pipeline_name,
        "overview": people.get("overview"),
        "version": {"number": manifest.get("version"), "pushed_at": manifest.get("pushed_at")},
        "model_fingerprint": manifest.get("model_fingerprint"),
        "owners": _owners(people.get("owners")),
        "references": _texts(people.get("references")),
        "licenses": _texts(people.get("licenses")),
        "citations": _texts(people.get("citations")),
        "lineage": {
            "run": manifest.get("run"),
            "spans": _spans(manifest.get("spans")),
            "data_files": _files(manifest.get("data_sha256")),
            "config_sha256": manifest.get("config_sha256"),
            "code_version": manifest.get("code_version"),
            "model_sha256": manifest.get("model_sha256"),
            "replaced": _replaced(manifest, evaluation),
            "triggered_by": _trigger(manifest.get("triggered_by")),
            "serving_check": _serving_check(manifest.get("serving_check")),
        },
        "approval": approval,
    }


def _factors(features: Mapping[str, Any], evaluation: Mapping[str, Any]) -> dict:
    rows = [r for r in evaluation.get("slices") or [] if r.get("features")]
    slicings = list(dict.fromkeys(tuple(r["features"]) for r in rows))
    return {"sensitive_features": list(features.get("sensitive") or []),
            "slicings": [list(s) for s in slicings],
            "slices": [{"slice": str(r.get("slice")), "features": list(r["features"]),
                        "examples": _finite(r.get("size")), "insufficient": bool(r.get("insufficient"))}
                       for r in rows]}


_KEY = re.compile(r"^(?P<name>[a-z_0-9]+)(?:\[(?P<class>.*)\])?(?:@(?P<threshold>[-+0-9.eE]+))?$")


def _metric_of(key: str, task: Optional[str]) -> tuple[Optional[metric_table.Metric], Optional[str], Optional[float]]:
    """A metric key of ``metrics.json`` (``auc``, ``positive_rate@0.5``, ``precision[high]``): its row of
    the metric table (``None`` for one the table does not know), its class, its threshold."""
    match = _KEY.match(key)
    if not match:
        return None, None, None
    try:
        found = metric_table.metric(match["name"], task) if task in metric_table.TASKS else \
            metric_table.metric(match["name"])
    except KeyError:
        found = None
    threshold = float(match["threshold"]) if match["threshold"] else None
    return found, match["class"], threshold


def _metrics(evaluation: Mapping[str, Any], task: Optional[str]) -> dict:
    overall = next((r for r in evaluation.get("slices") or [] if not r.get("features")), None)
    thresholds = list(evaluation.get("decision_thresholds") or [])
    intervals = evaluation.get("intervals") or {}
    if not intervals and any(r.get("intervals") for r in evaluation.get("slices") or []):
        intervals = {"method": None, "level": None}  # intervals without a record of how they were computed
    methods = intervals.get("methods") or {}
    reported = []
    for key in (overall or {}).get("metrics") or {}:
        metric, class_name, threshold = _metric_of(key, task)
        if threshold is None and metric is not None and metric.at_threshold and thresholds:
            threshold = thresholds[0]
        meaning = metric.meaning if metric else None
        if meaning and class_name is not None:
            meaning = f"class {class_name}: {meaning.removeprefix('per class: ')}"
        reported.append({"key": key, "name": metric.name if metric else key, "meaning": meaning,
                         "direction": metric_table.DIRECTION_TEXT[metric.direction] if metric else None,
                         "decision_threshold": threshold,
                         "interval_method": methods.get(key) or (methods.get(metric.name) if metric else None)})
    return {"task": task, "split": evaluation.get("split"), "decision_thresholds": thresholds,
            "min_slice_size": evaluation.get("min_slice_size"),
            "intervals": {"method": intervals.get("method"), "level": _finite(intervals.get("level"))}
            if intervals else None,
            "reported": reported}


def _analysed_slices(evaluation: Mapping[str, Any], task: Optional[str]) -> list[dict]:
    baseline = {r.get("slice"): r.get("metrics") or {} for r in evaluation.get("baseline_slices") or []}
    slices = []
    for row in evaluation.get("slices") or []:
        intervals, wide = row.get("intervals") or {}, set(row.get("wide") or [])
        base = baseline.get(row.get("slice"))
        figures = []
        for key, value in (row.get("metrics") or {}).items():
            interval = intervals.get(key) or ()
            low, high = (_finite(interval[0]), _finite(interval[1])) if len(interval) == 2 else (None, None)
            figures.append({"key": key, "value": _finite(value),
                            "interval": [low, high] if low is not None and high is not None else None,
                            "wide": key in wide, "baseline": _finite(base.get(key)) if base is not None else None})
        slices.append({"slice": str(row.get("slice")), "features": list(row.get("features") or []),
                       "examples": _finite(row.get("size")), "insufficient": bool(row.get("insufficient")),
                       "metrics": figures})
    return slices


def _dataset(split: str, manifest: Mapping[str, Any], evaluation: Mapping[str, Any],
             schema_features: list[dict] | None, statistics: list[dict] | None, features: Mapping[str, Any]) -> dict:
    stats = next((s for s in statistics or [] if s.get("split") == split), None)
    rows = stats.get("rows") if stats else None
    if rows is None and split == evaluation.get("split"):
        overall = next((r for r in evaluation.get("slices") or [] if not r.get("features")), None)
        rows = _finite((overall or {}).get("size"))
    roles = _roles(features)
    return {"split": split, "rows": int(rows) if rows is not None else None,
            "spans": [s.get("number") for s in manifest.get("spans") or []],
            "files": _files(manifest.get("data_sha256")),
            "features": [{"name": str(f.get("name")), "type": f.get("type"), "role": roles.get(f.get("name"))}
                         for f in schema_features or []],
            "statistics": [_feature_statistics(f) for f in (stats or {}).get("features") or []]}


def _roles(features: Mapping[str, Any]) -> dict[str, str]:
    roles = {name: "numeric feature" for name in features.get("numeric") or []}
    roles.update({name: "categorical feature" for name in features.get("categorical") or []})
    for name in features.get("sensitive") or []:
        roles[name] = (roles.get(name, "feature") + ", sensitive")
    if features.get("label"):
        roles[features["label"]] = "label"
    return roles


def _feature_statistics(entry: Mapping[str, Any]) -> dict:
    return {"name": str(entry.get("name")), "type": entry.get("type"),
            **{key: _finite(entry.get(key)) for key in ("missing", "mean", "std", "min", "median", "max")},
            "unique": entry.get("unique"),
            "top": [{"value": str(t.get("value")), "count": _finite(t.get("count"))} for t in entry.get("top") or []]}


def _model_parameters(manifest: Mapping[str, Any], features: Mapping[str, Any], task: Optional[str]) -> dict:
    model_type = manifest.get("model_type") or manifest.get("model")
    hyperparameters = manifest.get("hyperparameters")
    return {"task": task, "label": features.get("label"), "positive": features.get("positive"),
            "features": {"numeric": list(features.get("numeric") or []),
                         "categorical": list(features.get("categorical") or [])},
            "sensitive_features": list(features.get("sensitive") or []),
            "model_type": model_type,
            "family": manifest.get("model_family") or _MODEL_FAMILIES.get(model_type),
            "hyperparameters": dict(hyperparameters) if isinstance(hyperparameters, Mapping) else None}


def _attributions(attributions: Mapping[str, Any] | None) -> dict | None:
    if not attributions:
        return None
    ranked = sorted(attributions.get("features") or [], key=lambda f: -(_finite(f.get("importance")) or 0.0))

    def feature(entry: Mapping[str, Any]) -> dict:
        return {"feature": str(entry.get("feature")), "importance": _finite(entry.get("importance")),
                "share": _finite(entry.get("share"))}

    slices = [{"feature": str(by), "slice": str(name), "examples": _finite(entry.get("examples")),
               "insufficient": bool(entry.get("insufficient")),
               "top_features": [feature(f) for f in sorted(entry.get("features") or [],
                                                           key=lambda f: -(_finite(f.get("importance")) or 0.0))
                                [:SLICE_TOP_FEATURES]]}
              for by, groups in (attributions.get("slices") or {}).items() for name, entry in groups.items()]
    sensitive = [{"feature": str(name), "share": _finite(entry.get("share")), "rank": entry.get("rank"),
                  "importance": _finite(entry.get("importance")),
                  "proxies": [{"feature": str(p.get("feature")), "association": _finite(p.get("association")),
                               "measure": p.get("measure"), "share": _finite(p.get("share"))}
                              for p in entry.get("proxies") or []]}
                 for name, entry in (attributions.get("sensitive") or {}).items()]
    return {"method": attributions.get("method"), "loss": attributions.get("loss"),
            "examples": attributions.get("examples"), "repeats": attributions.get("repeats"),
            "seed": attributions.get("seed"), "baseline_loss": _finite(attributions.get("baseline_loss")),
            "note": attributions.get("note"), "features": [feature(f) for f in ranked],
            "sensitive": sensitive, "slices": slices}


def _is_fairness(check: Mapping[str, Any]) -> bool:
    """Whether a check is a fairness gate's: its gate reads ``gates[N] fairness ...`` (gates.describe)."""
    return bool(re.match(r"^gates\[\d+\] fairness ", check["gate"]))


def _approved(check: Mapping[str, Any], approval: Mapping[str, Any] | None) -> bool:
    """Whether a reviewer's approval covers a failed check (one listing no checks covers them all)."""
    if not approval:
        return False
    return any((c["gate"], c["slice"], c["metric"]) == (check["gate"], check["slice"], check["metric"])
               for c in approval["failed_checks"]) or not approval["failed_checks"]


def _considerations(people, checks, slices, evaluation, attributions, features, approval) -> dict:
    ethical = [{"name": str(e.get("name", "")), "mitigation": e.get("mitigation"), "source": "people"}
               if isinstance(e, Mapping) else {"name": str(e), "mitigation": None, "source": "people"}
               for e in people.get("ethical_considerations") or []]
    gates: dict[str, list[dict]] = {}
    for check in checks:
        if _is_fairness(check):
            gates.setdefault(check["gate"], []).append(check)
    fairness = []
    for gate, gate_checks in gates.items():
        failed = [c for c in gate_checks if c["status"] == _FAILED]
        outcome = (_PASSED if not failed else
                   _OVERRIDDEN if all(_approved(c, approval) for c in failed) else _FAILED)
        fairness.append({"gate": gate, "checks": len(gate_checks), "failed": len(failed),
                         "insufficient": sum(c["status"] == _INSUFFICIENT for c in gate_checks),
                         "outcome": outcome})
        ethical.append({"name": gate,
                        "mitigation": f"checked at push on {len(gate_checks)} group comparison(s): "
                                      + ("all passed" if not failed else
                                         f"{len(failed)} failed ({'; '.join(_check_text(c) for c in failed)})")
                                      + ("" if outcome != _OVERRIDDEN else
                                         f"; shipped by reviewer override ({approval['by'] or NOT_RECORDED})"),
                        "source": "run"})
    sensitive = list(features.get("sensitive") or [])
    if sensitive and not gates:
        ethical.append({"name": "no fairness gate", "mitigation": "the sensitive features ("
                        + ", ".join(sensitive) + ") were sliced and reported, but no fairness gate compared their "
                        "groups: nothing blocked the push on them", "source": "run"})
    if not sensitive:
        ethical.append({"name": "no sensitive features", "mitigation": "features.sensitive is empty: no group of "
                        "people was sliced or compared", "source": "run"})
    for entry in (attributions or {}).get("sensitive", []):
        proxies = ", ".join(f"{p['feature']} ({p['measure'] or 'association'} {_figure(p['association'])})"
                            for p in entry["proxies"])
        ethical.append({"name": f"the model's use of {entry['feature']}",
                        "mitigation": f"{_percent(entry['share'])} of the permutation importance"
                                      + (f" (rank {entry['rank']})" if entry["rank"] is not None else "")
                                      + (f"; features associated with it, which can stand in for it: {proxies}"
                                         if proxies else "; no feature found associated with it"),
                        "source": "run"})
    return {"ethical_considerations": ethical, "fairness_gates": fairness,
            "limitations": [{"text": text, "kind": "stated", "source": "people", "recommendation": None}
                            for text in _texts(people.get("limitations"))]
                           + _caveats(checks, slices, evaluation, approval)}


def _check_text(check: Mapping[str, Any]) -> str:
    value = _figure(check["value"])
    return f"{check['slice']}: {check['metric']} {value}" + (f" vs {check['bound']}" if check["bound"] else "")


def _caveats(checks, slices, evaluation, approval) -> list[dict]:
    caveats = []
    minimum = evaluation.get("min_slice_size")
    for row in slices:
        if row["insufficient"]:
            caveats.append({"kind": _INSUFFICIENT, "source": "run", "text": (
                f"slice {row['slice']} has {_count(row['examples'])} examples, fewer than min_slice_size "
                f"{minimum if minimum is not None else NOT_RECORDED}: its figures are reported but not judged"),
                "recommendation": f"evaluate on more examples of {row['slice']} before relying on the model for it"})
    for row in slices:
        wide = [m for m in row["metrics"] if m["wide"]]
        if wide:
            caveats.append({"kind": "interval too wide", "source": "run", "text": (
                f"slice {row['slice']}: the intervals of " + ", ".join(
                    f"{m['key']} ({_figure(m['value'])} {_interval_text(m['interval'])})" for m in wide)
                + " are too wide to judge"),
                "recommendation": f"do not read these figures of {row['slice']} as settled; a larger evaluation "
                                  "split narrows them"})
    for check in checks:
        if check["status"] != _FAILED:
            continue
        if _approved(check, approval):
            caveats.append({"kind": "failed check approved", "source": "run", "text": (
                f"{check['gate']} failed on {_check_text(check)} and was shipped by reviewer override "
                f"({approval['by'] or NOT_RECORDED}, {approval['at'] or NOT_RECORDED}: "
                f"{approval['reason'] or 'no reason recorded'})"),
                "recommendation": f"watch {check['slice']} in production (sluiceway monitor) and fix the cause "
                                  "before the next version"})
        else:
            caveats.append({"kind": "failed check", "source": "run",
                            "text": f"{check['gate']} failed on {_check_text(check)}, and no approval is recorded",
                            "recommendation": "find out how this version was pushed with a failed check"})
    if evaluation.get("baseline_problem"):
        caveats.append({"kind": "no baseline comparison", "source": "run",
                        "text": f"the serving model was not compared with this one: {evaluation['baseline_problem']}",
                        "recommendation": None})
    return caveats


# -- the page ---------------------------------------------------------------------------------------------------


def _figure(value: Any) -> str:
    """A figure as the page shows it: 4 decimals, thousands separated when large; "-" when missing."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else ("yes" if value else "no")
    if not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or (abs(value) >= 1000 and float(value).is_integer()):
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4f}"


def _interval_text(interval: Any) -> str:
    if not interval:
        return ""
    return f"[{_figure(interval[0])}, {_figure(interval[1])}]"


def _count(value: Any) -> str:
    """A count (examples, rows), which metrics.json may hold as a float."""
    return NOT_RECORDED if _finite(value) is None else f"{int(value):,}"


def _percent(share: Any) -> str:
    return NOT_RECORDED if _finite(share) is None else f"{100 * share:.1f}%"


def _text(value: Any) -> str:
    """A recorded value that may be missing: itself, or "not recorded"."""
    return NOT_RECORDED if value is None or value == "" else str(value)


def _short(value: Any, length: int = 24) -> str:
    text = str(value)
    return text if len(text) <= length else text[:length - 1] + "\u2026"


_COLUMNS_PER_TABLE = 8  # at most, per table of slices, so that a landscape page holds one


def _tables(card: Mapping[str, Any]) -> dict:
    """The per-slice tables: the metrics in groups of columns, each slice's figure under each, and the
    headline metrics of the slices the serving model was also evaluated on."""
    keys = [m["key"] for m in (card.get("metrics") or {}).get("reported") or [] if m["key"] != "example_count"]
    rows = (card.get("quantitative_analyses") or {}).get("slices") or []
    by_slice = [(row, {m["key"]: m for m in row["metrics"]}) for row in rows]
    size = math.ceil(len(keys) / math.ceil(len(keys) / _COLUMNS_PER_TABLE)) if keys else 1  # tables of even widths
    groups = [keys[i:i + size] for i in range(0, len(keys), size)]
    slices = [{"columns": group, "rows": [{"row": row, "cells": [figures.get(key) for key in group]}
                                          for row, figures in by_slice]} for group in groups]
    headlines = metric_table.HEADLINES.get((card.get("metrics") or {}).get("task"), ())
    compared = [{"slice": row["slice"], "key": key, "value": figures[key]["value"],
                 "baseline": figures[key]["baseline"],
                 "change": (figures[key]["value"] - figures[key]["baseline"])
                 if figures[key]["value"] is not None and figures[key]["baseline"] is not None else None}
                for row, figures in by_slice for key in headlines
                if key in figures and figures[key]["baseline"] is not None]
    return {"slices": slices, "compared": compared}


_BAR_WIDTH, _LABEL_WIDTH, _ROW_HEIGHT = 360, 190, 20


def _charts(card: Mapping[str, Any]) -> dict:
    """The geometry of the page's bar charts (numbers and labels; the template draws them): the first
    headline metric per slice with its interval, and the features' shares of the attributions."""
    charts: dict[str, Any] = {"metric": None, "attributions": None}
    analyses = card.get("quantitative_analyses") or {}
    task = (card.get("metrics") or {}).get("task")
    rows = analyses.get("slices") or []
    keys = {m["key"] for r in rows for m in r["metrics"] if m["value"] is not None}
    key = next((k for k in metric_table.HEADLINES.get(task, ()) if k in keys), None)
    if key is not None:
        charts["metric"] = _metric_chart(key, rows)
    attributions = analyses.get("attributions")
    if attributions and attributions.get("features"):
        sensitive = {s["feature"] for s in attributions.get("sensitive") or []}
        shown = attributions["features"][:TOP_FEATURES]
        top = max([f["share"] or 0.0 for f in shown] + [1e-12])
        charts["attributions"] = {
            "width": _LABEL_WIDTH + _BAR_WIDTH + 70, "height": _ROW_HEIGHT * len(shown) + 10,
            "label_width": _LABEL_WIDTH,
            "bars": [{"label": f["feature"], "y": 5 + i * _ROW_HEIGHT, "length": _BAR_WIDTH * (f["share"] or 0.0) / top,
                      "text": _percent(f["share"]), "sensitive": f["feature"] in sensitive}
                     for i, f in enumerate(shown)]}
    return charts


def _metric_chart(key: str, rows: Iterable[Mapping[str, Any]]) -> dict:
    points = []
    for row in rows:
        figure = next((m for m in row["metrics"] if m["key"] == key), None)
        if figure is not None and figure["value"] is not None:
            points.append((row, figure))
    values = [f["value"] for _, f in points] + [f["interval"][1] for _, f in points if f["interval"]]
    low = min([0.0] + [f["value"] for _, f in points] + [f["interval"][0] for _, f in points if f["interval"]])
    high = max(values + [1e-12])
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return _LABEL_WIDTH + _BAR_WIDTH * (value - low) / span

    bars = []
    for index, (row, figure) in enumerate(points):
        interval = figure["interval"]
        bars.append({"label": row["slice"], "y": 5 + index * _ROW_HEIGHT, "x0": x(max(low, 0.0)),
                     "length": x(figure["value"]) - x(max(low, 0.0)),
                     "low": x(interval[0]) if interval else None, "high": x(interval[1]) if interval else None,
                     "text": _figure(figure["value"]) + (f" {_interval_text(interval)}" if interval else ""),
                     "state": "insufficient" if row["insufficient"] else "wide" if figure["wide"] else ""})
    return {"key": key, "width": _LABEL_WIDTH + _BAR_WIDTH + 180, "height": _ROW_HEIGHT * len(bars) + 10,
            "label_width": _LABEL_WIDTH, "bars": bars, "text_x": _LABEL_WIDTH + _BAR_WIDTH + 8}


# -- validation -------------------------------------------------------------------------------------------------

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


def _json_path(path: Iterable[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _described(instance: Any) -> str:
    shown = json.dumps(instance, default=str)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{_JSON_TYPES.get(type(instance), type(instance).__name__)} ({shown})"


def _expected(error) -> str:
    """What the schema expected where ``error`` is, in words."""
    kind, rule = error.validator, error.validator_value
    if kind == "type":
        types = [rule] if isinstance(rule, str) else list(rule)
        names = {"object": "an object", "array": "an array", "string": "a string", "number": "a number",
                 "integer": "an integer", "boolean": "a boolean", "null": "null"}
        return f"expected {' or '.join(names.get(t, t) for t in types)}, got {_described(error.instance)}"
    if kind == "required":
        missing = [name for name in rule if name not in error.instance]
        return "missing " + ", ".join(f"'{name}'" for name in missing) + " (required)"
    if kind == "additionalProperties":
        allowed = set((error.schema.get("properties") or {}))
        unknown = sorted(set(error.instance) - allowed)
        return ("unknown key " + ", ".join(f"'{name}'" for name in unknown)
                + f"; expected only: {', '.join(sorted(allowed))}")
    if kind == "enum":
        return f"expected one of {', '.join(json.dumps(v) for v in rule)}, got {_described(error.instance)}"
    if kind == "const":
        return f"expected {json.dumps(rule)}, got {_described(error.instance)}"
    if kind in ("minItems", "maxItems"):
        return f"expected {'at least' if kind == 'minItems' else 'at most'} {rule} items, got {len(error.instance)}"
    if kind == "minimum":
        return f"expected a number >= {rule}, got {_described(error.instance)}"
    return f"expected {kind} {json.dumps(rule, default=str)}: {error.message}"


def _non_finite(value: Any, path: tuple) -> list[tuple[str, Any]]:
    if isinstance(value, float) and not math.isfinite(value):
        return [(_json_path(path), value)]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _non_finite(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, (*path, i))]
    return []


# -- the schema -------------------------------------------------------------------------------------------------

_STRING, _NUMBER, _INTEGER, _BOOLEAN = {"type": "string"}, {"type": "number"}, {"type": "integer"}, {"type": "boolean"}


def _or_null(schema: dict) -> dict:
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


def _object(description: str, properties: dict[str, dict]) -> dict:
    """An object with exactly these keys, each required (a missing value is ``null`` or ``[]``)."""
    return {"type": "object", "description": description, "required": list(properties), "properties": properties,
            "additionalProperties": False}


def _array(items: dict, description: str = "") -> dict:
    return {"type": "array", "items": items, **({"description": description} if description else {})}


def _described_as(schema: dict, description: str) -> dict:
    return {**schema, "description": description}


def _check_schema(description: str) -> dict:
    return _object(description, {
        "gate": _described_as(_STRING, "the gate as declared, with its index: gates[2] fairness ..."),
        "slice": _STRING, "metric": _STRING, "value": _or_null(_NUMBER), "bound": _STRING,
        "baseline": _described_as(_or_null(_NUMBER), "the serving model's value (no_regression gates)"),
        "status": _described_as(_STRING, "pass, fail, insufficient data or no baseline"),
        "detail": _STRING, "decided_by": _described_as(_or_null(_STRING), "TFMA or sluiceway"),
        "judged": _described_as(_or_null(_STRING), "what was compared with the bound: value, lower bound, upper "
                                                   "bound or significant gap")})


def _files_schema(description: str) -> dict:
    return _array(_object("a file read and its content's SHA-256", {"path": _STRING, "sha256": _or_null(_STRING)}),
                  description)


def _feature_share_schema() -> dict:
    return _object("a feature's permutation importance and its share of the total",
                   {"feature": _STRING, "importance": _or_null(_NUMBER), "share": _or_null(_NUMBER)})


def _dataset_schema(description: str) -> dict:
    number = _or_null(_NUMBER)
    return _object(description, {
        "split": _STRING,
        "rows": _or_null(_INTEGER),
        "spans": _array(_or_null(_INTEGER), "the span numbers read (the splits are cut from the same spans)"),
        "files": _files_schema("the data files read"),
        "features": _array(_object("a feature of the schema", {
            "name": _STRING, "type": _or_null(_STRING), "role": _or_null(_STRING)})),
        "statistics": _array(_object("a feature's statistics in this split", {
            "name": _STRING, "type": _or_null(_STRING), "missing": number, "mean": number, "std": number,
            "min": number, "median": number, "max": number, "unique": _or_null(_INTEGER),
            "top": _array(_object("a frequent value", {"value": _STRING, "count": number}))})),
    })


def card_schema() -> dict:
    """The JSON Schema (draft 2020-12) of ``model_card.json``; ``schemas/model_card.schema.json`` is its text."""
    strings = _array(_STRING)
    number = _or_null(_NUMBER)
    text = _or_null(_STRING)
    model_details = _object("who made the model, which version it is, and where it came from", {
        "name": _described_as(_STRING, "the pipeline's name"),
        "overview": text,
        "version": _object("the pushed version", {"number": _or_null(_INTEGER),
                                                  "pushed_at": _described_as(text, "UTC, ISO 8601")}),
        "model_fingerprint": _described_as(text, "a hash of what the model computes with"),
        "owners": _array(_object("an owner", {"name": _STRING, "contact": text})),
        "references": strings, "licenses": strings, "citations": strings,
        "lineage": _object("the run that made and pushed the version", {
            "run": text,
            "spans": _array(_object("a span of the data", {
                "number": _or_null(_INTEGER), "source": text, "rows": _or_null(_INTEGER),
                "files": _files_schema("its files")})),
            "data_files": _files_schema("every data file the run read"),
            "config_sha256": text, "code_version": text, "model_sha256": text,
            "replaced": _or_null(_object("the version this one replaced (the serving model at evaluation)",
                                         {"version": _or_null(_INTEGER), "uri": text})),
            "triggered_by": _or_null(_object("what started the run (a monitor run's verdict)",
                                             {"run": text, "verdict": text, "reasons": text})),
            "serving_check": _or_null(_object("the InfraValidator's serving check", {
                "checks": _INTEGER, "failed": _INTEGER, "load_seconds": number, "p99_ms": number})),
        }),
        "approval": _or_null(_object("a reviewer's override that shipped a model a gate blocked", {
            "by": text, "at": text, "reason": text, "run": text,
            "failed_checks": _array(_check_schema("a failed check the reviewer approved"))})),
    })
    figure = _object("a metric's value on the slice", {
        "key": _described_as(_STRING, "as in metrics.json: auc, positive_rate@0.5, precision[high]"),
        "value": number,
        "interval": _or_null({"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2,
                              "description": "[low, high]"}),
        "wide": _described_as(_BOOLEAN, "the interval is too wide to judge"),
        "baseline": _described_as(number, "the serving model's value on the slice")})
    schema = _object("a model card of a version sluiceway pushed (sections after Mitchell et al., 2019)", {
        "$schema": {"const": SCHEMA_ID},
        "model_details": model_details,
        "intended_use": _object("what the model is for, according to its owners", {
            "primary_uses": strings, "primary_users": strings, "out_of_scope_uses": strings}),
        "factors": _object("the groups the model was evaluated on", {
            "sensitive_features": strings,
            "slicings": _array(strings, "the feature combinations sliced by"),
            "slices": _array(_object("a slice evaluated", {
                "slice": _STRING, "features": strings, "examples": number, "insufficient": _BOOLEAN}))}),
        "metrics": _object("the metrics reported and how their intervals were computed", {
            "task": text, "split": text, "decision_thresholds": _array(_NUMBER), "min_slice_size": _or_null(_INTEGER),
            "intervals": _or_null(_object("the intervals' computation", {"method": text, "level": number})),
            "reported": _array(_object("a metric", {
                "key": _STRING, "name": _STRING, "meaning": text, "direction": text, "decision_threshold": number,
                "interval_method": text}))}),
        "training_data": _dataset_schema("the data the model was trained on"),
        "evaluation_data": _dataset_schema("the data the model was evaluated on"),
        "model_parameters": _object("what the model is and how it was trained", {
            "task": text, "label": text,
            "positive": {"type": ["string", "number", "boolean", "null"]},
            "features": _object("the model's inputs", {"numeric": strings, "categorical": strings}),
            "sensitive_features": strings, "model_type": text, "family": text,
            "hyperparameters": {"type": ["object", "null"]}}),
        "quantitative_analyses": _object("the model's figures per slice, its gate checks and attributions", {
            "slices": _array(_object("a slice's figures", {
                "slice": _STRING, "features": strings, "examples": number, "insufficient": _BOOLEAN,
                "metrics": _array(figure)})),
            "baseline": _object("the serving model it was compared with", {
                "model": text, "problem": text, "compared": _BOOLEAN}),
            "gate_checks": _array(_check_schema("a gate check")),
            "attributions": _or_null(_object("which features the model relies on", {
                "method": text, "loss": text, "examples": _or_null(_INTEGER), "repeats": _or_null(_INTEGER),
                "seed": _or_null(_INTEGER), "baseline_loss": number, "note": text,
                "features": _array(_feature_share_schema()),
                "sensitive": _array(_object("a sensitive feature's part in the model", {
                    "feature": _STRING, "share": number, "rank": _or_null(_INTEGER), "importance": number,
                    "proxies": _array(_object("a feature associated with it", {
                        "feature": _STRING, "association": number, "measure": text, "share": number}))})),
                "slices": _array(_object("a slice's most important features", {
                    "feature": _STRING, "slice": _STRING, "examples": number, "insufficient": _BOOLEAN,
                    "top_features": _array(_feature_share_schema())}))})),
        }),
        "considerations": _object("ethical considerations, limitations and recommendations", {
            "ethical_considerations": _array(_object("a consideration and its mitigation", {
                "name": _STRING, "mitigation": text, "source": {"enum": ["people", "run"]}})),
            "fairness_gates": _array(_object("a fairness gate's outcome", {
                "gate": _STRING, "checks": _INTEGER, "failed": _INTEGER, "insufficient": _INTEGER,
                "outcome": _STRING})),
            "limitations": _array(_object("a limitation or caveat, with a recommendation", {
                "text": _STRING, "kind": _STRING, "source": {"enum": ["people", "run"]},
                "recommendation": text}))}),
        "empty_sections": _array(_object("a model_card field nobody filled", {
            "field": {"enum": list(PEOPLE_FIELDS)}, "section": _STRING})),
    })
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "sluiceway model card", **schema}


def render_schema() -> str:
    """The schema as the text committed in ``schemas/model_card.schema.json``."""
    return json.dumps(card_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render_schema(), end="")
