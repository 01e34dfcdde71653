"""Checks on the data that TFDV's schema validation lets through, made from the split statistics
before anything is trained:

- a feature with one value in every train row, or missing in every train row, teaches the model
  nothing and makes it serve arbitrary scores for the values it never saw (``validation.on_constant``);
- a fairness gate's ``reference`` group that the data does not hold, or a gate/slice feature with no
  values, would only fail after training and evaluation: they are configuration errors naming the
  gate's YAML path, the value and the groups that exist;
- a group of a sensitive (or gated) feature seen in train with no example in the evaluated split
  is a group the fairness gates cannot judge: a warning naming it.

The functions read ``DatasetFeatureStatistics`` protos (TFDV's), so they are tested without Beam.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pipeline.config import EvaluatorConfig, FairnessGate, FeaturesConfig
from pipeline.errors import ConfigError, ConfigIssue

#: Shown instead of the YAML file's name: a component does not know which file its sections came from.
YAML = "the pipeline YAML"


@dataclass
class DataChecks:
    """What the checks found, as recorded in ``data_checks.json`` in the Schema artifact."""

    constant: dict[str, str] = field(default_factory=dict)  # feature -> its only value
    all_missing: list[str] = field(default_factory=list)
    absent_groups: dict[str, list[str]] = field(default_factory=dict)  # feature -> groups without eval examples
    split: str = "eval"

    def warnings(self) -> list[str]:
        return self.feature_warnings() + self.group_warnings()

    def feature_warnings(self) -> list[str]:
        """The constant and all-missing features (what ``validation.on_constant`` decides about)."""
        lines = []
        for name, value in self.constant.items():
            lines.append(f"feature '{name}' has one value in every train row ({value}): the model learns nothing "
                         "from it and serves arbitrary scores for other values; drop it from features or fix the data")
        return lines + self.missing_warnings()

    def missing_warnings(self) -> list[str]:
        return [f"feature '{name}' is missing in every train row: the model learns nothing from it; drop it from "
                "features or fix the data" for name in self.all_missing]

    def group_warnings(self) -> list[str]:
        lines = []
        for name, groups in self.absent_groups.items():
            for group in groups:
                lines.append(f"group {name}={group} has no {self.split} examples: the Evaluator cannot judge "
                             "it (fairness gates and slices leave it out)")
        return lines

    def as_dict(self) -> dict:
        return asdict(self)


def by_name(stats) -> dict[str, object]:
    """A split's ``DatasetFeatureStatistics``' features by name."""
    return {".".join(f.path.step) or f.name: f for f in stats.features}


def _common(feature):
    kind = feature.WhichOneof("stats")
    return getattr(feature, kind).common_stats if kind in ("num_stats", "string_stats") else None


def _present(feature) -> int:
    common = _common(feature)
    return int(common.num_non_missing) if common is not None else 0


def groups(feature) -> dict[str, int]:
    """A categorical feature's values with their example counts (TFDV's rank histogram, else its top values)."""
    if feature is None or feature.WhichOneof("stats") != "string_stats":
        return {}
    counts = {b.label: int(b.sample_count) for b in feature.string_stats.rank_histogram.buckets}
    return counts or {v.value: int(v.frequency) for v in feature.string_stats.top_values}


def constant_features(train, features: FeaturesConfig) -> tuple[dict[str, str], list[str]]:
    """Declared features with a single value in every train row that has one, and those missing in
    every train row (absent from the statistics, or never present)."""
    stats = by_name(train)
    constant: dict[str, str] = {}
    missing: list[str] = []
    for name in features.feature_names:
        feature = stats.get(name)
        if feature is None or _present(feature) == 0:
            missing.append(name)
        elif name in features.numeric:
            num = feature.num_stats
            if num.max == num.min:
                constant[name] = f"{num.min:g}"
        elif feature.string_stats.unique == 1:
            constant[name] = f"'{next(iter(groups(feature)), '?')}'"
    return constant, missing


def _shown(counts: dict[str, int]) -> str:
    return ", ".join(f"{value} ({count:,})" for value, count in sorted(counts.items())) or "none"


def gate_issues(train, evaluated, evaluator: EvaluatorConfig, features: FeaturesConfig) -> list[ConfigIssue]:
    """Gate and slice settings the data cannot satisfy: a fairness ``reference`` the data does not
    hold (in train or in the evaluated split), a gate or slice feature with no value in the
    evaluated split. Numeric (banded) features are left to the Evaluator."""
    train_stats, split_stats = by_name(train), by_name(evaluated)
    issues = []
    named: list[tuple[str, list[str]]] = [(f"evaluator.slices[{i}]", list(s)) for i, s in enumerate(evaluator.slices or [])]
    for index, gate in enumerate(evaluator.gates):
        where = f"evaluator.gates[{index}]"
        if isinstance(gate, FairnessGate):
            named.append((f"{where}.feature", [gate.feature]))
            if gate.class_name is not None and features.task == "multiclass":
                classes = groups(train_stats.get(features.label))
                if classes and gate.class_name not in classes:
                    issues.append(ConfigIssue(f"{where}.class", (
                        f"'{gate.class_name}' is not a class of the label {features.label} in the train split; "
                        f"expected one of its classes: {_shown(classes)}")))
            if gate.reference is not None and gate.feature in features.categorical:
                in_train = groups(train_stats.get(gate.feature))
                in_split = groups(split_stats.get(gate.feature))
                if gate.reference not in in_train and gate.reference not in in_split:
                    issues.append(ConfigIssue(f"{where}.reference", (
                        f"'{gate.reference}' is not a group of {gate.feature} in the data; expected one of the groups "
                        f"that exist (train split: {_shown(in_train)})")))
                elif gate.reference not in in_split:
                    issues.append(ConfigIssue(f"{where}.reference", (
                        f"'{gate.reference}' has no examples in the {evaluator.split} split (evaluator.split), so "
                        f"the gate could only fail after training; groups there: {_shown(in_split)}")))
        elif getattr(gate, "per", None):
            named.append((f"{where}.per", list(gate.per)))
    for where, names in named:
        empty = [n for n in names if n in features.categorical and not groups(split_stats.get(n))]
        if empty:
            issues.append(ConfigIssue(where, (
                f"{', '.join(empty)} has no value in the {evaluator.split} split (evaluator.split): there is "
                "nothing to slice by; expected a feature with values there")))
    return issues


def absent_groups(train, evaluated, evaluator: EvaluatorConfig, features: FeaturesConfig) -> dict[str, list[str]]:
    """Groups of the sensitive and fairness-gated categorical features seen in train that have no
    example in the evaluated split."""
    names = list(features.sensitive) + [g.feature for g in evaluator.gates if isinstance(g, FairnessGate)]
    train_stats, split_stats = by_name(train), by_name(evaluated)
    absent: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        if name not in features.categorical:
            continue
        in_split = groups(split_stats.get(name))
        gone = sorted(g for g in groups(train_stats.get(name)) if g not in in_split)
        if gone:
            absent[name] = gone
    return absent


def check(train, evaluated, evaluator: EvaluatorConfig, features: FeaturesConfig) -> DataChecks:
    """All of the above.

    Raises:
        ConfigError: A gate or slice names a group or feature the data does not hold.
    """
    issues = gate_issues(train, evaluated, evaluator, features)
    if issues:
        raise ConfigError(YAML, issues)
    constant, missing = constant_features(train, features)
    return DataChecks(constant=constant, all_missing=missing,
                      absent_groups=absent_groups(train, evaluated, evaluator, features), split=evaluator.split)
