"""Artifact types and component interfaces, declared once.

The local runner, the ML Metadata records and the Kubeflow compiler all read these: no other
module spells an artifact or component name as a string literal.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional


@dataclass(frozen=True)
class ArtifactType:
    """A kind of artifact.

    Attributes:
        name: Type name recorded in ML Metadata (TFX's names where TFX has one).
        kfp_type: The KFP artifact class it compiles to (``dsl.Dataset``, ``dsl.HTML``, ...).
        file_name: For single-file artifacts (HTML, Markdown): the file's name inside the local output
            folder. ``None`` means the artifact is a folder.
    """

    name: str
    kfp_type: str
    file_name: str | None = None


EXAMPLES = ArtifactType("Examples", "Dataset")
STATISTICS = ArtifactType("ExampleStatistics", "Artifact")
STATISTICS_VIEW = ArtifactType("ExampleStatisticsView", "HTML", "statistics.html")
SCHEMA = ArtifactType("Schema", "Artifact")
ANOMALIES = ArtifactType("ExampleAnomalies", "Artifact")
ANOMALIES_REPORT = ArtifactType("ExampleAnomaliesReport", "Markdown", "anomalies.md")
TRANSFORM_GRAPH = ArtifactType("TransformGraph", "Artifact")
HYPERPARAMETERS = ArtifactType("HyperParameters", "Artifact")
TUNER_TRIALS = ArtifactType("TunerTrials", "Markdown", "trials.md")
MODEL = ArtifactType("Model", "Model")
MODEL_RUN = ArtifactType("ModelRun", "Artifact")
MODEL_EVALUATION = ArtifactType("ModelEvaluation", "Artifact")
EVALUATION_REPORT = ArtifactType("ModelEvaluationReport", "Markdown", "evaluation.md")
MODEL_BLESSING = ArtifactType("ModelBlessing", "Artifact")
FAIRNESS_REPORT = ArtifactType("FairnessReport", "HTML", "fairness_report.html")
PUSHED_MODEL = ArtifactType("PushedModel", "Artifact")

# Files inside folder artifacts, shared by the components that write and read them.
SPLIT_INFO_FILE = "split_info.json"
SCHEMA_FILE = "schema.pbtxt"
SCHEMA_SOURCE_FILE = "schema_source.json"
STATS_FILE = "FeatureStats.pb"
ANOMALIES_FILE = "SchemaDiff.pb"
ANOMALIES_SUMMARY_FILE = "anomalies.json"
FEATURE_KINDS_FILE = "feature_kinds.json"
HYPERPARAMETERS_FILE = "hyperparameters.json"
TRAINING_SUMMARY_FILE = "training.json"
EVALUATION_SUMMARY_FILE = "metrics.json"
BLESSING_FILE = "blessing.json"


@dataclass(frozen=True)
class InputRef:
    """An input fed from another component's output."""

    component: str
    output: str


@dataclass(frozen=True)
class ComponentSpec:
    """The interface of one pipeline component.

    Attributes:
        name: TFX-style name (``ExampleGen``); also the output folder name in a run.
        package: The ``components.<package>`` that implements it; its ``core.execute`` runs it and
            its sources make up the code version used by the cache.
        sections: Config sections (top-level YAML keys) the component reads.
        inputs: Input name -> the upstream output that feeds it.
        outputs: Output name -> artifact type.
        summary: Figures of this component that ``sluiceway runs`` shows.
        after: Components that must succeed first though no artifact flows from them (a gate).
        run_if: ``(component, boolean output)``: in the compiled Kubeflow pipeline the component
            runs under ``dsl.If`` on that output (the Pusher on the Evaluator's ``blessed``).
            The component still checks the condition itself: kfp's local runner has no ``dsl.If``.
        kfp_cache: Whether KFP's cache is on by default for the component's task (off when the
            result depends on state outside its inputs, such as the model serving now).
    """

    name: str
    package: str
    sections: tuple[str, ...]
    inputs: Mapping[str, InputRef] = field(default_factory=dict)
    outputs: Mapping[str, ArtifactType] = field(default_factory=dict)
    summary: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    run_if: Optional[tuple[str, str]] = None
    kfp_cache: bool = True

    @property
    def core_module(self) -> str:
        return f"components.{self.package}.core"

    def executor(self) -> Callable:
        """Imports the component's core and returns its ``execute`` function."""
        return importlib.import_module(self.core_module).execute

    def input_type(self, name: str) -> ArtifactType:
        ref = self.inputs[name]
        return COMPONENTS_BY_NAME[ref.component].outputs[ref.output]


EXAMPLE_GEN = ComponentSpec(
    name="ExampleGen",
    package="example_gen",
    sections=("data", "features"),
    outputs={"examples": EXAMPLES},
    summary=("rows",),
)
STATISTICS_GEN = ComponentSpec(
    name="StatisticsGen",
    package="statistics_gen",
    sections=("features", "beam"),
    inputs={"examples": InputRef("ExampleGen", "examples")},
    outputs={"statistics": STATISTICS, "statistics_view": STATISTICS_VIEW},
)
SCHEMA_GEN = ComponentSpec(
    name="SchemaGen",
    package="schema_gen",
    sections=("features", "validation"),
    inputs={"statistics": InputRef("StatisticsGen", "statistics")},
    outputs={"schema": SCHEMA},
)
EXAMPLE_VALIDATOR = ComponentSpec(
    name="ExampleValidator",
    package="example_validator",
    sections=("features", "validation"),
    inputs={
        "statistics": InputRef("StatisticsGen", "statistics"),
        "schema": InputRef("SchemaGen", "schema"),
    },
    outputs={"anomalies": ANOMALIES, "anomalies_report": ANOMALIES_REPORT},
    summary=("anomalies",),
)

TRANSFORM = ComponentSpec(
    name="Transform",
    package="transform",
    sections=("features", "transform", "beam"),
    inputs={
        "examples": InputRef("ExampleGen", "examples"),
        "schema": InputRef("SchemaGen", "schema"),
    },
    outputs={"transform_graph": TRANSFORM_GRAPH, "transformed_examples": EXAMPLES},
    after=("ExampleValidator",),  # data with anomalies never reaches training
)

TUNER = ComponentSpec(
    name="Tuner",
    package="tuner",
    sections=("tuner", "trainer"),
    inputs={
        "transformed_examples": InputRef("Transform", "transformed_examples"),
        "transform_graph": InputRef("Transform", "transform_graph"),
    },
    outputs={"best_hyperparameters": HYPERPARAMETERS, "trials": TUNER_TRIALS},
)
TRAINER = ComponentSpec(
    name="Trainer",
    package="trainer",
    sections=("trainer",),
    inputs={
        "transformed_examples": InputRef("Transform", "transformed_examples"),
        "transform_graph": InputRef("Transform", "transform_graph"),
        "hyperparameters": InputRef("Tuner", "best_hyperparameters"),
    },
    outputs={"model": MODEL, "model_run": MODEL_RUN},
    summary=("eval_auc",),
)

EVALUATOR = ComponentSpec(
    name="Evaluator",
    package="evaluator",
    sections=("evaluator", "features", "beam", "pusher"),
    inputs={
        "examples": InputRef("ExampleGen", "examples"),
        "model": InputRef("Trainer", "model"),
    },
    outputs={"evaluation": MODEL_EVALUATION, "evaluation_report": EVALUATION_REPORT, "blessing": MODEL_BLESSING,
             "fairness_report": FAIRNESS_REPORT},
    summary=("blessed",),
    kfp_cache=False,  # the baseline is whatever serves in pusher.destination at the time
    # in Kubeflow also: the output parameter ``blessed``, and Metrics and ClassificationMetrics
    # (ROC curve, confusion matrix) artifacts, which hold no files (see component.py)
)

PUSHER = ComponentSpec(
    name="Pusher",
    package="pusher",
    # every section that shapes the model, for the manifest's config fingerprint
    sections=("pusher", "data", "features", "transform", "tuner", "trainer", "evaluator"),
    inputs={
        "model": InputRef("Trainer", "model"),
        "blessing": InputRef("Evaluator", "blessing"),
        "evaluation": InputRef("Evaluator", "evaluation"),
        "examples": InputRef("ExampleGen", "examples"),
    },
    outputs={"pushed_model": PUSHED_MODEL},
    summary=("pushed", "version"),
    run_if=("Evaluator", "blessed"),
    kfp_cache=False,  # a push is a side effect: a cached task would push nothing
)

# Dependency order; the local runner executes them in this order.
COMPONENTS: tuple[ComponentSpec, ...] = (
    EXAMPLE_GEN, STATISTICS_GEN, SCHEMA_GEN, EXAMPLE_VALIDATOR, TRANSFORM, TUNER, TRAINER, EVALUATOR, PUSHER)
COMPONENTS_BY_NAME: dict[str, ComponentSpec] = {spec.name: spec for spec in COMPONENTS}
COMPONENT_NAMES: tuple[str, ...] = tuple(spec.name for spec in COMPONENTS)


def upstream_of(name: str) -> list[ComponentSpec]:
    """``name`` and every component it depends on, in dependency order."""
    needed = {name}
    for spec in reversed(COMPONENTS):
        if spec.name in needed:
            needed.update(ref.component for ref in spec.inputs.values())
            needed.update(spec.after)
    return [spec for spec in COMPONENTS if spec.name in needed]
