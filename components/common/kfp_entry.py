"""What every KFP component body calls: unpack artifacts, rebuild typed config, run the core.

The functions in ``components/<name>/component.py`` are compiled into the Kubeflow spec verbatim,
so they stay one call long; this module, installed in the container image, does the rest. The
same ``core.execute`` runs here as in the local runner.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Mapping


def run(component: str, sections: Mapping[str, str], inputs: Mapping[str, Any], outputs: Mapping[str, Any],
        metrics: Any = None, curated_schema: str = "") -> dict:
    """Runs ``component``'s core on KFP artifacts.

    Args:
        component: The component's name (``ExampleGen``...).
        sections: Config sections as JSON text (KFP parameters).
        inputs: Input name -> KFP input artifact.
        outputs: Output name -> KFP output artifact.
        metrics: Optional ``Output[Metrics]``; the component's figures are logged to it.
        curated_schema: Text of a curated schema.pbtxt, embedded in the spec at compile time.

    Returns:
        The component's figures.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from pipeline.config import section_from_dict
    from pipeline.specs import COMPONENTS_BY_NAME

    spec = COMPONENTS_BY_NAME[component]
    config = {name: section_from_dict(name, json.loads(value)) for name, value in sections.items()}
    if curated_schema and "validation" in config:
        # the spec carries the schema's text, so the task needs no access to the compiling machine's files
        path = os.path.join(tempfile.mkdtemp(prefix="sluiceway-schema-"), "schema.pbtxt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(curated_schema)
        config["validation"] = config["validation"].model_copy(update={"schema_path": path})
    figures = spec.executor()({n: a.path for n, a in inputs.items()}, {n: a.path for n, a in outputs.items()},
                              config, lambda line: print(f"{component}: {line}", flush=True))
    if metrics is not None:
        for name, value in figures.items():
            if isinstance(value, (int, float, bool)):  # KFP metrics are numbers; text stays in the logs
                metrics.log_metric(name, float(value))
    return figures
