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
        metrics: Any = None, curated_schema: str = "", gate_verdict: bool = False) -> dict:
    """Runs ``component``'s core on KFP artifacts.

    Args:
        component: The component's name (``ExampleGen``...).
        sections: Config sections as JSON text (KFP parameters).
        inputs: Input name -> KFP input artifact.
        outputs: Output name -> KFP output artifact.
        metrics: Optional ``Output[Metrics]``; the component's figures are logged to it.
        curated_schema: Text of a curated schema.pbtxt, embedded in the spec at compile time.
        gate_verdict: A ``GateFailed`` from the core is the component's outcome, not a failure:
            the outputs are complete, the failed checks are printed and the figures say
            ``blessed: False``. (The Evaluator; the pipeline then skips the Pusher.)

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
    from pipeline.errors import GateFailed

    try:
        figures = spec.executor()({n: a.path for n, a in inputs.items()}, {n: a.path for n, a in outputs.items()},
                                  config, lambda line: print(f"{component}: {line}", flush=True))
    except GateFailed as exc:
        if not gate_verdict:
            raise
        print(f"{component}: {exc}", flush=True)
        figures = {"blessed": False}
    if metrics is not None:
        for name, value in figures.items():
            if isinstance(value, (int, float, bool)):  # KFP metrics are numbers; text stays in the logs
                metrics.log_metric(name, float(value))
    return figures


def log_classification_metrics(evaluation_dir: str, classification_metrics: Any) -> None:
    """Logs the Evaluator's ROC curve and confusion matrix to a KFP ``ClassificationMetrics``."""
    from components.evaluator.core import CLASSIFICATION_FILE

    with open(os.path.join(evaluation_dir, CLASSIFICATION_FILE), encoding="utf-8") as handle:
        data = json.load(handle)
    roc = data["roc"]
    classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["threshold"])
    confusion = data["confusion_matrix"]
    if confusion["matrix"] is not None:
        classification_metrics.log_confusion_matrix(confusion["categories"],
                                                    [[int(v) for v in row] for row in confusion["matrix"]])
