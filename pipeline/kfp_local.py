"""``sluiceway run --runner kfp-local``: the compiled components run through kfp's own local runner.

Each component runs in a subprocess of this Python (``kfp.local.SubprocessRunner(use_venv=False)``)
through the same ``components/<name>/component.py`` functions a Kubeflow cluster runs, and those
call the same ``core.execute`` as the default runner. kfp's local runner has no caching and no ML
Metadata, and it pays the TensorFlow import once per component.
"""

from __future__ import annotations

import json
import os
import time

from pipeline.config import PipelineConfig
from pipeline.errors import GateFailed, SluicewayError
from pipeline.specs import BLESSING_FILE
from pipeline.runner import pipeline_dir

KFP_LOCAL_DIR = "kfp-local"


class KfpLocalRunFailed(SluicewayError):
    """kfp's local runner reported a failed task."""


def _patch_python_replacement() -> None:
    """kfp 2.13's SubprocessRunner swaps *every* 'python3' substring in a task's command line for the
    interpreter path, parameter values and artifact paths included; only the interpreter call should change."""
    from kfp.local import subprocess_task_handler

    def replace_python_executable(full_command, new_executable):
        return [part.replace("python3 -m kfp.dsl.executor_main", f"{new_executable} -m kfp.dsl.executor_main")
                for part in full_command]

    subprocess_task_handler.replace_python_executable = replace_python_executable


def run_with_kfp_local(config: PipelineConfig, config_file: str) -> str:
    """Runs the compiled pipeline with kfp's SubprocessRunner.

    Returns:
        The kfp pipeline root the outputs were written under.

    Raises:
        GateFailed: The Pusher refused the model the Evaluator did not bless (kfp's local runner
            has no ``dsl.If``, so the Pusher runs and checks the blessing itself).
        KfpLocalRunFailed: A task failed; its log (printed above) says why.
    """
    from kfp import local

    from pipeline.compiler import build_pipeline

    _patch_python_replacement()
    # task subprocesses inherit the environment: spare their logs Google's deprecation notices
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    root = os.path.join(pipeline_dir(config), KFP_LOCAL_DIR)
    os.makedirs(root, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root)
    # the local runner executes in this machine's Python, whatever the image: name one kfp won't warn about
    pipeline_func = build_pipeline(config, image="python:3.11", for_cluster=False)
    started = time.time()
    try:
        pipeline_func()
    except RuntimeError as exc:
        blessing = _newest_blessing(root, started)
        if blessing is not None and not blessing["blessed"]:
            raise GateFailed(f"kfp local run of {config_file}: the Evaluator did not bless the model "
                             f"({len(blessing['blocking'])} gate checks failed) and the Pusher refused it") from None
        raise KfpLocalRunFailed(f"kfp local run of {config_file} failed: {exc}") from None
    return root


def _newest_blessing(root: str, since: float) -> dict | None:
    """The blessing an Evaluator task of this run wrote, if any."""
    found = [os.path.join(folder, BLESSING_FILE) for folder, _, files in os.walk(root) if BLESSING_FILE in files]
    found = [path for path in found if os.path.getmtime(path) >= since]
    if not found:
        return None
    with open(max(found, key=os.path.getmtime), encoding="utf-8") as handle:
        return json.load(handle)
