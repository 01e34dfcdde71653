"""What every KFP component body calls: unpack artifacts, rebuild typed config, run the core.

The KFP wrapper of each component is generated from its spec (``pipeline.kfp_component``) and its
body is one call to ``run``; this module, installed in the container image, does the rest from the
same spec. The same ``core.execute`` runs here as in the local runner.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import namedtuple
from typing import Any, Mapping

METRICS_OUTPUT = "metrics"


def run(component: str, arguments: Mapping[str, Any], declared_in: str = "pipeline.specs",
        by_value: Mapping[str, str] | None = None):
    """Runs ``component``'s core on a KFP task's arguments.

    Args:
        component: The component's name (``ExampleGen``...).
        arguments: The KFP function's arguments by name (its ``locals()``): config sections and
            embedded config files as text, input and output artifacts, metrics artifacts.
        declared_in: The module declaring the component's spec.
        by_value: Inputs and outputs that travel as JSON text (see ``ArtifactType.by_value``) ->
            their file name.

    Returns:
        The output parameters (a named tuple, in the spec's order), or ``None`` without any.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from pipeline.config import section_from_dict
    from pipeline.specs import find_spec, load_reference

    spec = find_spec(component, declared_in)
    by_value = dict(by_value or {})
    config = {name: section_from_dict(name, json.loads(arguments[name])) for name in spec.sections}
    scratch = tempfile.mkdtemp(prefix=f"sluiceway-{spec.function_name}-")
    for embedded in spec.config_files:
        text = arguments.get(embedded.parameter) or ""
        if text and embedded.section in config:
            # the spec carries the file's content, so the task needs no access to the compiling machine's files
            original = getattr(config[embedded.section], embedded.field) or embedded.parameter
            path = os.path.join(scratch, embedded.parameter, os.path.basename(original))
            os.makedirs(os.path.dirname(path))
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(json.loads(text))
            config[embedded.section] = config[embedded.section].model_copy(update={embedded.field: path})
    inputs = {}
    for name in spec.inputs:
        value = arguments.get(name)
        if value is None or value == "":
            continue   # an optional input left unconnected
        if name in by_value:
            path = os.path.join(scratch, "in", name, by_value[name])
            os.makedirs(os.path.dirname(path))
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(value)
            inputs[name] = path
        else:
            inputs[name] = value.path
    outputs = {}
    for name in spec.outputs:
        if name in by_value:
            outputs[name] = os.path.join(scratch, "out", name, by_value[name])
            os.makedirs(os.path.dirname(outputs[name]))
        else:
            outputs[name] = arguments[name].path
    figures = spec.executor()(inputs, outputs, config, lambda line: print(f"{component}: {line}", flush=True))
    metrics = arguments.get(METRICS_OUTPUT)
    if metrics is not None:
        for name, value in figures.items():
            if isinstance(value, (int, float, bool)):  # KFP metrics are numbers; text stays in the logs
                metrics.log_metric(name, float(value))
    for name, log in spec.kfp_logs.items():
        load_reference(log.logger)(outputs, arguments[name])
    verdict = spec.verdict
    if verdict is not None and not figures.get(verdict.parameter):
        print(f"{component}: {figures.get(verdict.reason, '')}", flush=True)
    values = [figures[name] for name in spec.parameters]
    for name in spec.outputs:
        if name in by_value:
            with open(outputs[name], encoding="utf-8") as handle:
                values.append(handle.read())
    names = [*spec.parameters, *(name for name in spec.outputs if name in by_value)]
    if not names:
        return None
    return namedtuple("Outputs", names)(*values)
