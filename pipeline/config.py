"""The typed model of a pipeline YAML file.

One pydantic model per YAML section, all with ``extra="forbid"`` so a misspelt key is an error
rather than a silently ignored setting. ``pipeline.loader`` turns validation errors into messages
with the YAML path and the expected form; ``expected(...)`` attaches that form to a field.

Relative paths (``pipeline.root``, ``data.source``, ``validation.schema``) are resolved against the
folder of the YAML file, passed as the validation context ``{"base_dir": ...}``. Paths with a URL
scheme (``gs://...``) are kept as written.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, TypeAdapter,
                      ValidationError, ValidationInfo, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from components.evaluator import metrics as evaluator_metrics
from pipeline.specs import DECLARED

SPLITS = ("train", "eval", "test")


class Expected:
    """Field metadata: how the expected value is described in error messages."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Expected({self.text!r})"


def _resolve_path(value: str, info: ValidationInfo) -> str:
    if "://" in value or not info.context or "base_dir" not in info.context:
        return value
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return os.path.normpath(expanded)
    return os.path.normpath(os.path.join(info.context["base_dir"], expanded))


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


PathStr = Annotated[
    str, AfterValidator(_non_empty), AfterValidator(_resolve_path), Expected("a path (relative to this file) or URL")
]
Name = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128),
    Expected("a name of letters, digits, '_', '.' or '-' (starting with a letter or digit)"),
]
ColumnName = Annotated[str, AfterValidator(_non_empty), Expected("a column name")]
Percent = Annotated[float, Field(strict=True, gt=0, lt=100), Expected("a number between 0 and 100")]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1), Expected("a number between 0 and 1")]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


LOCATED_ERROR = "config_problem"  # pydantic error type of a problem raised at its YAML path: printed as is
Loc = tuple[Union[str, int], ...]


class _Problems:
    """Problems found by a check, one per YAML path (several at one path are joined), raised as
    one pydantic error per path so each is reported where it is."""

    def __init__(self) -> None:
        self.by_loc: dict[Loc, list[str]] = {}

    def add(self, loc: Loc, message: str) -> None:
        messages = self.by_loc.setdefault(tuple(loc), [])
        if message not in messages:
            messages.append(message)

    def raise_if_any(self, title: str) -> None:
        if self.by_loc:
            raise ValidationError.from_exception_data(title, [
                InitErrorDetails(type=PydanticCustomError(LOCATED_ERROR, "{message}", {"message": "; ".join(m)}),
                                 loc=loc, input=None)
                for loc, m in self.by_loc.items()])


class PipelineSection(Section):
    """Identity of the pipeline and where its runs are stored."""

    name: Name = Field(description="Pipeline name; runs go under <root>/<name>/.")
    root: PathStr = Field(
        "pipelines", validate_default=True,  # so the default, too, resolves against the YAML's folder
        description="Folder holding every run's outputs and the ML Metadata store.")


class SplitConfig(Section):
    """How ExampleGen splits rows. Ratios are percentages and must add up to 100."""

    train: Percent = Field(70.0, description="Share of rows in the train split, in percent.")
    eval: Percent = Field(15.0, description="Share of rows in the eval split, in percent.")
    test: Percent = Field(15.0, description="Share of rows in the test split, in percent.")
    key: Optional[ColumnName] = Field(
        None,
        description="Column whose value decides the split (for example an id). Without it the whole row is hashed.",
    )

    @model_validator(mode="after")
    def _sums_to_100(self) -> "SplitConfig":
        total = self.train + self.eval + self.test
        if abs(total - 100.0) > 1e-6:
            raise ValueError(
                f"train + eval + test must add up to 100, got {self.train:g} + {self.eval:g} + {self.test:g} = {total:g}"
            )
        return self


class CsvConfig(Section):
    """How CSV files are read, for files as other systems write them. The defaults read a plain
    comma-separated file with a header line."""

    delimiter: Annotated[str, Field(min_length=1, max_length=1), Expected("one character, e.g. ';' or '\\t'")] = Field(
        ",", description="The character between fields, e.g. ';' or '\\t'.")
    quote: Optional[Annotated[str, Field(min_length=1, max_length=1), Expected("one character, e.g. '\"'")]] = Field(
        '"', description="The character fields are quoted with; null: fields are never quoted.")
    skip_initial_space: bool = Field(
        False, description="Ignore spaces after a delimiter (for '; '-separated files).")
    trim_whitespace: bool = Field(
        False, description="Strip spaces and tabs around every field (a value ' 42 ' reads as 42).")
    null_values: Optional[list[str]] = Field(
        None, description="Field values read as missing, e.g. ['?', 'NA', '']. Default: '', NA, N/A, NULL, null, NaN, "
                          "nan.")
    header: bool = Field(True, description="The first line names the columns; false: give them in 'columns'.")
    columns: Optional[list[ColumnName]] = Field(
        None, description="The column names in file order, for a file without a header line (header: false).")
    encoding: str = Field("utf-8", description="The files' text encoding, e.g. latin-1 or cp1252.")
    comment: Optional[Annotated[str, Field(min_length=1, max_length=1), Expected("one character, e.g. '#'")]] = Field(
        None, description="Lines starting with this character are skipped, e.g. '#'.")

    @model_validator(mode="after")
    def _header_or_columns(self) -> "CsvConfig":
        if not self.header and not self.columns:
            raise ValueError("header: false needs the column names: give columns: [name, ...] in file order")
        if self.header and self.columns:
            raise ValueError("columns names the columns of a file without a header line; with header: true the "
                             "header names them (set header: false, or remove columns)")
        if self.columns and len(set(self.columns)) != len(self.columns):
            duplicates = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise ValueError(f"columns lists {', '.join(duplicates)} more than once")
        if self.quote is not None and self.quote == self.delimiter:
            raise ValueError(f"quote and delimiter are both {self.delimiter!r}; expected two different characters")
        import codecs
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"encoding {self.encoding!r} is not a text encoding Python knows; expected e.g. "
                             "utf-8, latin-1 or cp1252") from None
        return self


class DataConfig(Section):
    """The data source ExampleGen reads."""

    source: PathStr = Field(description="A file, folder or glob: CSV (optionally .gz), Parquet, or TFRecord of tf.Example. "
                                        "It may hold {SPAN} once, where the data arrives in numbered spans (e.g. "
                                        "data/span-{SPAN}/*.csv): ExampleGen reads the latest data.window of them.")
    format: Literal["auto", "csv", "parquet", "tfrecord"] = Field(
        "auto", description="File format; 'auto' decides by file extension."
    )
    split: SplitConfig = Field(default_factory=SplitConfig)
    csv: CsvConfig = Field(default_factory=CsvConfig, description="How CSV files are read (delimiter, quoting, "
                                                                  "missing-value markers, header, encoding).")
    batch_rows: int = Field(65536, strict=True, ge=1024, le=1_048_576, description="Rows per record batch when reading.")
    non_finite: Literal["fail", "missing"] = Field(
        "fail", description="A numeric value that is inf, -inf or NaN: 'fail' stops ExampleGen with a data error naming "
        "the column and count; 'missing' reads it as a missing value (with a warning)."
    )
    window: int = Field(1, strict=True, ge=1, description="With {SPAN} in data.source: how many spans ExampleGen "
                                                          "reads, the highest-numbered ones.")

    @model_validator(mode="after")
    def _spans(self) -> "DataConfig":
        # the placeholder's text is also sources.SPAN (that module imports this one)
        problems = _Problems()
        count = self.source.count("{SPAN}")
        if count > 1:
            problems.add(("source",), f"holds {{SPAN}} {count} times; expected it at most once, where the span "
                                      "number stands (e.g. data/span-{SPAN}/*.csv)")
        if count == 0 and self.window > 1:
            problems.add(("window",), f"window {self.window} takes the latest spans of a data.source holding {{SPAN}}, "
                                      "and data.source has none; expected window: 1, or a source such as "
                                      "data/span-{SPAN}/*.csv")
        problems.raise_if_any(type(self).__name__)
        return self


TASKS = ("binary", "multiclass", "regression")


