"""ExampleValidator: checks eval and test statistics against the schema and against train.

Schema checks are TFDV's (unexpected categorical values, missing features, wrong types ...). Drift
and skew between train and the other splits are measured with TFDV's comparators: L-infinity
distance for categorical features and Jensen-Shannon divergence for numeric ones, at the thresholds
of the ``validation`` section. A distance above its threshold is reported as drift only when a
two-sample test also finds it beyond sampling noise at the splits' sizes (``significance``: the
false-alarm rate per run is ``validation.drift.false_alarm_rate``); otherwise it is reported, with
the test, as sampling noise. A numeric feature whose cumulative distributions differ by more than
``numeric_ks_gap`` is drift too (when the test agrees): measured on a zero-inflated count, 65 %
zeros against 85 % gave TFDV JSDs of 0.05-0.17 over six seeds, while random splits of the 85 %
data gave 0.07-0.18, so the JSD threshold alone misses such a shift half of the time. With a
curated schema the train split is validated against it too.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Optional

from components.common.artifacts import is_curated, load_split_stats
from components.example_validator.significance import holm_adjusted, two_sample_test
from pipeline.config import SPLITS, ComparatorThresholds, FeaturesConfig, Section, ValidationConfig
from pipeline.errors import DataValidationError
from pipeline.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from pipeline.specs import ANOMALIES_FILE, ANOMALIES_SUMMARY_FILE, SCHEMA_FILE
from pipeline.table import markdown_table, text_table

ANOMALY_HEADERS = ("split", "feature", "anomaly", "description")
DRIFT_HEADERS = ("split", "feature", "measure", "value", "threshold", "test", "statistic", "p-value", "Holm p-value",
                 "decision")
# TFDV's measurement types whose verdict (an anomaly when above the threshold) is decided here
COMPARATOR_ANOMALIES = {"l infty": "COMPARATOR_L_INFTY_HIGH",
                        "jensen shannon divergence": "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"}
DRIFT, NOISE, WITHIN = "drift", "sampling noise", "within threshold"


@dataclass(frozen=True)
class Anomaly:
    """One problem in a split: TFDV's schema checks, and the drift/skew decided to be drift."""

    split: str
    feature: str
    anomaly: str
    description: str


@dataclass(frozen=True)
class DriftMeasure:
    """One comparator measurement between train and another split, and the decision on it.

    ``value`` is TFDV's distance; ``test`` the two-sample test (``KS`` or ``chi-square``), its
    ``statistic`` (KS: the least the cumulative distributions differ by somewhere), ``p_value`` and
    ``holm_p_value`` (corrected over every comparison of the run), which is compared
    with the false-alarm rate. ``decision`` is ``drift``, ``sampling noise`` or ``within threshold``;
    ``note`` says how it was reached.
    """

    split: str
    feature: str
    measure: str
    value: float
    threshold: float
    test: str = ""
    statistic: Optional[float] = None
    p_value: Optional[float] = None
    holm_p_value: Optional[float] = None
    decision: str = WITHIN
    note: str = ""


