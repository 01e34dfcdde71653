"""Every component's KFP wrapper and core agree with its spec, and the wrapper runs the core on real
kfp artifact objects, as a Kubeflow task does."""

from __future__ import annotations

import ast
import inspect
import json
import os

import pytest
from kfp import dsl

from pipeline.compiler import pipeline_parameters
from pipeline.errors import DataError
from pipeline.kfp_component import METRICS_OUTPUT, kfp_component, kfp_function, wrapper_source
from pipeline.loader import load_config
from pipeline.specs import COMPONENTS, EXAMPLE_GEN, MONITOR
from tests.conftest import pipeline_yaml

_PARAMETER_TYPES = {bool: "BOOLEAN", str: "STRING", int: "NUMBER_INTEGER", float: "NUMBER_DOUBLE"}


@pytest.mark.parametrize("spec", [*COMPONENTS, MONITOR], ids=lambda s: s.name)
def test_the_kfp_interface_is_the_specs(spec):
    compiled = kfp_component(spec, "img").component_spec
    inputs, outputs = compiled.inputs or {}, compiled.outputs or {}
    expected_inputs = {*spec.sections, *(f.parameter for f in spec.config_files), *spec.inputs}
    assert set(inputs) == expected_inputs
    for name in spec.sections:
        assert inputs[name].type == "String", name
    for name, ref in spec.inputs.items():
        kind = COMPONENTS.input_type(spec, name)
        assert inputs[name].type == ("String" if kind.by_value else f"system.{kind.kfp_type}@0.0.1"), name
        assert bool(inputs[name].optional) == ref.optional, name
    expected_outputs = {*spec.outputs, *spec.parameters, METRICS_OUTPUT, *spec.kfp_logs}
    assert set(outputs) == expected_outputs
    for name, kind in spec.outputs.items():
        assert outputs[name].type == ("String" if kind.by_value else f"system.{kind.kfp_type}@0.0.1"), name
    for name, kind in spec.parameters.items():
        assert outputs[name].type == {"BOOLEAN": "Boolean", "STRING": "String", "NUMBER_INTEGER": "Integer",
                                      "NUMBER_DOUBLE": "Float"}[_PARAMETER_TYPES[kind]], name
    assert outputs[METRICS_OUTPUT].type == "system.Metrics@0.0.1"


def _literal_keys(tree: ast.AST, mapping: str) -> set[str]:
    """The string keys a function body reads from ``mapping`` (``inputs["x"]``, ``inputs.get("x")``)."""
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == mapping \
                and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == mapping and node.args \
                and isinstance(node.args[0], ast.Constant):
            keys.add(node.args[0].value)
    return keys


@pytest.mark.parametrize("spec", [*COMPONENTS, MONITOR], ids=lambda s: s.name)
def test_each_core_reads_exactly_what_its_spec_declares(spec):
    """A core that read an input, output or section its spec does not declare would fail in a run;
    one that ignores a declared one means the spec (and the cache key) says more than the code."""
    execute = spec.executor()
    assert list(inspect.signature(execute).parameters) == ["inputs", "outputs", "config", "progress"]
    tree = ast.parse(inspect.getsource(execute))
    assert _literal_keys(tree, "inputs") == set(spec.inputs), "inputs"
    assert _literal_keys(tree, "outputs") == set(spec.outputs), "outputs"
    assert _literal_keys(tree, "config") <= set(spec.sections), "sections"
    returned = {key.value for node in ast.walk(tree) if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict)
                for key in node.value.keys if isinstance(key, ast.Constant)}
    assert set(spec.parameters) <= returned, "output parameters"


def test_the_wrapper_is_one_call_with_the_specs_signature():
    source = wrapper_source(COMPONENTS["Evaluator"])
    assert "examples: Input[Dataset]" in source and "baseline: str" in source
    assert "-> NamedTuple('Outputs', [('blessed', bool), ('blocked_by', str)])" in source
    assert source.rstrip().endswith("return run('Evaluator', locals(), 'pipeline.specs', "
                                    "by_value={'baseline': 'baseline.json'})")


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


def test_the_resolver_wrapper_returns_its_record_as_a_value(tmp_path):
    from pipeline.specs import BASELINE_RESOLVER

    sections = {"pusher": json.dumps({"destination": str(tmp_path / "serving")}),
                "evaluator": json.dumps({"gates": [{"no_regression": "auc"}]})}
    model = dsl.Model(name="model", uri=str(tmp_path / "model"))
    os.makedirs(model.path)
    open(os.path.join(model.path, "saved_model.pb"), "wb").write(b"candidate")
    metrics = dsl.Metrics(name="metrics", uri=str(tmp_path / "metrics"))
    result = kfp_function(BASELINE_RESOLVER)(model=model, metrics=metrics, **sections)
    record = json.loads(result.baseline)
    assert record == {"serving": False}


def test_the_wrapper_reports_a_bad_source_with_the_same_error_as_the_local_runner(tmp_path):
    sections = {"data": json.dumps({"source": str(tmp_path / "missing.csv")}),
                "features": json.dumps({"label": "y", "positive": "1", "numeric": ["x"]})}
    with pytest.raises(DataError, match="missing.csv: no such file"):
        kfp_function(EXAMPLE_GEN)(examples=dsl.Dataset(name="examples", uri=str(tmp_path / "out")),
                                  metrics=dsl.Metrics(name="metrics", uri=str(tmp_path / "m")), **sections)


def test_a_task_rejects_a_config_parameter_with_an_unknown_key(tmp_path):
    from pydantic import ValidationError

    sections = {"data": json.dumps({"source": "x.csv", "sauce": 1}),
                "features": json.dumps({"label": "y", "positive": "1", "numeric": ["x"]})}
    with pytest.raises(ValidationError, match="sauce"):
        kfp_function(EXAMPLE_GEN)(examples=dsl.Dataset(name="examples", uri=str(tmp_path / "out")),
                                  metrics=dsl.Metrics(name="metrics", uri=str(tmp_path / "m")), **sections)
