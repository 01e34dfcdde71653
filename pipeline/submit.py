"""``sluiceway submit``: compile the pipeline and start a run of it on a Kubeflow Pipelines cluster.

The compiled package carries the YAML's values as parameter defaults; ``--param trainer.epochs=5``
changes one value for this run only. Overrides are checked with the rest of the file first (same
messages as ``validate-config``), and only the sections they change are sent as run arguments.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import yaml

from pipeline.errors import ConfigError, ConfigIssue, SluicewayError


class SubmitFailed(SluicewayError):
    """The Kubeflow Pipelines API could not be reached or refused the run."""


@dataclass
class Submission:
    """What ``submit`` sends: the compiled package and this run's arguments."""

    config_file: str
    package: str
    pipeline_name: str
    image: str
    host: str | None
    experiment: str
    run_name: str
    namespace: str | None
    arguments: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    warnings: list[ConfigIssue] = field(default_factory=list)   # the file's, and host paths the spec carries
    package_kept: bool = True

    def describe(self) -> str:
        kept = "" if self.package_kept else " (temporary: removed when submit ends; -o FILE keeps it)"
        lines = [f"package:    {self.package}{kept} (pipeline '{self.pipeline_name}', image {self.image})",
                 f"host:       {self.host or '(none given)'}" + (f", namespace {self.namespace}" if self.namespace
                                                                  else ""),
                 f"experiment: {self.experiment}",
                 f"run name:   {self.run_name}"]
        if self.overrides:
            lines.append("arguments:  " + ", ".join(f"{k}={json.dumps(v)}" for k, v in self.overrides.items()))
            lines += [f"  {name} = {value}" for name, value in self.arguments.items()]
        else:
            lines.append("arguments:  none (the YAML's values, compiled in as defaults)")
        return "\n".join(lines)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["trainer.epochs=5", "pusher.destination=gs://b/m"]`` -> ``{"trainer.epochs": 5, ...}``.

    Values are read as YAML scalars or flow collections, as the pipeline file is read (YAML 1.2 booleans,
    bounded nesting): ``5``, ``0.01``, ``true``, ``[64, 32]``.
    """
    from pipeline.loader import YamlTooLarge, read_yaml

    params: dict[str, Any] = {}
    issues = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            issues.append(ConfigIssue("--param", f"expected KEY=VALUE with KEY a YAML path such as trainer.epochs, "
                                                 f"got {pair!r}"))
            continue
        try:
            params[key] = read_yaml(text) if text.strip() else ""   # read as the pipeline file is, bounded
        except YamlTooLarge as exc:
            issues.append(ConfigIssue("--param", f"{key}: {exc.message}"))
        except yaml.YAMLError:
            params[key] = text
    if issues:
        raise ConfigError("--param", issues)
    return params


def prepare(config_file: str, params: dict[str, Any], *, host: str | None, experiment: str | None,
            run_name: str | None, namespace: str | None, package: str, package_kept: bool = True) -> Submission:
    """Validates the file with the overrides, compiles it to ``package`` and works out the run arguments
    and the warnings (``loader.config_warnings``, ``compiler.host_path_warnings``) of the run's config."""
    from pipeline.compiler import compile_pipeline, host_path_warnings, pipeline_parameters
    from pipeline.loader import config_warnings, load_config

    base = load_config(config_file)
    config = load_config(config_file, overrides=params) if params else base
    unknown = sorted({key.split(".")[0] for key in params} - set(pipeline_parameters(base)))
    if unknown:
        raise ConfigError(config_file, [ConfigIssue(f"--param {name}", "not a pipeline parameter; expected a key "
                                                                        "inside one of " + ", ".join(
                                                                            sorted(pipeline_parameters(base))))
                                        for name in unknown])
    compile_pipeline(base, package)
    defaults, wanted = pipeline_parameters(base), pipeline_parameters(config)
    arguments = {name: value for name, value in wanted.items() if value != defaults[name]}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Submission(config_file=config_file, package=package, pipeline_name=base.pipeline.name,
                      image=base.kubeflow.image, host=host, experiment=experiment or base.pipeline.name,
                      run_name=run_name or f"{base.pipeline.name}-{stamp}", namespace=namespace,
                      arguments=arguments, overrides=dict(params),
                      warnings=config_warnings(config) + host_path_warnings(config), package_kept=package_kept)


def send(submission: Submission, client_factory: Callable[..., Any] | None = None) -> str:
    """Creates the run; returns its id.

    Raises:
        SubmitFailed: The host is unreachable, refuses the credentials, or rejects the package.
    """
    if not submission.host:
        raise SubmitFailed("submit: give --host URL (the Kubeflow Pipelines API, e.g. http://localhost:8080 after "
                           "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`), or --dry-run")
    if client_factory is None:
        import kfp

        client_factory = kfp.Client
    try:
        client = client_factory(host=submission.host, namespace=submission.namespace,
                                existing_token=os.environ.get("KF_PIPELINES_TOKEN") or None)
        run = client.create_run_from_pipeline_package(
            submission.package, arguments=submission.arguments, run_name=submission.run_name,
            experiment_name=submission.experiment, namespace=submission.namespace)
    except Exception as exc:  # noqa: BLE001 - urllib3, kfp_server_api and auth errors all mean "not submitted"
        reason = " ".join(str(exc).split())[:400] or type(exc).__name__
        raise SubmitFailed(f"submit: could not create the run on {submission.host}: {type(exc).__name__}: {reason}. "
                           "Check that the host is the Kubeflow Pipelines API (port-forwarded or in-cluster "
                           "address) and that you are authorised (KF_PIPELINES_TOKEN or the in-cluster "
                           "service account). Nothing was submitted.") from None
    return run.run_id


@contextmanager
def package_file(output: str | None) -> Iterator[str]:
    """Where to compile the package: ``output`` when given (kept), else a file in a fresh temporary
    folder that is removed, with whatever is in it, when the block ends (a dry run, a run sent, or
    an error)."""
    if output:
        yield output
        return
    folder = tempfile.mkdtemp(prefix="sluiceway-submit-")
    try:
        yield os.path.join(folder, "pipeline.yaml")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
