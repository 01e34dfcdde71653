"""``sluiceway run --runner kfp-local``: the compiled components run through kfp's own local runner.

Each component runs in a subprocess of this Python (``kfp.local.SubprocessRunner(use_venv=False)``)
through the same ``components/<name>/component.py`` functions a Kubeflow cluster runs, and those
call the same ``core.execute`` as the default runner. kfp's local runner has no caching and no ML
Metadata, and it pays the TensorFlow import once per component.
"""

from __future__ import annotations

import os

from pipeline.config import PipelineConfig
from pipeline.errors import SluicewayError
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
    pipeline_func = build_pipeline(config, image="python:3.11")
    try:
        pipeline_func()
    except RuntimeError as exc:
        raise KfpLocalRunFailed(f"kfp local run of {config_file} failed: {exc}") from None
    return root
