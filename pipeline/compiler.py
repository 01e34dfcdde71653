"""Compiles a pipeline YAML into a Kubeflow Pipelines v2 spec.

One KFP component per pipeline component, made from the function in
``components/<name>/component.py`` with the image named by ``kubeflow.image`` and no ``pip
install`` at start-up (the image carries sluiceway and its locked dependencies). Config sections
become pipeline parameters whose defaults are the YAML's values as JSON text, so a run can
override them (JSON rather than KFP dicts: a KFP dict turns ints into floats and cannot hold null); a curated schema's text is embedded as the ``curated_schema`` parameter so tasks need no
access to the compiling machine's files.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import os
from typing import Callable

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.specs import COMPONENTS, ComponentSpec

CURATED_SCHEMA_PARAM = "curated_schema"


def pipeline_parameters(config: PipelineConfig, for_cluster: bool = True) -> dict[str, object]:
    """The compiled pipeline's parameters and their defaults, from the YAML.

    Args:
        for_cluster: Use ``kubeflow.beam_pipeline_options`` (when set) for the Beam-based
            components instead of ``beam.pipeline_options``.
    """
    sections = sorted({name for spec in COMPONENTS for name in spec.sections})
    dumped = {name: config.section(name).model_dump(mode="json", by_alias=True) for name in sections}
    if for_cluster and config.kubeflow.beam_pipeline_options is not None:
        dumped["beam"]["pipeline_options"] = list(config.kubeflow.beam_pipeline_options)
    curated = ""
    if config.validation.schema_path:
        path = config.validation.schema_path
        curated = _one_line_schema(path)
        dumped["validation"]["schema"] = None
    params: dict[str, object] = {name: json.dumps(value, sort_keys=True) for name, value in dumped.items()}
    params[CURATED_SCHEMA_PARAM] = curated
    return params


def _one_line_schema(path: str) -> str:
    """The curated schema as one line of protobuf text.

    kfp writes parameter defaults into a comment header of the compiled file, and a multi-line
    default breaks that file's YAML; one line also checks the schema parses before it ships.
    """
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    try:
        with open(path, encoding="utf-8") as handle:
            schema = text_format.Parse(handle.read(), schema_pb2.Schema())
    except OSError as exc:
        raise ConfigError(path, [ConfigIssue("validation.schema", f"cannot read the curated schema: {exc}")]) from None
    except text_format.ParseError as exc:
        raise ConfigError(path, [ConfigIssue("validation.schema", f"not a text-format TFMD Schema: {exc}")]) from None
    return text_format.MessageToString(schema, as_one_line=True)


def kfp_function(spec: ComponentSpec) -> Callable:
    """The undecorated KFP component function of ``spec`` (``components/<package>/component.py``)."""
    module = importlib.import_module(f"components.{spec.package}.component")
    return getattr(module, spec.package)


def build_pipeline(config: PipelineConfig, image: str | None = None, for_cluster: bool = True):
    """A KFP pipeline function for ``config``; its parameters default to the YAML's values.

    Args:
        config: The loaded pipeline.
        image: Overrides ``kubeflow.image``.
        for_cluster: Compile for a Kubeflow cluster: components with ``run_if`` go under
            ``dsl.If`` (the Pusher runs only when the Evaluator blessed the model), and each task
            gets its ``kubeflow`` settings (resources, retries, caching, node selectors,
            tolerations, image pull secrets) and the cluster's Beam options. kfp's local runners
            support none of that; without ``dsl.If`` the Pusher runs and refuses an unblessed
            model itself.
    """
    from kfp import dsl

    image = image or config.kubeflow.image
    components = {spec.name: dsl.component(kfp_function(spec), base_image=image, install_kfp_package=False)
                  for spec in COMPONENTS}
    defaults = pipeline_parameters(config, for_cluster)
    signature = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=copy.deepcopy(value),
                          annotation=type(value))
        for name, value in defaults.items()
    ])

    def body(*args, **kwargs):
        # kfp calls the pipeline function with its parameters as positional channels
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        params = bound.arguments
        tasks = {}
        for spec in COMPONENTS:
            component = components[spec.name]
            arguments = {}
            for name in component.component_spec.inputs or {}:
                if name in spec.inputs:
                    ref = spec.inputs[name]
                    arguments[name] = tasks[ref.component].outputs[ref.output]
                else:
                    arguments[name] = params[name]
            if for_cluster and spec.run_if:
                source, output = spec.run_if
                with dsl.If(tasks[source].outputs[output] == True, name=f"{source}-{output}"):  # noqa: E712
                    task = component(**arguments)
            else:
                task = component(**arguments)
            task.set_display_name(spec.name)
            if for_cluster:
                apply_task_settings(task, spec, config)
            for name in spec.after:
                task.after(tasks[name])
            tasks[spec.name] = task

    body.__signature__ = signature  # type: ignore[attr-defined]
    body.__name__ = body.__qualname__ = config.pipeline.name.replace("-", "_").replace(".", "_")
    body.__doc__ = (f"sluiceway pipeline '{config.pipeline.name}': "
                    + " -> ".join(spec.name for spec in COMPONENTS) + ".")
    return dsl.pipeline(body, name=config.pipeline.name, pipeline_root=config.kubeflow.pipeline_root)


def apply_task_settings(task, spec: ComponentSpec, config: PipelineConfig) -> None:
    """Resources, retries, caching and scheduling of one task, from ``kubeflow.defaults`` and
    ``kubeflow.components.<name>``."""
    from kfp import kubernetes

    settings = config.kubeflow.task_settings(spec.name)
    if settings.cpu_request:
        task.set_cpu_request(settings.cpu_request)
    if settings.cpu_limit:
        task.set_cpu_limit(settings.cpu_limit)
    if settings.memory_request:
        task.set_memory_request(settings.memory_request)
    if settings.memory_limit:
        task.set_memory_limit(settings.memory_limit)
    if settings.gpu:
        task.set_accelerator_type(settings.gpu_type or "nvidia.com/gpu")
        task.set_accelerator_limit(settings.gpu)
    if settings.retries:
        task.set_retry(num_retries=settings.retries)
    task.set_caching_options(enable_caching=spec.kfp_cache if settings.caching is None else settings.caching)
    for label, value in (settings.node_selector or {}).items():
        kubernetes.add_node_selector(task, label_key=label, label_value=value)
    for toleration in settings.tolerations or []:
        kubernetes.add_toleration(task, key=toleration.key, operator=toleration.operator, value=toleration.value,
                                  effect=toleration.effect, toleration_seconds=toleration.toleration_seconds)
    if config.kubeflow.image_pull_secrets:
        kubernetes.set_image_pull_secrets(task, list(config.kubeflow.image_pull_secrets))


def compile_pipeline(config: PipelineConfig, output: str) -> str:
    """Writes the KFP v2 pipeline spec of ``config`` to ``output`` (atomically).

    Returns:
        The path written.
    """
    from kfp import compiler

    output = os.path.abspath(output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    temp = os.path.join(os.path.dirname(output), f".{os.path.basename(output)}.tmp-{os.getpid()}.yaml")
    try:
        compiler.Compiler().compile(pipeline_func=build_pipeline(config), package_path=temp)
        os.replace(temp, output)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return output
