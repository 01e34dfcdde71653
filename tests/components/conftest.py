"""Tiny pipeline inputs for the model components' core tests, built once per session by the cores
themselves: ExampleGen -> StatisticsGen -> SchemaGen -> Transform on a few hundred generated rows,
then the Tuner (tuning off) and a Trainer run of a few epochs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import pytest

ROWS = 600
SEED = 5
NUMERIC = ["age", "income", "credit_score", "debt_to_income"]
CATEGORICAL = ["employment_type", "sex", "race"]
# A small, quick model; the numbers differ from TrainerConfig's defaults so a test can tell them apart.
TINY_TRAINER = {"hidden_units": [16, 8], "embedding_dim": 4, "dropout": 0.0, "learning_rate": 0.01,
                "batch_size": 32, "epochs": 3, "early_stopping_patience": 2, "seed": 7}


def features_config():
    from pipeline.config import FeaturesConfig

    return FeaturesConfig(label="approved", positive="yes", numeric=NUMERIC, categorical=CATEGORICAL,
                          sensitive=["sex", "race"])


def trainer_config(**changes):
    from pipeline.config import TrainerConfig

    return TrainerConfig.model_validate({**TINY_TRAINER, **changes})


def make_outputs(folder: str, folders: tuple[str, ...] = (), files: dict[str, str] | None = None) -> dict[str, str]:
    """Output paths as the runner hands them to a core: a folder per folder artifact, a file path
    inside its own folder for a single-file artifact."""
    outputs = {}
    for name in folders:
        outputs[name] = os.path.join(folder, name)
        os.makedirs(outputs[name])
    for name, file_name in (files or {}).items():
        os.makedirs(os.path.join(folder, name))
        outputs[name] = os.path.join(folder, name, file_name)
    return outputs


def run_data_half(root, config: dict) -> tuple[str, dict[str, str]]:
    """ExampleGen -> StatisticsGen -> SchemaGen -> Transform into ``root`` with ``config``; returns the
    Examples folder and Transform's outputs (``transform_graph``, ``transformed_examples``)."""
    from components.example_gen.core import execute as example_gen
    from components.schema_gen.core import execute as schema_gen
    from components.statistics_gen.core import execute as statistics_gen
    from components.transform.core import execute as transform

    gen = make_outputs(str(root / "ExampleGen"), ("examples",))
    example_gen({}, gen, config)
    stats = make_outputs(str(root / "StatisticsGen"), ("statistics",), {"statistics_view": "statistics.html"})
    statistics_gen({"examples": gen["examples"]}, stats, config)
    schema = make_outputs(str(root / "SchemaGen"), ("schema",))
    schema_gen({"statistics": stats["statistics"]}, schema, config)
    transformed = make_outputs(str(root / "Transform"), ("transform_graph", "transformed_examples"))
    transform({"examples": gen["examples"], "schema": schema["schema"]}, transformed, config)
    return gen["examples"], transformed


@dataclass
class TinyPipeline:
    """Outputs of the data half of the pipeline, and its figures."""

    examples: str
    transform_graph: str
    transformed_examples: str
    figures: dict = field(default_factory=dict)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> TinyPipeline:
    from components.example_gen.core import execute as example_gen
    from components.schema_gen.core import execute as schema_gen
    from components.statistics_gen.core import execute as statistics_gen
    from components.transform.core import execute as transform
    from pipeline.config import BeamConfig, DataConfig, EvaluatorConfig, TransformConfig, ValidationConfig
    from pipeline.datagen import generate

    root = tmp_path_factory.mktemp("tiny-pipeline")
    source = str(root / "credit.csv.gz")
    generate(source, rows=ROWS, seed=SEED)
    config = {"data": DataConfig.model_validate({"source": source, "split": {"key": "applicant_id"}}),
              "features": features_config(), "beam": BeamConfig(), "validation": ValidationConfig(),
              "transform": TransformConfig(), "evaluator": EvaluatorConfig()}
    figures = {}
    gen = make_outputs(str(root / "ExampleGen"), ("examples",))
    figures["ExampleGen"] = example_gen({}, gen, config)
    stats = make_outputs(str(root / "StatisticsGen"), ("statistics",), {"statistics_view": "statistics.html"})
    figures["StatisticsGen"] = statistics_gen({"examples": gen["examples"]}, stats, config)
    schema = make_outputs(str(root / "SchemaGen"), ("schema",))
    figures["SchemaGen"] = schema_gen({"statistics": stats["statistics"]}, schema, config)
    transformed = make_outputs(str(root / "Transform"), ("transform_graph", "transformed_examples"))
    figures["Transform"] = transform({"examples": gen["examples"], "schema": schema["schema"]}, transformed, config)
    return TinyPipeline(gen["examples"], transformed["transform_graph"], transformed["transformed_examples"], figures)


