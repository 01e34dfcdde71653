"""``sluiceway run --runner kfp-local`` and ``--runner docker``: the compiled components run as kfp tasks.

Each component runs as a task of kfp's own local runner: in a subprocess of this Python
(``kfp.local.SubprocessRunner(use_venv=False)``) or in the project's image (``DockerRunner``), through
the same generated KFP wrappers a Kubeflow cluster runs, which call the same ``core.execute`` as the
default runner. kfp 2.13's local pipeline runner has no ``dsl.If``, so the tasks are dispatched here,
one by one in the spec's order, with kfp's task executor: a component whose run condition is false
is skipped, as on a cluster and in the default runner. There is no cache and no ML Metadata, and
each task pays the TensorFlow import. The states and figures go to ``run.json`` in the run's folder.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from pipeline.config import PipelineConfig
from pipeline.errors import RunCancelled, SluicewayError
from pipeline.runner import (ComponentOutcome, RunResult, check_preflight, format_figures, negative_verdicts,
                             new_run_id, pipeline_dir, skip_reason, typed_figures, write_run_file)
from pipeline.specs import Components, pipeline_of

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


def run_with_kfp_local(config: PipelineConfig, config_file: str, *, until: str | None = None,
                       components: Components | None = None, echo: Callable[[str], None] = print) -> RunResult:
    """Runs every component as a task of kfp's SubprocessRunner.

    Returns:
        The run's outcome per component, as ``pipeline.runner.run_pipeline`` gives it.

    Raises:
        KfpLocalRunFailed: A task failed; its log (printed above) says why.
    """
    if components is None:
        components = pipeline_of(config)
    from kfp import local

    _patch_python_replacement()
    # task subprocesses inherit the environment: spare their logs Google's deprecation notices
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    root = os.path.abspath(os.path.join(pipeline_dir(config), KFP_LOCAL_DIR))
    os.makedirs(root, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root, raise_on_error=False)
    # the tasks execute in this machine's Python, whatever the image: name one kfp won't warn about
    return _run_tasks(config, config_file, "python:3.11", root, f"kfp local run of {config_file}", until,
                      components, echo)


def run_with_kfp_docker(config: PipelineConfig, config_file: str, image: str | None = None, *,
                        until: str | None = None, components: Components | None = None,
                        echo: Callable[[str], None] = print) -> RunResult:
    """``sluiceway run --runner docker``: every component in ``kubeflow.image`` through kfp's DockerRunner.

    kfp 2.13's DockerRunner mounts only the pipeline root, runs the image's (non-root) user, passes
    no environment and leaves every container behind; the compiled parameters hold host paths. So
    the tasks get ``data.source`` (read-only) and ``pusher.destination`` (read-write: the resolver
    reads the serving model, the Pusher writes) mounted at the same paths, run as this process's
    uid:gid so they can write the host-owned pipeline root, and their containers are removed.

    Raises:
        KfpLocalRunFailed: as ``run_with_kfp_local``.
        SluicewayError: The image is missing or was built from other code.
    """
    if components is None:
        components = pipeline_of(config)
    from kfp import local

    image = image or config.kubeflow.image
    _check_image(image)
    _patch_docker_runner(_host_mounts(config), user=f"{os.getuid()}:{os.getgid()}")
    root = os.path.abspath(os.path.join(pipeline_dir(config), KFP_DOCKER_DIR))   # kfp wants it absolute
    os.makedirs(root, exist_ok=True)
    local.init(runner=local.DockerRunner(), pipeline_root=root, raise_on_error=False)
    return _run_tasks(config, config_file, image, root, f"docker run of {config_file}", until, components, echo)


def _run_tasks(config: PipelineConfig, config_file: str, image: str, root: str, what: str, until: str | None,
               components: Components, echo: Callable[[str], None]) -> RunResult:
    """Dispatches each component as a kfp task in dependency order; skips what its conditions rule out."""
    from kfp.local import config as kfp_config
    from kfp.local import placeholder_utils, status, task_dispatcher, utils

    from pipeline.compiler import pipeline_parameters
    from pipeline.kfp_component import METRICS_OUTPUT, kfp_component

    specs = components.upstream_of(until) if until else components
    check_preflight(specs, config, config_file)
    params = pipeline_parameters(config, for_cluster=False, components=components)
    run_id = new_run_id()
    resource_name = f"{config.pipeline.name}-{run_id}"      # the run's folder under the kfp root
    run_dir = os.path.join(root, resource_name)
    unique_id = placeholder_utils.make_random_id()
    runner = kfp_config.LocalExecutionConfig.instance.runner
    outcomes = {spec.name: ComponentOutcome(spec.name, "not run") for spec in specs}
    task_outputs: dict[str, dict] = {}
    width = max(len(spec.name) for spec in specs)
    echo(f"Run {run_id} of pipeline '{config.pipeline.name}' as kfp tasks ({len(specs)} components, no cache)")
    failure: BaseException | None = None
    for index, spec in enumerate(specs, start=1):
        outcome = outcomes[spec.name]
        label = f"[{index}/{len(specs)}] {spec.name.ljust(width)}"
        reason = skip_reason(spec, outcomes)
        if reason is not None:
            outcome.state, outcome.skipped_because = "skipped", reason
            echo(f"{label}  skipped  ({reason})")
            continue
        pipeline_spec = kfp_component(spec, image, components).pipeline_spec
        component_name, component_spec = next(iter(pipeline_spec.components.items()))
        executor = utils.struct_to_executor_spec(
            pipeline_spec.deployment_spec["executors"][component_spec.executor_label])
        arguments = {name: params[name] for name in (*spec.sections, *(f.parameter for f in spec.config_files))}
        for name, ref in spec.inputs.items():
            if ref.component in task_outputs:
                arguments[name] = task_outputs[ref.component][ref.output]
        echo(f"{label}  running")
        started = time.monotonic()
        try:
            outputs, task_status = task_dispatcher.run_single_task_implementation(
                pipeline_resource_name=resource_name, component_name=component_name, component_spec=component_spec,
                executor_spec=executor, arguments=arguments, pipeline_root=root, runner=runner,
                raise_on_error=False, block_input_artifact=False, unique_pipeline_id=unique_id)
        except (KeyboardInterrupt, RunCancelled) as exc:
            failure = exc if isinstance(exc, RunCancelled) else RunCancelled("SIGINT")
            outcome.state, outcome.error = "failed", f"cancelled ({failure.signal_name})"
            break
        outcome.seconds = time.monotonic() - started
        if task_status != status.Status.SUCCESS:
            outcome.state, outcome.error = "failed", f"the {spec.name} task failed (its log is above)"
            failure = KfpLocalRunFailed(f"{what} failed: {spec.name} failed; its log is above")
            echo(f"{label}  FAILED   {outcome.seconds:6.1f}s")
            break
        task_outputs[spec.name] = outputs
        metrics = outputs.get(METRICS_OUTPUT)
        figures = dict(metrics.metadata) if metrics is not None else {}
        figures.update({name: outputs[name] for name in spec.parameters if name in outputs})
        outcome.state, outcome.figures = "executed", typed_figures(spec, figures)
        outcome.outputs = {name: outputs[name].path for name, kind in spec.outputs.items()
                           if not kind.by_value and name in outputs}
        echo(f"{label}  done     {outcome.seconds:6.1f}s  {format_figures(outcome.figures)}")
    blocked = negative_verdicts(specs, outcomes)
    result = RunResult(run_id, run_dir, "FAILED" if failure else "BLOCKED" if blocked else "SUCCEEDED",
                       list(outcomes.values()), blocked)
    os.makedirs(run_dir, exist_ok=True)
    write_run_file(result, config_file)
    if failure:
        raise failure
    return result


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