@dataclass(frozen=True)
class ValidationResult:
    anomalies: list[Anomaly]
    measures: list[DriftMeasure]

    def table(self) -> str:
        return text_table(ANOMALY_HEADERS, [(a.split, a.feature, a.anomaly, a.description) for a in self.anomalies],
                          max_width=90)

    @property
    def dismissed(self) -> list[DriftMeasure]:
        """Distances above their threshold that the test found within sampling noise."""
        return [m for m in self.measures if m.decision == NOISE]


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs ExampleValidator as a pipeline step; see ``run_example_validator``. Returns its figures.

    Raises:
        DataValidationError: Anomalies were found and ``validation.on_anomaly`` is ``fail``; the
            outputs are complete when it is raised.
    """
    validation: ValidationConfig = config["validation"]
    result = run_example_validator(inputs["statistics"], inputs["schema"], outputs["anomalies"],
                                   outputs["anomalies_report"], validation, config["features"])
    if result.dismissed:
        progress(f"{len(result.dismissed)} distance(s) above the threshold are within sampling noise at these "
                 "sample sizes (not drift): " + ", ".join(
                     f"{m.feature} ({m.split}, {m.value:.4g} > {m.threshold:g}, {m.test} p={m.p_value:.2g})"
                     for m in result.dismissed))
    if result.anomalies:
        count = len(result.anomalies)
        message = (f"{count} data anomal{'y' if count == 1 else 'ies'} found "
                   f"(validation.on_anomaly: {validation.on_anomaly}):\n{result.table()}")
        drift = [m for m in result.measures if m.decision == DRIFT]
        if drift:
            message += "\nDrift/skew found (TFDV's distance, and why it is not sampling noise):\n" + "\n".join(
                f"  {m.feature} ({m.split}): {m.measure} {m.value:.4g}, threshold {m.threshold:g}; {m.note}"
                for m in drift)
        if validation.on_anomaly == "fail":
            raise DataValidationError(message + "\nThe run stops before training. Fix the data, curate the schema "
                                      "(validation.schema), loosen validation.drift, or set validation.on_anomaly: warn.")
        progress("WARNING: " + message)
    return {"anomalies": len(result.anomalies), "comparisons": len(result.measures)}


def run_example_validator(statistics_dir: str, schema_dir: str, anomalies_dir: str, report_path: str,
                          validation: ValidationConfig, features: FeaturesConfig) -> ValidationResult:
    """Validates the splits' statistics.

    Args:
        statistics_dir: An ExampleStatistics artifact.
        schema_dir: A Schema artifact.
        anomalies_dir: Output ExampleAnomalies artifact: ``Split-<name>/SchemaDiff.pb`` (TFDV's
            Anomalies proto, with the drift/skew verdicts decided here) per validated split and
            ``anomalies.json`` (every anomaly and drift measurement with its test and decision).
        report_path: Output Markdown file: the same as readable tables.
        validation: The ``validation`` section (thresholds, false-alarm rates, curated schema).
        features: The ``features`` section (which features are numeric or categorical).

    Returns:
        The anomalies and drift/skew measurements.
    """
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(os.path.join(schema_dir, SCHEMA_FILE))
    _add_comparators(schema, features, validation.drift, "drift_comparator")
    if validation.skew is not None:
        _add_comparators(schema, features, validation.skew, "skew_comparator")
    train = load_split_stats(statistics_dir, SPLITS[0])
    # Inferred from train, the schema trivially holds there; a curated one may not.
    splits = SPLITS if is_curated(schema_dir) else SPLITS[1:]
    results = {}
    measured = []  # (split, its statistics, drift or skew, TFDV's measurement, feature path)
    for split in splits:
        compare = split != SPLITS[0]
        stats = load_split_stats(statistics_dir, split)
        # L-infinity and JSD are symmetric, so the split may stand in for "serving" data as well
        results[split] = tfdv.validate_statistics(
            stats, schema, previous_statistics=train if compare else None,
            serving_statistics=train if compare and validation.skew is not None else None)
        for info in results[split].drift_skew_info:
            for kind, items in (("drift", info.drift_measurements), ("skew", info.skew_measurements)):
                measured += [(split, stats, kind, m, info.path) for m in items]
    measures = _decide(measured, train, {kind: thresholds for kind, thresholds in
                                         (("drift", validation.drift), ("skew", validation.skew)) if thresholds})
    anomalies: list[Anomaly] = []
    for split in splits:
        result = results[split]
        _replace_comparator_verdicts(result, [m for m in measures if m.split == split])
        os.makedirs(os.path.join(anomalies_dir, f"Split-{split}"), exist_ok=True)
        atomic_write_bytes(os.path.join(anomalies_dir, f"Split-{split}", ANOMALIES_FILE), result.SerializeToString())
        anomalies += _anomalies(split, result)
    result = ValidationResult(anomalies, measures)
    rates = {kind: thresholds.false_alarm_rate for kind, thresholds in
             (("drift", validation.drift), ("skew", validation.skew)) if thresholds is not None}
    atomic_write_json(os.path.join(anomalies_dir, ANOMALIES_SUMMARY_FILE),
                      {"anomalies": [asdict(a) for a in anomalies], "measures": [asdict(m) for m in measures],
                       "false_alarm_rate": rates, "validated_splits": list(splits)}, indent=2)
    _write_report(result, report_path, splits, rates)
    return result


def validate_against_train(train, stats, schema, thresholds: ComparatorThresholds, features: FeaturesConfig,
                           name: str, per_feature: Mapping[str, float] | None = None):
    """Validates one data set's statistics against a schema and a train split's statistics: TFDV's
    schema checks, and every feature's drift distance decided as ``run_example_validator`` decides
    (threshold, then the two-sample test with Holm's correction over this data set's features).

    Args:
        train: The train split's ``DatasetFeatureStatisticsList``.
        stats: The statistics of the data judged.
        schema: The schema (a ``Schema`` proto; not changed).
        thresholds: Drift thresholds and false-alarm rate.
        features: The ``features`` section.
        name: What the data set is called in the results (the ``split`` of each anomaly and measure).
        per_feature: Distance thresholds of single features, overriding ``thresholds``.

    Returns:
        TFDV's Anomalies proto (with the drift verdicts decided here), the anomalies and every
        drift measurement.
    """
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    judged = schema_pb2.Schema()
    judged.CopyFrom(schema)
    _add_comparators(judged, features, thresholds, "drift_comparator", per_feature)
    result = tfdv.validate_statistics(stats, judged, previous_statistics=train)
    measured = [(name, stats, "drift", m, info.path) for info in result.drift_skew_info
                for m in info.drift_measurements]
    measures = _decide(measured, train, {"drift": thresholds})
    _replace_comparator_verdicts(result, measures)
    return result, _anomalies(name, result), measures


def _decide(measured, train, thresholds: Mapping[str, Optional[ComparatorThresholds]]) -> list[DriftMeasure]:
    """Each TFDV measurement with its test and decision. The p-values of a kind (drift, skew) over
    every feature and split are corrected together (Holm) and compared with that kind's
    ``false_alarm_rate``."""
    train_features = _by_path(train)
    tests = []
    for split, stats, kind, m, path in measured:
        key, other = tuple(path.step), _by_path(stats).get(tuple(path.step))
        if _measure_name(m) not in COMPARATOR_ANOMALIES:
            tests.append((None, "no test for this measure"))
        elif key not in train_features or other is None:
            tests.append((None, "a split has no statistics of this feature"))
        else:
            tests.append(two_sample_test(train_features[key], other))
    adjusted: list[Optional[float]] = [None] * len(measured)
    family = {}
    for kind in thresholds:
        members = [i for i, (entry, (test, _)) in enumerate(zip(measured, tests)) if entry[2] == kind and test]
        family[kind] = len(members)
        for i, value in zip(members, holm_adjusted([tests[i][0].p_value for i in members])):
            adjusted[i] = value
    measures = []
    for (split, _, kind, m, path), (test, why), holm_p in zip(measured, tests, adjusted):
        section = thresholds[kind]
        rate = section.false_alarm_rate
        gap_limit = section.numeric_ks_gap if test and test.name == "KS" and rate is not None else None
        by_gap = gap_limit is not None and test.statistic > gap_limit
        if m.value <= m.threshold and not by_gap:
            decision, note = WITHIN, ""
        elif rate is None:
            decision, note = DRIFT, f"validation.{kind}.false_alarm_rate is null: the threshold alone decides"
        elif test is None:
            decision, note = DRIFT, f"{why}: the threshold alone decides"
        else:
            decision = DRIFT if holm_p <= rate else NOISE
            note = ("" if m.value > m.threshold else
                    f"below the threshold, but the cumulative distributions differ by at least {test.statistic:.3g} "
                    f"(above validation.{kind}.numeric_ks_gap {gap_limit:g}); ")
            note += (f"{test.name} test of {test.train_count:,.0f} train vs {test.other_count:,.0f} {split} values: "
                     f"p = {test.p_value:.2g}, {holm_p:.2g} after Holm's correction over {family[kind]} comparisons, "
                     f"{'at most' if decision == DRIFT else 'above'} validation.{kind}.false_alarm_rate {rate:g}"
                     + ("" if decision == DRIFT else ": within sampling noise at these sample sizes"))
        measures.append(DriftMeasure(
            split, ".".join(path.step), f"{kind} {_measure_name(m)}", round(m.value, 6), m.threshold,
            test.name if test else "", float(f"{test.statistic:.6g}") if test else None,
            float(f"{test.p_value:.6g}") if test else None,
            float(f"{holm_p:.6g}") if holm_p is not None else None, decision, note))
    return measures


def _measure_name(measurement) -> str:
    return measurement.Type.Name(measurement.type).lower().replace("_", " ")


def _by_path(stats_list) -> dict:
    if not stats_list.datasets:
        return {}
    return {tuple(f.path.step): f for f in stats_list.datasets[0].features}


def _replace_comparator_verdicts(result, measures: list[DriftMeasure]) -> None:
    """Swaps TFDV's threshold-only comparator anomalies in ``result`` (an Anomalies proto) for the
    decisions in ``measures``: only distances decided to be drift are anomalies."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    types = {anomalies_pb2.AnomalyInfo.Type.Value(name) for name in COMPARATOR_ANOMALIES.values()}
    changed = set()
    for feature in list(result.anomaly_info):
        info = result.anomaly_info[feature]
        kept = [r for r in info.reason if r.type not in types]
        if len(kept) != len(info.reason):
            changed.add(feature)
            del info.reason[:]
            info.reason.extend(kept)
            if not kept:
                del result.anomaly_info[feature]
    for m in measures:
        kind, what = m.measure.split(" ", 1)
        if m.decision != DRIFT or what not in COMPARATOR_ANOMALIES:
            continue
        info = result.anomaly_info[m.feature]
        if not info.HasField("path"):
            info.path.step.extend(m.feature.split("."))
            info.severity = anomalies_pb2.AnomalyInfo.ERROR
        against = "train (as serving data)" if kind == "skew" else "train"
        info.reason.add(type=anomalies_pb2.AnomalyInfo.Type.Value(COMPARATOR_ANOMALIES[what]),
                        short_description=f"High {what}",
                        description=f"{kind}: {what} between {m.split} and {against} is {m.value:.6g} "
                                    f"(threshold {m.threshold:g})" + (f"; {m.note}" if m.note else ""))
    for feature in changed | {m.feature for m in measures if m.decision == DRIFT}:
        if feature in result.anomaly_info:  # the feature's summary follows its reasons, as TFDV writes it
            info = result.anomaly_info[feature]
            several = len(info.reason) > 1
            info.short_description = "Multiple errors" if several else info.reason[0].short_description
            info.description = " ".join(r.description for r in info.reason) if several else info.reason[0].description