@dataclass
class TrainedModel:
    """A Trainer run (tuning off) on the tiny pipeline."""

    pipeline: TinyPipeline
    hyperparameters: str
    model: str
    model_run: str
    figures: dict
    progress: list[str]


def run_trainer_core(pipeline: TinyPipeline, hyperparameters: str, folder: str, trainer=None) -> tuple[dict, dict,
                                                                                                          list[str]]:
    """``components.trainer.core.execute`` into ``folder``; returns its outputs, figures and progress lines."""
    from components.trainer.core import execute

    outputs = make_outputs(folder, ("model", "model_run"))
    lines: list[str] = []
    figures = execute({"transformed_examples": pipeline.transformed_examples,
                       "transform_graph": pipeline.transform_graph, "hyperparameters": hyperparameters},
                      outputs, {"trainer": trainer or trainer_config()}, lines.append)
    return outputs, figures, lines


@pytest.fixture(scope="session")
def trained_model(tiny_pipeline, tmp_path_factory) -> TrainedModel:
    from components.tuner.core import execute as tuner
    from pipeline.config import TunerConfig

    root = tmp_path_factory.mktemp("tiny-model")
    tuned = make_outputs(str(root / "Tuner"), ("best_hyperparameters",), {"trials": "trials.md"})
    tuner({"transformed_examples": tiny_pipeline.transformed_examples,
           "transform_graph": tiny_pipeline.transform_graph}, tuned,
          {"tuner": TunerConfig(), "trainer": trainer_config()})
    outputs, figures, lines = run_trainer_core(tiny_pipeline, tuned["best_hyperparameters"], str(root / "Trainer"))
    return TrainedModel(tiny_pipeline, tuned["best_hyperparameters"], outputs["model"], outputs["model_run"],
                        figures, lines)


@pytest.fixture(scope="session")
def served_eval(trained_model) -> dict:
    """The trained model's ``serving_default`` on the raw eval split: ``records`` and ``scores`` ([n, 1])."""
    import tensorflow as tf

    records = raw_records(trained_model.pipeline.examples, "eval")
    serve = tf.saved_model.load(trained_model.model).signatures["serving_default"]
    return {"records": records, "scores": serve(examples=tf.constant(records))["scores"].numpy()}


def raw_records(examples_dir: str, split: str) -> list[bytes]:
    """The serialized raw tf.Examples of one split of an Examples artifact."""
    from components.common.artifacts import split_file
    from components.common.tfrecord import read_records

    return list(read_records(split_file(examples_dir, split)))


def read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def markdown_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``text``, as header -> cell."""
    block: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            block.append(line)
        elif block:
            break
    if len(block) < 2:
        return []

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip()[1:-1].split(" | ")]

    headers = cells(block[0])
    rows = []
    for line in block[2:]:
        row = cells(line)
        assert len(row) == len(headers), f"a table row with {len(row)} cells under {len(headers)} headers: {line}"
        rows.append(dict(zip(headers, row)))
    return rows
