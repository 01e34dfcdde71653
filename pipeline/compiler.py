"""Compiles a pipeline YAML into a Kubeflow Pipelines v2 spec.

One KFP component per pipeline component, generated from its spec (``pipeline.kfp_component``), with
the image named by ``kubeflow.image`` and no ``pip install`` at start-up (the image carries sluiceway
and its locked dependencies). Config sections become pipeline parameters whose defaults are the
YAML's values as JSON text, so a run can override them (JSON rather than KFP dicts: a KFP dict turns
ints into floats and cannot hold null). Files named by config fields (a curated schema, a
preprocessing module) are embedded as parameters holding their content (JSON text), so tasks need no
access to the compiling machine's files. A component with run conditions runs under ``dsl.If``.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import typing

from pipeline.config import SECTION_MODELS, PathStr, PipelineConfig
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.files import atomic_path
from pipeline.kfp_component import kfp_component
from pipeline.specs import ComponentSpec, Components, Condition, load_reference, pipeline_of


def pipeline_parameters(config: PipelineConfig, for_cluster: bool = True,
                        components: Components | None = None) -> dict[str, object]:
    """The compiled pipeline's parameters and their defaults, from the YAML.

    Args:
        for_cluster: Use ``kubeflow.beam_pipeline_options`` (when set) for the Beam-based
            components instead of ``beam.pipeline_options``.
    """
    if components is None:
        components = pipeline_of(config)
    dumped = {name: config.section(name).model_dump(mode="json", by_alias=True) for name in components.sections}
    if for_cluster and config.kubeflow.beam_pipeline_options is not None and "beam" in dumped:
        dumped["beam"]["pipeline_options"] = list(config.kubeflow.beam_pipeline_options)
    embedded: dict[str, str] = {}
    for spec in components:
        for file in spec.config_files:
            path = getattr(config.section(file.section), file.field)
            embedded[file.parameter] = _embedded_text(path, file) if path else ""
            if path:  # the content travels; the compiling machine's path does not
                field = SECTION_MODELS[file.section].model_fields[file.field]
                dumped[file.section][field.alias or file.field] = None
    params: dict[str, object] = {name: json.dumps(value, sort_keys=True) for name, value in dumped.items()}
    params.update(embedded)
    return params


def host_path_warnings(config: PipelineConfig, components: Components | None = None) -> list[ConfigIssue]:
    """The local (non-URL) paths the compiled spec carries as written, one warning each naming the
    field, the path and the tasks given it: those tasks look for the path inside their container, not
    on this machine. Files a spec embeds (``config_files``: a curated schema, a preprocessing
    module) travel as their content and are not warned about."""
    if components is None:
        components = pipeline_of(config)
    embedded = {(file.section, file.field) for spec in components for file in spec.config_files}
    warnings = []
    for section in components.sections:
        for name, info in SECTION_MODELS[section].model_fields.items():
            value = getattr(config.section(section), name)
            if not _is_path_field(info) or (section, name) in embedded or not value or "://" in value:
                continue
            readers = ", ".join(spec.name for spec in components if section in spec.sections)
            warnings.append(ConfigIssue(
                f"{section}.{info.alias or name}",
                f"{value} is a path on this machine, compiled into the spec as written: the tasks given it "
                f"({readers}) look for it inside their container, so it must exist there at that path (e.g. a "
                f"mounted volume)"))
    return warnings


def _is_path_field(info) -> bool:
    """Whether a config field is a ``PathStr`` (a path resolved against the YAML's folder), optional or not."""
    return all(meta in info.metadata for meta in PathStr.__metadata__) or PathStr in typing.get_args(info.annotation)


def _embedded_text(path: str, file) -> str:
    """The file's content as one line of JSON text (kfp writes parameter defaults into a comment header
    of the compiled file, and a multi-line default breaks that file's YAML); checked first."""
    if file.check:
        load_reference(file.check)(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.dumps(handle.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigIssue(f"{file.section}.{file.field}", f"cannot read {path}: {exc}")]) from None


def conditions_of(spec: ComponentSpec, components: Components) -> list[Condition]:
    """The conditions ``spec`` runs under: its own and those of every component it waits for (a
    component downstream of a skipped one is skipped too)."""
    found: list[Condition] = []
    for name in sorted(spec.upstream()):
        if name in components:
            found += [c for c in conditions_of(components[name], components) if c not in found]
    return found + [c for c in spec.run_if if c not in found]


def build_pipeline(config: PipelineConfig, image: str | None = None, components: Components | None = None):
    """A KFP pipeline function for ``config``; its parameters default to the YAML's values.

    Each task runs under ``dsl.If`` for its run conditions (the Pusher only when the Evaluator
    blessed the model) and gets its ``kubeflow`` settings (resources, retries, caching, node
    selectors, tolerations, image pull secrets) and the cluster's Beam options.

    Args:
        config: The loaded pipeline.
        image: Overrides ``kubeflow.image``.
        components: The components to compile (default: sluiceway's pipeline).
    """
    if components is None:
        components = pipeline_of(config)
    from kfp import dsl

    image = image or config.kubeflow.image
    kfp_components = {spec.name: kfp_component(spec, image, components) for spec in components}
    defaults = pipeline_parameters(config, True, components)
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
        scopes = _Scopes(tasks)
        for spec in components:
            component = kfp_components[spec.name]
            arguments = {}
            for name in component.component_spec.inputs or {}:
                if name in spec.inputs:
                    ref = spec.inputs[name]
                    if ref.component in tasks:
                        arguments[name] = tasks[ref.component].outputs[ref.output]
                else:
                    arguments[name] = params[name]
            scopes.enter(conditions_of(spec, components))
            task = component(**arguments)
            task.set_display_name(spec.name)
            apply_task_settings(task, spec, config)
            for name in spec.after:
                task.after(tasks[name])
            tasks[spec.name] = task
        scopes.enter([])

    body.__signature__ = signature  # type: ignore[attr-defined]
    body.__name__ = body.__qualname__ = config.pipeline.name.replace("-", "_").replace(".", "_")
    body.__doc__ = (f"sluiceway pipeline '{config.pipeline.name}': "
                    + " -> ".join(spec.name for spec in components) + ".")
    return dsl.pipeline(body, name=config.pipeline.name, pipeline_root=config.kubeflow.pipeline_root)


class _Scopes:
    """The ``dsl.If`` blocks tasks are created in, one per condition, nested in order.

    Consecutive tasks under the same conditions share the blocks (KFP refuses a task that depends on
    one inside another block of the same condition): a task under ``[A, B]`` after one under ``[A]``
    opens ``B`` inside the open ``A``; one under ``[]`` closes them. The order is topological and a
    task's conditions include those of what it waits for, so a block is never needed again once closed.
    """

    def __init__(self, tasks: dict):
        self.tasks = tasks
        self.open: list[tuple[Condition, object]] = []

    def enter(self, conditions: list[Condition]) -> None:
        from kfp import dsl

        keep = 0
        while keep < min(len(self.open), len(conditions)) and self.open[keep][0] == conditions[keep]:
            keep += 1
        while len(self.open) > keep:
            self.open.pop()[1].__exit__(None, None, None)
        for condition in conditions[keep:]:
            block = dsl.If(self.tasks[condition.component].outputs[condition.parameter] == True,  # noqa: E712
                           name=f"{condition.component}-{condition.parameter}")
            block.__enter__()
            self.open.append((condition, block))


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


def compile_pipeline(config: PipelineConfig, output: str, components: Components | None = None) -> str:
    """Writes the KFP v2 pipeline spec of ``config`` to ``output`` (atomically).

    Returns:
        The path written.
    """
    if components is None:
        components = pipeline_of(config)
    from kfp import compiler

    output = os.path.abspath(output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with atomic_path(output, suffix=".yaml") as temp:   # kfp picks the format by the file's extension
        compiler.Compiler().compile(pipeline_func=build_pipeline(config, components=components), package_path=temp)
    return output
