"""The KFP wrapper of each component, generated from its spec.

KFP reads a component's interface from a Python function's signature and ships the function's
source in the compiled spec. Writing that function by hand would repeat the spec (sections, inputs,
outputs, output parameters) in a third place, so it is generated from the spec instead: its
signature says what the spec says, and its body is one call to ``components.common.kfp_entry.run``,
which unpacks the artifacts and calls the same ``core.execute`` as the local runner.

``wrapper_source(spec)`` shows the code a Kubeflow task runs; the golden compiled spec holds it too.
"""

from __future__ import annotations

import linecache
from typing import Callable

from pipeline.specs import COMPONENTS, ComponentSpec, Components

METRICS_OUTPUT = "metrics"   # every component logs its numeric figures to a Metrics artifact
_PARAMETER_TYPES = {bool: "bool", str: "str", int: "int", float: "float"}


def interface(spec: ComponentSpec, components: Components = COMPONENTS) -> list[tuple[str, str, bool]]:
    """The KFP function's parameters in order: (name, annotation, optional)."""
    params: list[tuple[str, str, bool]] = [(section, "str", False) for section in spec.sections]
    params += [(f.parameter, "str", True) for f in spec.config_files]
    for name, ref in spec.inputs.items():
        kind = _input_type(spec, name, components)
        optional = ref.optional
        params.append((name, "str" if kind is None or kind.by_value else f"Input[{kind.kfp_type}]", optional))
    for name, kind in spec.outputs.items():
        if not kind.by_value:
            params.append((name, f"Output[{kind.kfp_type}]", False))
    params.append((METRICS_OUTPUT, "Output[Metrics]", False))
    params += [(name, f"Output[{log.kfp_type}]", False) for name, log in spec.kfp_logs.items()]
    return params


def returned(spec: ComponentSpec) -> list[tuple[str, str]]:
    """The KFP output parameters: the spec's parameters, then by-value outputs (as JSON text)."""
    out = [(name, _PARAMETER_TYPES[kind]) for name, kind in spec.parameters.items()]
    out += [(name, "str") for name, kind in spec.outputs.items() if kind.by_value]
    return out


def _input_type(spec: ComponentSpec, name: str, components: Components):
    ref = spec.inputs[name]
    if ref.component not in components:
        return None
    return components.input_type(spec, name)


def wrapper_source(spec: ComponentSpec, components: Components = COMPONENTS) -> str:
    """The Python source of ``spec``'s KFP component function."""
    params = interface(spec, components)
    # KFP wants parameters with defaults last
    ordered = [p for p in params if not p[2]] + [p for p in params if p[2]]
    signature = ",\n        ".join(f"{name}: {annotation}" + (" = None" if optional and annotation.startswith("Input")
                                                               else ' = ""' if optional else "")
                                   for name, annotation, optional in ordered)
    outputs = returned(spec)
    result = ""
    if outputs:
        fields = ", ".join(f"({name!r}, {kind})" for name, kind in outputs)
        result = f" -> NamedTuple('Outputs', [{fields}])"
    by_value = {name: kind.file_name for name, kind in spec.outputs.items() if kind.by_value}
    by_value.update({name: kind.file_name for name in spec.inputs
                     if (kind := _input_type(spec, name, components)) is not None and kind.by_value})
    call = f"run({spec.name!r}, locals(), {spec.declared_in!r}" + (f", by_value={by_value!r})" if by_value else ")")
    return (f"def {spec.function_name}(\n        {signature}){result}:\n"
            f"    {spec.doc!r}\n"
            f"    from components.common.kfp_entry import run\n\n"
            f"    return {call}\n")


def kfp_function(spec: ComponentSpec, components: Components = COMPONENTS) -> Callable:
    """The generated KFP component function of ``spec``, undecorated."""
    from typing import NamedTuple

    from kfp import dsl

    source = wrapper_source(spec, components)
    file_name = f"<sluiceway KFP wrapper of {spec.name}>"
    # inspect.getsource (which KFP calls to ship the function) reads the code through linecache
    linecache.cache[file_name] = (len(source), None, source.splitlines(keepends=True), file_name)
    namespace = {name: getattr(dsl, name) for name in ("Input", "Output", "Artifact", "Dataset", "Model", "HTML",
                                                       "Markdown", "Metrics", "ClassificationMetrics")}
    namespace["NamedTuple"] = NamedTuple
    namespace["__name__"] = f"sluiceway_kfp_{spec.function_name}"
    exec(compile(source, file_name, "exec", dont_inherit=True), namespace)  # noqa: S102 - our own generated code
    return namespace[spec.function_name]


def kfp_component(spec: ComponentSpec, image: str, components: Components = COMPONENTS):
    """``spec`` as a KFP component running in ``image`` (which carries sluiceway: nothing is installed)."""
    from kfp import dsl

    return dsl.component(kfp_function(spec, components), base_image=image, install_kfp_package=False)
