"""The KFP component wrappers: what a Kubeflow task calls, on real kfp artifact objects."""

from __future__ import annotations

import inspect
import json
import os

import pytest
from kfp import dsl

from components.common.kfp_entry import run
from pipeline.compiler import kfp_function, pipeline_parameters
from pipeline.errors import DataError
from pipeline.loader import load_config
from pipeline.specs import COMPONENTS, EXAMPLE_GEN
from tests.conftest import pipeline_yaml


def test_each_wrapper_declares_the_specs_inputs_outputs_and_config_sections():
    kinds = {"Dataset": dsl.Dataset, "Artifact": dsl.Artifact, "HTML": dsl.HTML, "Markdown": dsl.Markdown,
             "Model": dsl.Model}
    for spec in COMPONENTS:
        parameters = inspect.signature(kfp_function(spec)).parameters
        for section in spec.sections:
            assert parameters[section].annotation is str, (spec.name, section)
        for name in spec.inputs:
            assert "InputAnnotation" in str(parameters[name].annotation), (spec.name, name)
        for name, artifact_type in spec.outputs.items():
            annotation = str(parameters[name].annotation)
            assert "OutputAnnotation" in annotation and kinds[artifact_type.kfp_type].__name__ in annotation, (spec.name, name)
        assert "metrics" in parameters, spec.name


def test_example_gen_wrapper_runs_the_core_and_logs_figures_as_kfp_metrics(tmp_path, write_pipeline, credit_csv):
    config = load_config(write_pipeline(pipeline_yaml(credit_csv)))
    params = pipeline_parameters(config)
    examples = dsl.Dataset(name="examples", uri=str(tmp_path / "examples"))
    metrics = dsl.Metrics(name="metrics", uri=str(tmp_path / "metrics"))
    kfp_function(EXAMPLE_GEN)(data=params["data"], features=params["features"], examples=examples, metrics=metrics)
    assert metrics.metadata["rows"] == 4000.0
    assert metrics.metadata["rows_train"] + metrics.metadata["rows_eval"] + metrics.metadata["rows_test"] == 4000.0
    info = json.load(open(os.path.join(examples.path, "split_info.json")))
    assert info["splits"]["train"]["rows"] == metrics.metadata["rows_train"]


def test_the_wrapper_reports_a_bad_source_with_the_same_error_as_the_local_runner(tmp_path):
    sections = {"data": json.dumps({"source": str(tmp_path / "missing.csv")}),
                "features": json.dumps({"label": "y", "positive": "1", "numeric": ["x"]})}
    with pytest.raises(DataError, match="missing.csv: no such file"):
        run("ExampleGen", sections, {}, {"examples": dsl.Dataset(name="examples", uri=str(tmp_path / "out"))})


def test_a_task_rejects_a_config_parameter_with_an_unknown_key(tmp_path):
    from pydantic import ValidationError

    sections = {"data": json.dumps({"source": "x.csv", "sauce": 1}),
                "features": json.dumps({"label": "y", "positive": "1", "numeric": ["x"]})}
    with pytest.raises(ValidationError, match="sauce"):
        run("ExampleGen", sections, {}, {"examples": dsl.Dataset(name="examples", uri=str(tmp_path / "out"))})