def _anomalies(split: str, result) -> list[Anomaly]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = [Anomaly(split, feature, anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                     reason.description or reason.short_description)
             for feature, info in sorted(result.anomaly_info.items()) for reason in info.reason]
    if result.HasField("dataset_anomaly_info"):
        found += [Anomaly(split, "(dataset)", anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                          reason.description or reason.short_description)
                  for reason in result.dataset_anomaly_info.reason]
    return found


def _add_comparators(schema, features: FeaturesConfig, thresholds: ComparatorThresholds, field: str,
                     per_feature: Mapping[str, float] | None = None) -> None:
    import tensorflow_data_validation as tfdv

    present = {f.name for f in schema.feature}
    per_feature = per_feature or {}
    for names, default, measure in ((features.categorical, thresholds.categorical_linf, "infinity_norm"),
                                    (features.numeric, thresholds.numeric_jsd, "jensen_shannon_divergence")):
        for name in names:
            threshold = per_feature.get(name, default)
            if name in present and threshold is not None:
                getattr(getattr(tfdv.get_feature(schema, name), field), measure).threshold = threshold


def _write_report(result: ValidationResult, report_path: str, splits: tuple[str, ...], rates: dict) -> None:
    lines = ["# Data validation", "", f"Validated splits: {', '.join(splits)}.", ""]
    if result.anomalies:
        lines += [f"## {len(result.anomalies)} anomalies", "",
                  markdown_table(ANOMALY_HEADERS, [(a.split, a.feature, a.anomaly, a.description)
                                                   for a in result.anomalies]), ""]
    else:
        lines += ["No anomalies.", ""]
    if result.measures:
        lines += ["## Distribution comparisons with train", "",
                  "The value is TFDV's distance. A value above its threshold (for a numeric feature also a KS "
                  "statistic, the least its cumulative distributions differ by somewhere, above numeric_ks_gap) is "
                  "drift only when the two-sample test (KS for numeric, chi-square for categorical features) finds "
                  "it beyond sampling noise: its p-value after Holm's correction over all comparisons is at most the "
                  "false-alarm rate per run ("
                  + ", ".join(f"{kind} {'off' if rate is None else f'{rate:g}'}" for kind, rate in rates.items())
                  + "); otherwise it is sampling noise.", "",
                  markdown_table(DRIFT_HEADERS, [
                      (m.split, m.feature, m.measure, f"{m.value:.4f}", f"{m.threshold:g}", m.test or "-",
                       "-" if m.statistic is None else f"{m.statistic:.3g}",
                       "-" if m.p_value is None else f"{m.p_value:.2g}",
                       "-" if m.holm_p_value is None else f"{m.holm_p_value:.2g}",
                       m.decision) for m in result.measures]), ""]
    os.makedirs(os.path.dirname(report_path) or ".", exist_ok=True)
    atomic_write_text(report_path, "\n".join(lines))
