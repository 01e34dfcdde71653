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
KFP_DOCKER_DIR = "kfp-docker"


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
    _run(pipeline_func, root, f"kfp local run of {config_file}")
    return root


def run_with_kfp_docker(config: PipelineConfig, config_file: str, image: str | None = None) -> str:
    """``sluiceway run --runner docker``: every component in ``kubeflow.image`` through kfp's DockerRunner.

    kfp 2.13's DockerRunner mounts only the pipeline root, runs the image's (non-root) user, passes
    no environment and leaves every container behind; the compiled parameters hold host paths. So
    the tasks get ``data.source`` (read-only), ``transform.module_file`` (read-only) and
    ``pusher.destination`` (read-write: the Evaluator reads the serving model, the Pusher writes)
    mounted at the same paths, run as this process's uid:gid so they can write the host-owned
    pipeline root, and their containers are removed.

    Raises:
        GateFailed, KfpLocalRunFailed: as ``run_with_kfp_local``.
        SluicewayError: The image is missing or was built from other code.
    """
    from kfp import local

    from pipeline.compiler import build_pipeline

    image = image or config.kubeflow.image
    _check_image(image)
    _patch_docker_runner(_host_mounts(config), user=f"{os.getuid()}:{os.getgid()}")
    root = os.path.abspath(os.path.join(pipeline_dir(config), KFP_DOCKER_DIR))   # kfp wants it absolute
    os.makedirs(root, exist_ok=True)
    local.init(runner=local.DockerRunner(), pipeline_root=root)
    pipeline_func = build_pipeline(config, image=image, for_cluster=False)   # no dsl.If in kfp's local runners
    _run(pipeline_func, root, f"docker run of {config_file}")
    return root


def _run(pipeline_func, root: str, what: str) -> None:
    """Runs the pipeline; a Pusher refusing an unblessed model is a gate verdict (exit code 5)."""
    started = time.time()
    try:
        pipeline_func()
    except RuntimeError as exc:
        blessing = _newest_blessing(root, started)
        if blessing is not None and not blessing["blessed"]:
            raise GateFailed(f"{what}: the Evaluator did not bless the model "
                             f"({len(blessing['blocking'])} gate checks failed) and the Pusher refused it") from None
        raise KfpLocalRunFailed(f"{what} failed: {exc}") from None


def _host_mounts(config: PipelineConfig) -> dict[str, dict]:
    """Host paths the compiled parameters name, as docker SDK volumes at the same paths."""
    import glob

    mounts: dict[str, dict] = {}

    def mount(path: str, mode: str) -> None:
        path = os.path.abspath(path)
        if mounts.get(path, {}).get("mode") != "rw":
            mounts[path] = {"bind": path, "mode": mode}

    source = config.data.source
    if glob.has_magic(source):
        source = os.path.dirname(source[:min(source.index(c) for c in "*?[" if c in source)] + "x")
    mount(source if os.path.isdir(source) else os.path.dirname(source), "ro")
    if config.transform.module_file:
        mount(os.path.dirname(config.transform.module_file), "ro")
    if config.pusher.destination:
        os.makedirs(config.pusher.destination, exist_ok=True)   # podman refuses to bind a missing path
        mount(config.pusher.destination, "rw")
    return mounts


def _patch_docker_runner(mounts: dict[str, dict], user: str) -> None:
    """kfp 2.13's run_docker_container, with ``mounts`` added, ``user`` set, no pull (an image is
    built, not fetched: ``sluiceway build-image``) and the finished container removed."""
    from kfp.local import docker_task_handler

    def run_docker_container(client, image, command, volumes):
        image = docker_task_handler.add_latest_tag_if_not_present(image=image)
        container = client.containers.run(image=image, command=command, detach=True, stdout=True, stderr=True,
                                          volumes={**volumes, **mounts}, user=user,
                                          environment={"PYTHONWARNINGS": os.environ.get(
                                              "PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")})
        try:
            for line in container.logs(stream=True):
                print(line.decode(errors="replace"), end="")
            return container.wait()["StatusCode"]
        finally:
            container.remove(force=True)

    docker_task_handler.run_docker_container = run_docker_container


def _check_image(image: str) -> None:
    """The image must exist locally, under its full name (podman tags ``localhost/NAME:TAG``), and
    carry this tree's code: the spec is compiled here and run with the image's copy."""
    import docker

    client = docker.from_env()
    try:
        try:
            labels = client.images.get(image).labels or {}
        except docker.errors.ImageNotFound:
            raise SluicewayError(f"image {image} not found: build it with `sluiceway build-image` "
                                 "(podman names local images localhost/NAME:TAG)") from None
    finally:
        client.close()
    from pipeline.image import code_sha256

    built_from = labels.get("dev.sluiceway.code-sha256")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if built_from and os.path.isdir(os.path.join(root, "components")) and built_from != code_sha256(root):
        raise SluicewayError(f"image {image} was built from other code than this tree's: rebuild it "
                             "(`sluiceway build-image`)")


def _newest_blessing(root: str, since: float) -> dict | None:
    """The blessing an Evaluator task of this run wrote, if any."""
    found = [os.path.join(folder, BLESSING_FILE) for folder, _, files in os.walk(root) if BLESSING_FILE in files]
    found = [path for path in found if os.path.getmtime(path) >= since]
    if not found:
        return None
    with open(max(found, key=os.path.getmtime), encoding="utf-8") as handle:
        return json.load(handle)