class FeaturesConfig(Section):
    """Which columns are the label and the features, and the task the label makes."""

    label: ColumnName = Field(description="Column holding the label.")
    task: Literal["binary", "multiclass", "regression"] = Field(
        "binary", description="'binary': the label is positive or not (features.positive); 'multiclass': each label "
                              "value is a class, the classes being the train split's values; 'regression': the label "
                              "is a number.")
    positive: Optional[Annotated[str | int | bool, Expected("the label value of the positive class (a string or "
                                                            "number)")]] = Field(
        None, description="Binary task: the label value that means the positive class; every other value is "
                          "negative. Not used by the other tasks."
    )
    numeric: list[ColumnName] = Field(default_factory=list, description="Numeric feature columns.")
    categorical: list[ColumnName] = Field(default_factory=list, description="Categorical (string) feature columns.")
    sensitive: list[ColumnName] = Field(
        default_factory=list, description="Features that are sensitive attributes: the Evaluator slices by them."
    )

    @property
    def positive_value(self) -> str:
        """The positive label as it appears in the data, as text (binary task)."""
        if self.positive is None:
            raise ValueError(f"features.positive is not set (task {self.task})")
        if isinstance(self.positive, bool):
            return "true" if self.positive else "false"
        return str(self.positive)

    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @model_validator(mode="after")
    def _consistent(self) -> "FeaturesConfig":
        problems = []
        if not self.numeric and not self.categorical:
            problems.append("declare at least one feature under 'numeric' or 'categorical'")
        for group in ("numeric", "categorical", "sensitive"):
            names = getattr(self, group)
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                problems.append(f"{group} lists {', '.join(duplicates)} more than once")
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            problems.append(f"{', '.join(both)} cannot be both numeric and categorical")
        if self.label in self.feature_names:
            problems.append(f"the label '{self.label}' cannot also be a feature")
        if self.task == "binary" and self.positive is None:
            problems.append("task binary needs positive: the label value of the positive class (e.g. positive: "
                            "\"yes\"); for a label with more than two classes set task: multiclass")
        if self.task != "binary" and self.positive is not None:
            problems.append(f"positive is not used by task {self.task} ("
                            + ("every label value seen in train is a class" if self.task == "multiclass"
                               else "the label is a number") + "): remove it")
        undeclared = [n for n in self.sensitive if n not in self.feature_names]
        if undeclared:
            problems.append(f"sensitive features must be declared as numeric or categorical: {', '.join(undeclared)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ComparatorThresholds(Section):
    """Thresholds of TFDV's distribution comparators between the train split and the others."""

    categorical_linf: Optional[Fraction] = Field(
        0.1, description="L-infinity distance threshold for categorical features (null disables)."
    )
    numeric_jsd: Optional[Fraction] = Field(
        0.1, description="Jensen-Shannon divergence threshold for numeric features (null disables)."
    )
    numeric_ks_gap: Optional[Fraction] = Field(
        0.1, description="A numeric feature is also drift when its cumulative distributions in the two splits differ "
                         "by more than this somewhere (and the test below finds it beyond noise): TFDV's JSD can stay "
                         "below its threshold for a real shift. Applies while numeric_jsd is set; null: the JSD "
                         "threshold alone."
    )
    false_alarm_rate: Optional[
        Annotated[float, Field(strict=True, gt=0, lt=1), Expected("a number between 0 and 1 (both excluded)")]
    ] = Field(
        0.01,
        description="A distance above its threshold is drift only if a test of the two samples (Kolmogorov-Smirnov "
                    "for numeric, chi-square for categorical features) also says it is beyond sampling noise at "
                    "their sizes; this is the chance, per run over all features and splits together (Holm), "
                    "that data drawn from one distribution is flagged. null: the threshold alone decides.",
    )


class ValidationConfig(Section):
    """Data validation with TFDV: schema source, drift/skew checks and what an anomaly does."""

    schema_path: Optional[PathStr] = Field(
        None, alias="schema", description="A curated schema.pbtxt. Without it the schema is inferred from train."
    )
    on_anomaly: Literal["fail", "warn"] = Field(
        "fail", description="'fail' stops the run before training when anomalies are found; 'warn' reports them and goes on."
    )
    on_constant: Literal["warn", "fail"] = Field(
        "warn", description="A feature with one value in every train row, or missing in every train row: 'warn' reports "
        "it and goes on; 'fail' stops SchemaGen with a data error naming the features."
    )
    drift: ComparatorThresholds = Field(
        default_factory=ComparatorThresholds,
        description="Drift comparators: train statistics against eval and test (TFDV drift_comparator).",
    )
    skew: Optional[ComparatorThresholds] = Field(
        None, description="Skew comparators: train against eval and test as serving data (TFDV skew_comparator); off by default."
    )


# Beam's runners by name (apache-beam 2.61's StandardOptions.ALL_KNOWN_RUNNERS without the test runners and the
# notebook-only InteractiveRunner); Beam also takes the lower-case name and the name without 'Runner'. Any other
# --runner value is imported as module.Class and called, so it is refused.
BEAM_RUNNERS = {
    "DirectRunner": "apache_beam.runners.direct.direct_runner.DirectRunner",
    "SwitchingDirectRunner": "apache_beam.runners.direct.direct_runner.SwitchingDirectRunner",
    "BundleBasedDirectRunner": "apache_beam.runners.direct.direct_runner.BundleBasedDirectRunner",
    "PrismRunner": "apache_beam.runners.portability.prism_runner.PrismRunner",
    "PortableRunner": "apache_beam.runners.portability.portable_runner.PortableRunner",
    "FlinkRunner": "apache_beam.runners.portability.flink_runner.FlinkRunner",
    "SparkRunner": "apache_beam.runners.portability.spark_runner.SparkRunner",
    "DataflowRunner": "apache_beam.runners.dataflow.dataflow_runner.DataflowRunner",
}
# Options that make Beam import, install or start code named by their value, here or on the workers; what they do
# instead, in the pipeline file, is transform.module_file (the only code a pipeline file names).
BEAM_CODE_OPTIONS = {
    "beam_plugin": "imports the named modules", "beam_plugins": "imports the named modules",
    "setup_file": "runs the setup.py and installs the package on the workers",
    "requirements_file": "pip-installs the listed packages on the workers",
    "extra_package": "installs the package on the workers", "extra_packages": "installs the package on the workers",
    "prism_location": "downloads and runs that binary", "flink_job_server_jar": "runs that jar",
    "spark_job_server_jar": "runs that jar", "job_server_java_launcher": "runs that program as java",
    "job_server_jvm_properties": "passes arguments to the java it starts",
    "job_server_jvm_property": "passes arguments to the java it starts",
    "beam_services": "starts the named jars or commands as Beam services",
    "on_success_matcher": "unpickles the value, which runs code",
}
_BEAM_ENVIRONMENTS = ("DOCKER", "EXTERNAL", "LOOPBACK")  # PROCESS runs a command as the SDK worker
_BEAM_OPTION = re.compile(r"^--([A-Za-z][A-Za-z0-9_]*)(=(.*))?$", re.DOTALL)
_BEAM_RULE = ("(sluiceway refuses Beam options that import, install or start code; the only code a pipeline "
              "file names is transform.module_file)")
_CHECKED_BEAM_OPTIONS = (*BEAM_CODE_OPTIONS, "runner", "sdk_location", "environment_type", "environment_config",
                         "environment_option", "environment_options")


def _runner_known(value: str) -> bool:
    lower = value.lower()
    return any(lower in (name.lower(), name.lower()[:-len("runner")]) or value == path
               for name, path in BEAM_RUNNERS.items())


def _beam_option(option: str) -> str:
    """Refuses a Beam option that would run code the pipeline file names (see ``_BEAM_RULE``)."""
    match = _BEAM_OPTION.match(option)
    if not match:
        raise ValueError(f"expected a Beam option of the form --name=value or --name, got {option!r} (a value goes "
                         f"in the same element as its option: '--runner=DataflowRunner', not '--runner', "
                         f"'DataflowRunner')")
    name, value = match.group(1), match.group(3)
    abbreviated = [full for full in _CHECKED_BEAM_OPTIONS if full != name and full.startswith(name)]
    if abbreviated and name not in _CHECKED_BEAM_OPTIONS:   # Beam's argparse would take the abbreviation
        raise ValueError(f"--{name} abbreviates --{abbreviated[0]} (Beam would read it so); write the option in full")
    if name in BEAM_CODE_OPTIONS:
        raise ValueError(f"--{name} is refused: Beam {BEAM_CODE_OPTIONS[name]} {_BEAM_RULE}")
    if name == "runner" and value is None:
        raise ValueError("expected --runner=NAME in one element, e.g. '--runner=DataflowRunner'; NAME one of "
                         + ", ".join(BEAM_RUNNERS))
    if name == "runner" and not _runner_known(value):
        raise ValueError(f"--runner={value} is not a Beam runner sluiceway allows (Beam imports and calls any "
                         f"other value as code); expected one of {', '.join(BEAM_RUNNERS)}")
    if name == "sdk_location" and value not in ("default", "container"):
        raise ValueError(f"--sdk_location={value or ''} is refused: Beam installs that SDK package on the workers; "
                         f"expected default or container {_BEAM_RULE}")
    if name == "environment_type" and (value or "").upper() not in _BEAM_ENVIRONMENTS:
        raise ValueError(f"--environment_type={value or ''} is refused; expected one of "
                         f"{', '.join(_BEAM_ENVIRONMENTS)} (PROCESS runs a command as the SDK worker) {_BEAM_RULE}")
    if name == "environment_config" and (value or "").lstrip().startswith("{"):
        raise ValueError(f"--environment_config with a JSON process command is refused; expected a container "
                         f"image (DOCKER) or a worker address (EXTERNAL) {_BEAM_RULE}")
    if name in ("environment_option", "environment_options") and (value or "").startswith("process_"):
        raise ValueError(f"--{name}={value} is refused: a process command runs as the SDK worker {_BEAM_RULE}")
    return option


BeamOption = Annotated[str, AfterValidator(_beam_option), Expected("a Beam option such as --runner=DataflowRunner")]


class BeamConfig(Section):
    """Apache Beam settings for the Beam-based components (StatisticsGen, and later Transform, Evaluator)."""

    pipeline_options: list[BeamOption] = Field(
        default_factory=lambda: ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
        description="Beam pipeline options, e.g. ['--runner=DataflowRunner', '--project=...'], one per element, "
                    "--name=value or --name, written in full. --runner is one of " + ", ".join(BEAM_RUNNERS)
                    + ". Options that make Beam import, install or start code are refused ("
                    + ", ".join(f"--{name}" for name in sorted(BEAM_CODE_OPTIONS))
                    + ", --sdk_location other than default/container, --environment_type=PROCESS): the only code a "
                      "pipeline file names is transform.module_file. Container images for the workers "
                      "(--sdk_container_image, --environment_config=IMAGE) are allowed, like kubeflow.image, and so "
                      "are --save_main_session and --pickle_library (they pickle sluiceway's own code).",
    )


NumericMethod = Annotated[
    Literal["zscore", "minmax", "log", "bucketize", "none"],
    Expected("one of 'zscore', 'minmax', 'log' (log1p, then z-score), 'bucketize', 'none'"),
]
Count = Annotated[int, Field(strict=True, ge=1), Expected("a whole number of at least 1")]


class VocabularyConfig(Section):
    """How categorical features map to integer ids (tft.compute_and_apply_vocabulary)."""

    top_k: Optional[Count] = Field(None, description="Keep only the k most frequent values (null keeps all).")
    frequency_threshold: Count = Field(1, description="Values seen fewer times in train are out of vocabulary.")
    oov_buckets: Count = Field(1, description="Buckets for values not in the vocabulary (unseen categories).")


class MissingValuesConfig(Section):
    """What missing values become before scaling or vocabulary lookup."""

    numeric: Literal["mean", "zero"] = Field("mean", description="Fill numeric gaps with the train mean or zero.")
    categorical: str = Field(
        "__missing__",
        description="Fill categorical gaps with this value, which gets its own vocabulary id ('' sends gaps to the "
                    "out-of-vocabulary bucket).")


class TransformConfig(Section):
    """Transform (tensorflow-transform): the preprocessing every split, and serving, goes through.

    By default a preprocessing function is generated from the features; ``module_file`` names
    your own instead (like TFX's module_file).
    """

    numeric: NumericMethod = Field("zscore", description="Scaling of every numeric feature without its own entry.")
    per_feature: dict[str, NumericMethod] = Field(
        default_factory=dict, description="Numeric feature -> scaling, overriding 'numeric'.")
    buckets: Annotated[int, Field(strict=True, ge=2, le=1000), Expected("a whole number from 2 to 1000")] = Field(
        10, description="Quantile buckets for 'bucketize'.")
    vocabulary: VocabularyConfig = Field(default_factory=VocabularyConfig)
    hash_buckets: dict[str, Count] = Field(
        default_factory=dict, description="Categorical feature -> hash buckets, for high-cardinality strings.")
    missing: MissingValuesConfig = Field(default_factory=MissingValuesConfig)
    label: Literal["none", "log"] = Field(
        "none", description="Regression: 'log' trains on log(1 + label) (for a skewed, non-negative label such as a "
                            "price); the served prediction is turned back into the label's units.")
    module_file: Optional[PathStr] = Field(
        None, description="A Python file defining your own preprocessing function (replaces the generated one).")
    preprocessing_fn: str = Field("preprocessing_fn", description="Name of the function in module_file.")


KERAS_MODELS = ("wide_and_deep", "dnn")
TREE_MODELS = ("gradient_boosted_trees", "random_forest")
MODELS = (*KERAS_MODELS, *TREE_MODELS)


class TrainerConfig(Section):
    """The model and its fixed hyperparameters; the Tuner's best values replace them."""

    model: Literal["wide_and_deep", "dnn", "gradient_boosted_trees", "random_forest"] = Field(
        "wide_and_deep", description="'wide_and_deep': a linear part over one-hot categoricals beside the DNN "
                                     "(tf_keras); 'dnn': the DNN alone; 'gradient_boosted_trees' and 'random_forest': "
                                     "TensorFlow Decision Forests.")
    hidden_units: list[Count] = Field(default_factory=lambda: [64, 32], description="Units of each hidden layer.")
    embedding_dim: Count = Field(8, description="Embedding size of each categorical feature in the deep part.")
    dropout: Annotated[float, Field(strict=True, ge=0, lt=1), Expected("a number from 0 up to (not including) 1")] = 0.1
    learning_rate: Annotated[float, Field(strict=True, gt=0, le=1), Expected("a number in (0, 1]")] = 0.001
    batch_size: Count = 128
    epochs: Count = Field(30, description="Upper bound; early stopping on the eval split usually ends sooner.")
    early_stopping_patience: Count = Field(
        3, description="Epochs without improvement of the task's validation metric before stopping (Keras models).")
    num_trees: Count = Field(
        200, description="Tree models: trees in the forest (gradient boosting: at most; early stopping on the eval "
                         "split usually ends sooner).")
    max_depth: Optional[Count] = Field(
        None, description="Tree models: the deepest a tree grows. Default: 6 for gradient_boosted_trees, 12 for "
                          "random_forest.")
    shrinkage: Annotated[float, Field(strict=True, gt=0, le=1), Expected("a number in (0, 1]")] = Field(
        0.1, description="gradient_boosted_trees: the learning rate of boosting.")
    min_examples: Count = Field(5, description="Tree models: the fewest train examples in a leaf.")
    seed: int = Field(42, strict=True, description="Seed of weights, shuffling and dropout (tree models: of "
                                                   "their sampling).")

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters of this model family with their values (defaults resolved)."""
        names = TREE_HYPERPARAMETERS if self.model in TREE_MODELS else KERAS_HYPERPARAMETERS
        values = {name: getattr(self, name) for name in names}
        if "max_depth" in values and values["max_depth"] is None:
            values["max_depth"] = 6 if self.model == "gradient_boosted_trees" else 12
        if self.model == "random_forest":
            values.pop("shrinkage", None)
        return values


KERAS_HYPERPARAMETERS = ("hidden_units", "embedding_dim", "dropout", "learning_rate", "batch_size")
TREE_HYPERPARAMETERS = ("num_trees", "max_depth", "shrinkage", "min_examples")
HYPERPARAMETERS = (*KERAS_HYPERPARAMETERS, *TREE_HYPERPARAMETERS)


class SearchRange(Section):
    """One hyperparameter's search space: a range (min/max) or a list of choices."""

    min: Optional[float] = None
    max: Optional[float] = None
    sampling: Literal["linear", "log"] = "linear"
    choices: Optional[list[Any]] = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> "SearchRange":
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{bound} is {value}; expected a finite number")
        if self.choices is not None:
            if self.min is not None or self.max is not None:
                raise ValueError("give either choices or min/max, not both")
            if not self.choices:
                raise ValueError("choices must not be empty")
        elif self.min is None or self.max is None:
            raise ValueError("expected choices: [...] or both min and max")
        elif self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        elif self.sampling == "log" and self.min <= 0:
            raise ValueError("log sampling needs min > 0")
        return self


_INTEGER_HYPERPARAMETERS = ("embedding_dim", "batch_size", "num_trees", "max_depth", "min_examples")


def _hyperparameter_value(name: str) -> tuple[TypeAdapter, str]:
    """The validator of one value of hyperparameter ``name``: the trainer section's own field type
    (so a choice passes exactly when ``trainer.<name>`` would), and how that value is described."""
    info = TrainerConfig.model_fields[name]
    if name == "max_depth":
        return TypeAdapter(Count), "a whole number of at least 1"
    if name == "hidden_units":
        return (TypeAdapter(Annotated[info.annotation, Field(min_length=1)]),
                "a list of layer sizes (whole numbers of at least 1), e.g. [64, 32]")
    expected = next(m.text for m in info.metadata if isinstance(m, Expected))
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)]), expected


def _valid(adapter: TypeAdapter, value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


# The validation metrics a Trainer and Tuner can score by, per task (the first is the task's default).
TASK_OBJECTIVES = {
    "binary": ("val_auc", "val_loss", "val_binary_accuracy"),
    "multiclass": ("val_loss", "val_accuracy", "val_auc"),
    "regression": ("val_rmse", "val_mae", "val_loss"),
}
MAXIMIZED_OBJECTIVES = ("val_auc", "val_binary_accuracy", "val_accuracy")


def objective_of(tuner: "TunerConfig", features: FeaturesConfig) -> str:
    """The Tuner's objective: the configured one, or the task's default."""
    return tuner.objective or TASK_OBJECTIVES[features.task][0]


class TunerConfig(Section):
    """Hyperparameter search with KerasTuner over the Trainer's hyperparameters."""

    enabled: bool = Field(False, description="Off: the Trainer uses trainer's fixed hyperparameters.")
    algorithm: Literal["random", "bayesian", "hyperband", "grid"] = "random"
    max_trials: Count = Field(10, description="Trial budget.")
    objective: Optional[Literal["val_auc", "val_loss", "val_binary_accuracy", "val_accuracy", "val_rmse", "val_mae"]] = Field(
        None, description="What a trial is scored by, on the validation data. Default by task: val_auc (binary), "
                          "val_loss (multiclass), val_rmse (regression). binary: val_auc, val_loss, "
                          "val_binary_accuracy; multiclass: val_loss, val_accuracy, val_auc; regression: val_rmse, "
                          "val_mae, val_loss.")
    epochs: Count = Field(10, description="Epochs per trial (early stopping applies).")
    cv_folds: Optional[Annotated[int, Field(strict=True, ge=2, le=20), Expected("a whole number from 2 to 20")]] = Field(
        None, description="k-fold cross-validation over train: a trial scores its mean over folds.")
    seed: int = Field(42, strict=True)
    search_space: dict[str, SearchRange] = Field(
        default_factory=dict, description=f"Hyperparameter -> range or choices; keys among {', '.join(HYPERPARAMETERS)}.")

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> "TunerConfig":
        problems = _Problems()
        unknown = [k for k in self.search_space if k not in HYPERPARAMETERS]
        if unknown:
            problems.add((), f"search_space names no hyperparameter: {', '.join(unknown)}; "
                             f"expected keys among {', '.join(HYPERPARAMETERS)}")
        if self.enabled and not self.search_space:
            problems.add((), "search_space is empty; declare at least one hyperparameter to tune")
        for name, space in self.search_space.items():
            if name in HYPERPARAMETERS:
                self._check_values(name, space, problems)
        if self.algorithm == "grid":
            ranged = [name for name, space in self.search_space.items() if space.choices is None]
            if ranged:
                problems.add((), f"grid search is exhaustive over choices; give choices for {', '.join(ranged)}")
        problems.raise_if_any(type(self).__name__)
        return self

    def _check_values(self, name: str, space: SearchRange, problems: _Problems) -> None:
        """Each choice (or min and max) of hyperparameter ``name`` must be a value the trainer section
        takes for it; whole-number choices of a float hyperparameter become floats (KerasTuner's Choice
        takes values of one type)."""
        loc: Loc = ("search_space", name)
        adapter, expected = _hyperparameter_value(name)
        if space.choices is None:
            if name == "hidden_units":
                problems.add(loc, "hidden_units takes choices of layer-size lists, e.g. choices: [[64, 32], [128]], "
                                  "not min/max")
                return
            for bound in ("min", "max"):
                value = getattr(space, bound)
                whole = name in _INTEGER_HYPERPARAMETERS
                if (whole and not value.is_integer()) or not _valid(adapter, int(value) if whole else value):
                    problems.add((*loc, bound), f"expected {expected}, as for trainer.{name}; got {value:g}")
            return
        typed = []
        for index, choice in enumerate(space.choices):
            try:
                typed.append(adapter.validate_python(choice))
            except ValidationError:
                shown = json.dumps(choice, default=str)
                problems.add((*loc, "choices", index), f"expected {expected}, as for trainer.{name}; got {shown}")
        if len(typed) == len(space.choices):
            # the search space is being validated: replacing an entry of its (fresh) dict is safe
            self.search_space[name] = space.model_copy(update={"choices": typed})


GATE_METRICS = evaluator_metrics.GATE_METRICS
GATE_FAIRNESS_METRICS = evaluator_metrics.FAIRNESS_METRICS
REGRESSION_METRICS = evaluator_metrics.REGRESSION_METRICS


def _can_regress(value: Any) -> Any:
    if isinstance(value, str) and value in GATE_METRICS and value not in REGRESSION_METRICS:
        raise ValueError(f"{value} cannot regress: neither a higher nor a lower {value} is better; expected one of "
                         f"{', '.join(REGRESSION_METRICS)}, or bound it with a metric gate, e.g. "
                         f"{{metric: {value}, min: ...}}")
    return value


MetricName = Annotated[Literal[GATE_METRICS], Expected("one of " + ", ".join(GATE_METRICS))]  # type: ignore[valid-type]
RegressionMetricName = Annotated[Literal[REGRESSION_METRICS],  # type: ignore[valid-type]
                                 BeforeValidator(_can_regress), Expected("one of " + ", ".join(REGRESSION_METRICS))]
RateName = Annotated[Literal[GATE_FAIRNESS_METRICS],  # type: ignore[valid-type]
                     Expected("one of " + ", ".join(GATE_FAIRNESS_METRICS))]


# The values each metric can take (the metric table's value_range): a bound outside them can never be met or always
# holds, so it is a configuration error.
METRIC_RANGES: dict[str, tuple[float, float]] = {m.name: m.value_range for m in evaluator_metrics.METRICS}


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


FiniteNumber = Annotated[float, AfterValidator(_finite), Expected("a finite number")]


def _range_text(metric: str) -> str:
    low, high = METRIC_RANGES[metric]
    return f"between {low:g} and {high:g}" if math.isfinite(high) else f"at least {low:g}"


def _bound_problems(gate: "MetricGate") -> list[tuple[str, str]]:
    """(field, problem) for each bound of ``gate`` that cannot be met, always holds, or contradicts the other."""
    low, high = METRIC_RANGES[gate.metric]
    found = []
    for bound, value in (("min", gate.min), ("max", gate.max)):
        if value is None or low <= value <= high:
            continue
        never = (value > high) == (bound == "min")
        within = _range_text(gate.metric)
        found.append((bound, f"{gate.metric} is {within}, so {bound} {value:g} "
                             f"{'can never be met' if never else 'always holds'}; expected a {bound} "
                             f"{within if within.startswith('between') else 'of ' + within}"))
    if gate.min is not None and gate.max is not None and gate.min > gate.max:
        found.append(("max", f"max {gate.max:g} is below min {gate.min:g}: no value can pass; expected max >= min"))
    return found


class MetricGate(Section):
    """A metric's bounds, overall or on every slice of the features in ``per``."""

    metric: MetricName
    min: Optional[FiniteNumber] = Field(None, description="Lowest passing value, within the metric's range.")
    max: Optional[FiniteNumber] = Field(None, description="Highest passing value, within the metric's range.")
    per: Optional[list[ColumnName]] = Field(None, description="Check every slice of these features, not overall.")
    judge: Literal["value", "lower_bound", "upper_bound"] = Field(
        "value", description="What is compared with the bounds: the value (TFMA's threshold decides), or a bound "
                             "of its confidence interval (evaluator.intervals; sluiceway decides): lower_bound "
                             "passes a min only when the whole interval is above it.")

    @model_validator(mode="after")
    def _bounded(self) -> "MetricGate":
        if self.min is None and self.max is None:
            raise ValueError(f"gate on {self.metric}: give min, max or both")
        return self


class FairnessGate(Section):
    """A rate compared across the groups of a sensitive feature."""

    fairness: RateName = Field(description="What is compared across groups: a Fairness Indicators rate (binary, "
                                           "multiclass), or a metric of the regression task such as mae.")
    feature: ColumnName
    class_name: Optional[Annotated[str, AfterValidator(_non_empty), Expected("a class of the label")]] = Field(
        None, alias="class", description="Multiclass: the class whose rates are compared (one-vs-rest), e.g. "
                                         "high_risk. Required for the multiclass task, not used by the others.")
    max_gap: Optional[Annotated[float, Field(strict=True, ge=0), AfterValidator(_finite),
                                Expected("a finite number of at least 0")]] = Field(
        None, description="Largest allowed difference (max - min, or to reference); for a rate, at most 1.")
    min_ratio: Optional[Fraction] = Field(None, description="Smallest allowed min/max ratio (0.8: four-fifths rule).")
    reference: Optional[str] = Field(None, description="Compare each group with this one instead of max vs min.")
    threshold: Optional[Fraction] = Field(None, description="Decision threshold (default: the first configured).")
    judge: Literal["value", "significant"] = Field(
        "value", description="value: the measured gap (or ratio) is compared with the bound (TFMA decides a gap). "
                             "significant: a pair of groups fails only when its gap is beyond the bound and the "
                             "gap's confidence interval excludes zero (sluiceway decides, on evaluator.intervals).")

    @model_validator(mode="after")
    def _bounded(self) -> "FairnessGate":
        if (self.max_gap is None) == (self.min_ratio is None):
            raise ValueError(f"fairness gate on {self.fairness}: give exactly one of max_gap or min_ratio")
        return self


class RegressionGate(Section):
    """The candidate may not fall more than ``max_drop`` below the model currently serving (for
    calibration: its distance from 1.0 may not grow by more than ``max_drop``)."""

    no_regression: RegressionMetricName
    max_drop: Annotated[float, Field(strict=True, ge=0), AfterValidator(_finite),
                        Expected("a finite number of at least 0")] = 0.0
    relative: bool = Field(False, description="max_drop as a fraction of the baseline's value.")
    per: Optional[list[ColumnName]] = None


class AttributionGate(Section):
    """A feature's share of the model's total attribution (evaluator.attributions) may not exceed
    ``max_share``: e.g. a sensitive feature the model should not rely on."""

    attribution: ColumnName = Field(description="The feature whose share of attribution is bounded, e.g. sex.")
    max_share: Fraction = Field(description="Largest allowed share of the total attribution, e.g. 0.05.")
    with_proxies: bool = Field(False, description="Count the shares of its strongest proxies (the features most "
                                                  "associated with it in train) as its own.")


def _gate_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in GATE_TAGS:
            if key in value:
                return key
    elif isinstance(value, BaseModel):
        return {MetricGate: "metric", FairnessGate: "fairness", RegressionGate: "no_regression",
                AttributionGate: "attribution"}.get(type(value))
    return None


GATE_TAGS = ("metric", "fairness", "no_regression", "attribution")  # pydantic puts the chosen tag into error locations
Gate = Annotated[
    Union[Annotated[MetricGate, Tag("metric")], Annotated[FairnessGate, Tag("fairness")],
          Annotated[RegressionGate, Tag("no_regression")], Annotated[AttributionGate, Tag("attribution")]],
    Discriminator(_gate_kind, custom_error_type="gate_kind",
                  custom_error_message="expected a gate with one of the keys metric, fairness, no_regression or "
                                       "attribution"),
]

INTERVAL_METHODS = ("closed_form", "tfma_jackknife", "tfma_bootstrap", "off")


class IntervalsConfig(Section):
    """Confidence intervals of every metric on every slice (candidate and baseline)."""

    method: Literal[INTERVAL_METHODS] = Field(  # type: ignore[valid-type]
        "closed_form", description="closed_form: from the counts and sums TFMA computes in its one pass (Wilson for "
                                   "rates and accuracy, Hanley-McNeil for AUC, the delta method for means and ratios, "
                                   "a bootstrap of the confusion matrix for F1 and averages over classes); "
                                   "tfma_jackknife or tfma_bootstrap: TFMA's own resampling, for any metric (several "
                                   "times slower); off: no intervals.")
    level: Annotated[float, Field(strict=True, gt=0.5, lt=1), Expected("a number between 0.5 and 1, e.g. 0.95")] = \
        Field(0.95, description="Confidence level of the intervals.")
    max_width: Annotated[float, Field(gt=0), AfterValidator(_finite), Expected("a number above 0")] = Field(
        0.2, description="An interval wider than this (a metric between 0 and 1), or than this times the value's "
                         "size (other metrics), is too wide to judge: the slice is flagged.")
    seed: Annotated[int, Field(strict=True, ge=0), Expected("a whole number of at least 0")] = Field(
        0, description="Seed of the confusion-matrix bootstrap.")


class AttributionsConfig(Section):
    """Feature attributions on the evaluated split: permutation importance of each raw feature (how much
    the model's loss grows when that feature's values are shuffled across examples), for any model
    type, overall and per group of each sensitive feature."""

    enabled: bool = Field(True, description="Compute them (the attribution gates need them).")
    examples: Count = Field(3000, description="Evaluated examples used (the first ones of the split).")
    repeats: Count = Field(1, description="Shuffles per feature, averaged.")
    seed: Annotated[int, Field(strict=True, ge=0), Expected("a whole number of at least 0")] = Field(
        0, description="Seed of the shuffles.")
    proxies: Annotated[int, Field(strict=True, ge=0), Expected("a whole number of at least 0")] = Field(
        3, description="For each sensitive feature, how many of the features most associated with it in train are "
                       "shown as its proxies.")


class EvaluatorConfig(Section):
    """The Evaluator (TensorFlow Model Analysis): metrics overall and per slice, and the push gates."""

    split: Literal["eval", "test"] = Field("eval", description="The split the model is evaluated on.")
    slices: Optional[list[list[ColumnName]]] = Field(
        None, description="Feature lists to slice by, e.g. [[sex], [race], [sex, race]]; overall is always "
                          "included. Default: each sensitive feature, and all of them crossed.")
    decision_thresholds: list[Fraction] = Field(
        default_factory=lambda: [0.5], description="Score thresholds of the Fairness Indicators (FPR, FNR, ...).")
    min_slice_size: Count = Field(
        30, description="Slices with fewer examples are reported as insufficient data.")
    insufficient_data: Literal["report", "block"] = Field(
        "report", description="A gate check on a slice below min_slice_size: 'report' it, or 'block' the push.")
    top_k: Annotated[int, Field(strict=True, ge=2, le=100), Expected("a whole number from 2 to 100")] = Field(
        2, description="Multiclass: top_k_accuracy counts an example right when its class is among the k most "
                       "probable.")
    bands: dict[ColumnName, list[float]] = Field(
        default_factory=dict, description="Numeric features sliced by bands, with their boundaries in increasing "
                                          "order: {age: [25, 40, 60]} gives the age slices <25, [25,40), [40,60), "
                                          ">=60. A numeric feature can only be sliced by bands.")
    intervals: IntervalsConfig = Field(default_factory=IntervalsConfig)
    attributions: AttributionsConfig = Field(default_factory=AttributionsConfig)
    gates: list[Gate] = Field(default_factory=list, description="Checks the model must pass to be pushed.")

    @model_validator(mode="after")
    def _thresholds_given(self) -> "EvaluatorConfig":
        problems = _Problems()
        for feature, boundaries in self.bands.items():
            if not all(math.isfinite(b) for b in boundaries):  # nan compares false, so it passed the order check
                problems.add(("bands", feature), f"expected finite boundaries in increasing order, e.g. [25, 40, 60], "
                                                 f"got {boundaries}")
            elif not boundaries or any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
                problems.add(("bands", feature),
                             f"expected boundaries in increasing order, e.g. [25, 40, 60], got {boundaries}")
        if not self.decision_thresholds:
            problems.add(("decision_thresholds",), "must list at least one threshold")
        configured = ", ".join(f"{t:g}" for t in self.decision_thresholds)
        for index, gate in enumerate(self.gates):
            if isinstance(gate, FairnessGate) and gate.threshold is not None \
                    and gate.threshold not in self.decision_thresholds:
                problems.add(("gates", index, "threshold"),
                             f"decision threshold {gate.threshold:g} missing from evaluator.decision_thresholds "
                             f"[{configured}]; expected one of those, or add {gate.threshold:g} there")
            if isinstance(gate, FairnessGate) and gate.max_gap is not None \
                    and METRIC_RANGES[gate.fairness] == (0.0, 1.0) and gate.max_gap > 1:
                problems.add(("gates", index, "max_gap"),
                             f"{gate.fairness} is between 0 and 1, so a gap of {gate.max_gap:g} always holds; "
                             "expected a max_gap between 0 and 1")
            if isinstance(gate, MetricGate):
                for bound, problem in _bound_problems(gate):
                    problems.add(("gates", index, bound), problem)
            if getattr(gate, "judge", "value") != "value" and self.intervals.method == "off":
                problems.add(("gates", index, "judge"),
                             f"judge: {gate.judge} needs confidence intervals, and evaluator.intervals.method is off; "
                             "expected judge: value, or an intervals method such as closed_form")
            if isinstance(gate, AttributionGate) and not self.attributions.enabled:
                problems.add(("gates", index, "attribution"),
                             "an attribution gate needs the attributions, and evaluator.attributions.enabled is "
                             "false; expected enabled: true")
            if isinstance(gate, RegressionGate) and METRIC_RANGES[gate.no_regression] == (0.0, 1.0) \
                    and gate.max_drop >= 1:
                problems.add(("gates", index, "max_drop"),
                             f"{gate.no_regression} is between 0 and 1, so it cannot drop by "
                             f"{'100% of its value' if gate.relative else '1'} or more: max_drop {gate.max_drop:g} "
                             f"never fails; expected a max_drop below 1")
        problems.raise_if_any(type(self).__name__)
        return self


Milliseconds = Annotated[float, Field(gt=0), AfterValidator(_finite), Expected("a number of milliseconds above 0")]


class InfraValidatorConfig(Section):
    """The serving check (InfraValidator): the candidate model is loaded in a clean process of its own
    and queried before it may be pushed."""

    load_timeout_seconds: Annotated[float, Field(gt=0, le=3600), Expected("a number of seconds from 0 to 3600")] = Field(
        120, description="The model must load (TensorFlow imported, SavedModel loaded) within this many seconds.")
    examples: Annotated[int, Field(strict=True, ge=1, le=1000), Expected("a whole number from 1 to 1000")] = Field(
        100, description="How many of the examples the Evaluator scored are sent again (its sample holds 200); "
                         "besides them, one example per feature with that feature missing and one per categorical "
                         "feature with a value train never had.")
    score_tolerance: Annotated[float, Field(ge=0, le=1), Expected("a number between 0 and 1")] = Field(
        1e-4, description="How far a served score may be from the Evaluator's for the same example (absolute).")
    max_latency_ms: Optional[Milliseconds] = Field(
        None, description="Bound on the p99 latency of one-example requests; without it latency is only recorded.")
    max_batch_latency_ms: Optional[Milliseconds] = Field(
        None, description="Bound on the p99 latency of 100-example requests; without it latency is only recorded.")


class PusherConfig(Section):
    """Where blessed models go: a TF Serving layout, ``<destination>/<version>/``."""

    destination: Optional[PathStr] = Field(
        None, description="A local folder (relative to this file) or a URL such as gs://bucket/models/credit, "
                          "kept as written; each push adds a numbered version. "
                          "Without it nothing is pushed, and no-regression gates have no baseline.")


_CPU = re.compile(r"^([0-9]*\.?[0-9]+m?)$")
_MEMORY = re.compile(r"^([0-9]*\.?[0-9]+)(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")


def _quantity(pattern: re.Pattern, example: str):
    def check(value: Any) -> str:
        text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not pattern.match(text):
            raise ValueError(f"expected a Kubernetes quantity such as {example}, got {value!r}")
        return text
    return check


Cpu = Annotated[str, BeforeValidator(_quantity(_CPU, '"500m" or "2"')), Expected('a CPU quantity such as "500m" or "2"')]
Memory = Annotated[str, BeforeValidator(_quantity(_MEMORY, '"512Mi" or "8G"')),
                   Expected('a memory quantity such as "512Mi" or "8G"')]
ComponentName = Annotated[Literal[tuple(DECLARED)], Expected("one of " + ", ".join(DECLARED))]  # type: ignore[valid-type]


class Toleration(Section):
    """A Kubernetes toleration, so the task may run on tainted nodes (e.g. GPU nodes)."""

    key: Optional[str] = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: Optional[str] = None
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = None
    toleration_seconds: Optional[Annotated[int, Field(strict=True, ge=0)]] = None


class TaskSettings(Section):
    """How Kubeflow runs a component's task; unset fields fall back to ``kubeflow.defaults``."""

    cpu_request: Optional[Cpu] = None
    cpu_limit: Optional[Cpu] = None
    memory_request: Optional[Memory] = None
    memory_limit: Optional[Memory] = None
    gpu: Optional[Annotated[int, Field(strict=True, ge=1), Expected("a number of GPUs, at least 1")]] = Field(
        None, description="GPUs (accelerator limit).")
    gpu_type: Optional[str] = Field(None, description="Accelerator resource, e.g. nvidia.com/gpu (the default).")
    retries: Optional[Annotated[int, Field(strict=True, ge=0, le=10), Expected("a number from 0 to 10")]] = None
    caching: Optional[bool] = Field(
        None, description="KFP's cache. Default: on, except for the BaselineResolver (it looks at the model "
                          "serving in pusher.destination now) and the Pusher (a push is a side effect).")
    node_selector: Optional[dict[str, str]] = Field(None, description="Node labels the task must run on.")
    tolerations: Optional[list[Toleration]] = None


class KubeflowConfig(Section):
    """How `sluiceway compile` and `submit` build the Kubeflow Pipelines spec."""

    image: Annotated[str, AfterValidator(_non_empty), Expected("a container image reference")] = Field(
        "localhost/sluiceway:0.1.0", description="Container image every component runs in."
    )
    pipeline_root: Optional[str] = Field(
        None, description="Pipeline root on object storage (e.g. gs://bucket/root); the cluster default when unset."
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Kubernetes secrets for pulling the image from a private registry.")
    beam_pipeline_options: Optional[list[BeamOption]] = Field(
        None, description="Beam options for the Beam-based components on the cluster (StatisticsGen, Transform, "
                          "Evaluator), replacing beam.pipeline_options there, e.g. Dataflow, Flink or Spark runners.")
    defaults: TaskSettings = Field(default_factory=TaskSettings, description="Settings for every component.")
    components: dict[ComponentName, TaskSettings] = Field(
        default_factory=dict, description="Settings per component (ExampleGen, ..., Pusher), over the defaults.")

    def task_settings(self, component: str) -> TaskSettings:
        """``defaults`` overlaid with the component's own settings."""
        own = self.components.get(component)
        if own is None:
            return self.defaults
        return TaskSettings.model_validate({**self.defaults.model_dump(exclude_none=True),
                                            **own.model_dump(exclude_none=True)})


def _not_declared_as(name: str, kind: str, features: FeaturesConfig) -> Optional[str]:
    """Why ``name`` is not a ``kind`` ('numeric' or 'categorical') feature, or ``None`` when it is one."""
    declared = getattr(features, kind)
    if name in declared:
        return None
    other = "categorical" if kind == "numeric" else "numeric"
    why = (f"it is {other}" if name in getattr(features, other)
           else "it is the label" if name == features.label else "it is not declared under features")
    expected = f"expected one of {', '.join(declared)}" if declared else f"features.{kind} is empty"
    return f"{name} is not in features.{kind} ({why}); {expected}"


def _task_gate_problems(gate: Any, task: str) -> list[tuple[Loc, str]]:
    """Why ``gate`` does not fit ``task`` (a metric the task has not, a ``class`` missing or not used)."""
    if isinstance(gate, AttributionGate):
        return []
    if isinstance(gate, MetricGate):
        field, name, allowed = "metric", gate.metric, evaluator_metrics.gate_metrics_of_task(task)
    elif isinstance(gate, FairnessGate):
        field, name, allowed = "fairness", gate.fairness, evaluator_metrics.fairness_metrics_of_task(task)
    else:
        field, name, allowed = "no_regression", gate.no_regression, evaluator_metrics.regression_metrics_of_task(task)
    found: list[tuple[Loc, str]] = []
    if name not in allowed:
        found.append(((field,), f"{name} is not a metric of the {task} task (features.task); the {task} task has "
                                f"{', '.join(allowed) or 'none'}"))
    if isinstance(gate, FairnessGate):
        if task == "multiclass" and gate.class_name is None:
            found.append(((), f"a multiclass fairness gate compares one class's rates (one-vs-rest): give class: "
                              f"<one of the label's classes>"))
        if task != "multiclass" and gate.class_name is not None:
            found.append((("class",), f"class is only used by the multiclass task (features.task is {task}): "
                                      "remove it"))
    return found


def cross_section_issues(sections: dict[str, Any]) -> list[tuple[Loc, str]]:
    """The problems between sections, each with its YAML location, e.g.
    ``(("transform", "per_feature", "age"), "...")``.

    Args:
        sections: Section name -> validated section, for the sections that validated; a check
            runs when every section it reads is there, so a file with other errors still gets
            these reported (``pipeline.loader`` passes whichever sections validated on their own).
    """
    problems = _Problems()
    features: Optional[FeaturesConfig] = sections.get("features")
    if features is None:
        return []
    data: Optional[DataConfig] = sections.get("data")
    if data is not None and data.split.key is not None and data.split.key == features.label:
        problems.add(("data", "split", "key"), f"'{data.split.key}' cannot be the label column (features.label); "
                                               "expected another column, such as an id, or no key")
    transform: Optional[TransformConfig] = sections.get("transform")
    if transform is not None and transform.label != "none" and features.task != "regression":
        problems.add(("transform", "label"), f"transform.label: {transform.label} transforms a numeric label, which "
                                             f"only the regression task has (features.task is {features.task}); "
                                             "expected none")
    tuner: Optional[TunerConfig] = sections.get("tuner")
    if tuner is not None and tuner.objective is not None and tuner.objective not in TASK_OBJECTIVES[features.task]:
        problems.add(("tuner", "objective"), f"{tuner.objective} is not a validation metric of the {features.task} "
                                             f"task; expected one of {', '.join(TASK_OBJECTIVES[features.task])}")
    trainer: Optional[TrainerConfig] = sections.get("trainer")
    if tuner is not None and trainer is not None:
        family = TREE_HYPERPARAMETERS if trainer.model in TREE_MODELS else KERAS_HYPERPARAMETERS
        if trainer.model == "random_forest":
            family = tuple(n for n in family if n != "shrinkage")
        if tuner.enabled and tuner.algorithm == "hyperband" and trainer.model in TREE_MODELS:
            problems.add(("tuner", "algorithm"), f"hyperband allots epochs to trials, and {trainer.model} trains in "
                                                 "one pass; expected random, bayesian or grid")
        for name in tuner.search_space:
            if name in HYPERPARAMETERS and name not in family:
                problems.add(("tuner", "search_space", name),
                             f"{name} is not a hyperparameter of trainer.model {trainer.model}; expected one of "
                             f"{', '.join(family)}")
    if transform is not None:
        for group, kind in (("per_feature", "numeric"), ("hash_buckets", "categorical")):
            for name in getattr(transform, group):
                problem = _not_declared_as(name, kind, features)
                if problem:
                    problems.add(("transform", group, name), problem)
    evaluator: Optional[EvaluatorConfig] = sections.get("evaluator")
    if evaluator is not None:
        named: list[tuple[Loc, list[str]]] = [(("evaluator", "slices", i), list(s))
                                              for i, s in enumerate(evaluator.slices or [])]
        for i, gate in enumerate(evaluator.gates):
            for loc, problem in _task_gate_problems(gate, features.task):
                problems.add(("evaluator", "gates", i, *loc), problem)
            if isinstance(gate, FairnessGate):
                named.append((("evaluator", "gates", i, "feature"), [gate.feature]))
            elif isinstance(gate, AttributionGate):
                if gate.attribution not in features.feature_names:
                    problems.add(("evaluator", "gates", i, "attribution"),
                                 f"names {gate.attribution}, not declared under features (expected a feature of "
                                 "features.numeric or features.categorical)")
                elif gate.with_proxies and gate.attribution not in features.sensitive:
                    problems.add(("evaluator", "gates", i, "with_proxies"),
                                 f"proxies are found for the sensitive features only, and {gate.attribution} is not "
                                 "in features.sensitive; expected a sensitive feature, or with_proxies: false")
            elif gate.per:
                named.append((("evaluator", "gates", i, "per"), list(gate.per)))
        for loc, names in named:
            undeclared = [n for n in names if n not in features.feature_names]
            if undeclared:
                problems.add(loc, f"names {', '.join(undeclared)}, not declared under features "
                                  "(expected features of features.numeric or features.categorical)")
            unbanded = [n for n in names if n in features.numeric and n not in evaluator.bands]
            if unbanded:
                problems.add(loc, f"uses the numeric feature(s) {', '.join(unbanded)}: slice them by bands, "
                                  f"e.g. evaluator.bands: {{{unbanded[0]}: [25, 40, 60]}}")
        for name in evaluator.bands:
            problem = _not_declared_as(name, "numeric", features)
            if problem:
                problems.add(("evaluator", "bands", name), problem)
    monitoring: Optional[MonitoringConfig] = sections.get("monitoring")
    if monitoring is not None:
        for name in monitoring.thresholds:
            if name not in features.feature_names:
                problems.add(("monitoring", "thresholds", name), f"{name} is not declared under features (expected a "
                                                                  "feature of features.numeric or features.categorical)")
        allowed = evaluator_metrics.regression_metrics_of_task(features.task)
        for i, check in enumerate(monitoring.degradation):
            if check.metric is not None and check.metric not in allowed:
                problems.add(("monitoring", "degradation", i, "metric"),
                             f"{check.metric} is not a metric of the {features.task} task (features.task); the "
                             f"{features.task} task has {', '.join(allowed)}")
            undeclared = [n for n in check.per or [] if n not in features.feature_names]
            unbanded = [n for n in check.per or [] if n in features.numeric
                        and (evaluator is None or n not in evaluator.bands)]
            if undeclared:
                problems.add(("monitoring", "degradation", i, "per"),
                             f"names {', '.join(undeclared)}, not declared under features")
            elif unbanded:
                problems.add(("monitoring", "degradation", i, "per"),
                             f"uses the numeric feature(s) {', '.join(unbanded)}: slice them by bands (evaluator.bands)")
    bulk: Optional[BulkInferenceConfig] = sections.get("bulk_inference")
    pusher: Optional[PusherConfig] = sections.get("pusher")
    if bulk is not None and bulk.source and pusher is not None and not pusher.destination:
        problems.add(("bulk_inference", "source"), "the pipeline scores it with the model it pushes, and "
                                                   "pusher.destination is not set; expected a pusher.destination")
    if bulk is not None and bulk.output and not bulk.output.endswith((".parquet", ".pq", ".csv", ".csv.gz")):
        problems.add(("bulk_inference", "output"), f"{bulk.output}: expected a file ending in .parquet, .pq, .csv "
                                                   "or .csv.gz")
    return [(loc, "; ".join(messages)) for loc, messages in problems.by_loc.items()]


def cross_section_warnings(sections: dict[str, Any]) -> list[tuple[Loc, str]]:
    """What is valid but probably not meant, each with its YAML location: printed as warnings by
    ``validate-config``, ``run`` and the other commands that load a file, never an error."""
    features: Optional[FeaturesConfig] = sections.get("features")
    evaluator: Optional[EvaluatorConfig] = sections.get("evaluator")
    if features is None or evaluator is None:
        return []
    sensitive = ", ".join(features.sensitive) or "none declared"
    found: list[tuple[Loc, str]] = []
    if features.task != "binary":
        # the multiclass task predicts the most probable class and regression has no classes: no threshold applies
        if evaluator.decision_thresholds != [0.5]:
            found.append((("evaluator", "decision_thresholds"), f"decision thresholds apply to the binary task only; "
                                                                f"the {features.task} task ignores them"))
        found += [(("evaluator", "gates", index, "threshold"), f"a decision threshold applies to the binary task "
                                                               f"only; the {features.task} task ignores it")
                  for index, gate in enumerate(evaluator.gates)
                  if isinstance(gate, FairnessGate) and gate.threshold is not None]
    return found + [(("evaluator", "gates", index, "feature"),
             f"fairness gate on {gate.feature}, which is not in features.sensitive ({sensitive}); the gate is "
             f"checked, but fairness is about sensitive attributes and the fairness report charts only those: "
             f"add {gate.feature} to features.sensitive if it is one")
            for index, gate in enumerate(evaluator.gates)
            if isinstance(gate, FairnessGate) and gate.feature in features.feature_names
            and gate.feature not in features.sensitive]


RETRAIN_REASONS = ("data_drift", "degradation", "fairness")
# The metric whose fall on new labelled data is degradation, by task, when monitoring.degradation names none
DEGRADATION_METRICS = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}


class DegradationCheck(Section):
    """How far the serving model's metric on new labelled data may fall below its figure at push."""

    metric: Optional[RegressionMetricName] = Field(
        None, description="The metric compared; default by task: auc (binary), accuracy (multiclass), rmse "
                          "(regression, where a rise is the fall).")
    max_drop: Annotated[float, Field(strict=True, ge=0), AfterValidator(_finite),
                        Expected("a finite number of at least 0")] = Field(
        0.05, description="Largest allowed fall below the figure recorded when the model was pushed.")
    relative: bool = Field(False, description="max_drop as a fraction of the figure at push.")
    per: Optional[list[ColumnName]] = Field(None, description="Check every slice of these features, not overall.")

    def metric_of(self, task: str) -> str:
        return self.metric or DEGRADATION_METRICS[task]


InputFormat = Literal["auto", "csv", "parquet", "tfrecord"]
INPUT_FORMAT_DOC = "File format of the source; 'auto' decides by file extension."


class MonitoringConfig(Section):
    """``sluiceway monitor``: new data compared with what the serving model was trained on, and when
    to retrain."""

    source: Optional[PathStr] = Field(
        None, description="The data to judge: a file, folder or glob (CSV, Parquet or TFRecord of tf.Example, with "
                          "or without the label column). Default: the latest span of data.source. `sluiceway monitor "
                          "--data PATH` overrides it.")
    format: InputFormat = Field("auto", description=INPUT_FORMAT_DOC)
    drift: Optional[ComparatorThresholds] = Field(
        None, description="Drift thresholds and false-alarm rate against the serving model's train split. Default: "
                          "validation.drift.")
    thresholds: dict[ColumnName, Fraction] = Field(
        default_factory=dict, description="Per-feature distance thresholds overriding drift's (L-infinity for a "
                                          "categorical feature, Jensen-Shannon divergence for a numeric one).")
    retrain_on: list[Literal["data_drift", "degradation", "fairness"]] = Field(
        default_factory=lambda: list(RETRAIN_REASONS),
        description="Which findings make retraining due: data_drift (a drifted feature or a schema anomaly), "
                    "degradation (a metric fell or a metric gate fails on the new data), fairness (a fairness gate "
                    "fails on the new data).")
    min_rows: Annotated[int, Field(strict=True, ge=1), Expected("a whole number of at least 1")] = Field(
        500, description="Fewer rows than this are too few to judge: the monitor stops with a data error.")
    degradation: list[DegradationCheck] = Field(
        default_factory=lambda: [DegradationCheck()],
        description="With labels: how far the serving model's metrics may fall below their figures at push.")


class BulkInferenceConfig(Section):
    """The BulkInferrer: a table scored with the model just pushed (in the pipeline, when ``source`` is
    set) or with a chosen model (``sluiceway predict``)."""

    source: Optional[PathStr] = Field(
        None, description="The data to score: a file, folder or glob (CSV, Parquet or TFRecord of tf.Example; the "
                          "label column may be absent). When set, the pipeline scores it after each push. "
                          "`sluiceway predict --data PATH` overrides it.")
    format: InputFormat = Field("auto", description=INPUT_FORMAT_DOC)
    output: Optional[PathStr] = Field(
        None, description="A local file (.parquet or .csv) the predictions are also written to, replaced whole on "
                          "each run; they are always in the BulkInferrer's predictions artifact (a Dataset in "
                          "Kubeflow). `sluiceway predict -o OUT` sets it.")
    keep: list[ColumnName] = Field(
        default_factory=list, description="Columns copied to the output before the predictions, e.g. an id.")
    on_bad_row: Literal["fail", "skip"] = Field(
        "fail", description="A row that cannot be scored (a value of the wrong type): fail names it and stops; skip "
                            "leaves it out and lists it in the lineage file.")
    output_format: Literal["parquet", "csv"] = Field(
        "parquet", description="The artifact's file format (an output file's format follows its extension).")
    model: str = Field(
        "latest", description="Run alone (`sluiceway predict --model`): which model scores: latest (the version "
                              "serving in pusher.destination), a version number there, or a SavedModel folder. In "
                              "the pipeline it is always the model just pushed (or already serving).")


Text = Annotated[str, AfterValidator(_non_empty), Expected("a non-empty text")]


class Owner(Section):
    name: Text
    contact: Optional[Text] = Field(None, description="An e-mail address, a team channel or a page.")


class EthicalConsideration(Section):
    name: Text = Field(description="The risk, e.g. 'loans denied to a protected group'.")
    mitigation: Optional[Text] = Field(None, description="What is done about it.")


class ModelCardConfig(Section):
    """What only people know about the model, for the model card written into every pushed version
    (the run fills in the rest: data, metrics per slice with intervals, gates, attributions, lineage).
    A section left empty is said to be empty on the card."""

    overview: Optional[Text] = Field(None, description="What the model does, in a few sentences.")
    owners: list[Owner] = Field(default_factory=list, description="Who answers for the model: [{name, contact}].")
    intended_uses: list[Text] = Field(default_factory=list, description="What the model is for.")
    intended_users: list[Text] = Field(default_factory=list, description="Who is meant to use its predictions.")
    out_of_scope_uses: list[Text] = Field(default_factory=list, description="Uses it must not be put to.")
    limitations: list[Text] = Field(default_factory=list, description="Known limitations and caveats.")
    ethical_considerations: list[EthicalConsideration] = Field(
        default_factory=list, description="Risks and their mitigations: [{name, mitigation}].")
    references: list[Text] = Field(default_factory=list, description="Papers, pages or documents about the model.")
    licenses: list[Text] = Field(default_factory=list, description="Licenses the model is shared under.")
    citations: list[Text] = Field(default_factory=list, description="How to cite the model.")


class PipelineConfig(Section):
    """A whole pipeline file."""

    pipeline: PipelineSection
    data: DataConfig
    features: FeaturesConfig
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    beam: BeamConfig = Field(default_factory=BeamConfig)
    transform: TransformConfig = Field(default_factory=TransformConfig)
    tuner: TunerConfig = Field(default_factory=TunerConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    infra_validator: InfraValidatorConfig = Field(default_factory=InfraValidatorConfig)
    pusher: PusherConfig = Field(default_factory=PusherConfig)
    kubeflow: KubeflowConfig = Field(default_factory=KubeflowConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    bulk_inference: BulkInferenceConfig = Field(default_factory=BulkInferenceConfig)
    model_card: ModelCardConfig = Field(default_factory=ModelCardConfig)

    @model_validator(mode="after")
    def _sections_agree(self) -> "PipelineConfig":
        problems = _Problems()
        for loc, message in cross_section_issues({name: getattr(self, name) for name in type(self).model_fields}):
            problems.add(loc, message)
        problems.raise_if_any(type(self).__name__)
        return self

    def section(self, name: str) -> Section:
        """The section called ``name`` (a top-level YAML key)."""
        return getattr(self, name)


SECTION_MODELS: dict[str, type[Section]] = {
    name: field.annotation for name, field in PipelineConfig.model_fields.items()  # type: ignore[misc]
}


def section_from_dict(name: str, value: dict[str, Any]) -> Section:
    """Rebuilds one section from its JSON form (as a KFP component receives it)."""
    return SECTION_MODELS[name].model_validate(value)
