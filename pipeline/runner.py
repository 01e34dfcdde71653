"""The local runner: executes a pipeline in-process, in dependency order, with caching and lineage.

Every component runs in this one process, so TensorFlow's multi-second import is paid once per
run, not once per component. Outputs go to ``<root>/<pipeline>/<run-id>/<component>/<output>/``;
each is written under a temporary name and renamed when complete, so a crash never leaves a
partial output that looks complete. Executions and artifacts are recorded in ML Metadata
(``pipeline.lineage``), which is also what the cache consults.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping

from pipeline.config import PipelineConfig
from pipeline.errors import ComponentFailed, SluicewayError
from pipeline.files import file_sha256
from pipeline.lineage import Lineage, StoredArtifact
from pipeline.specs import COMPONENTS, ComponentSpec, upstream_of

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_FILE = "run.json"


@dataclass
class ComponentOutcome:
    """What happened to one component in a run."""

    name: str
    state: str  # executed | cached | failed | not run
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    reused_from: str | None = None
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    run_dir: str
    status: str  # SUCCEEDED | FAILED
    components: list[ComponentOutcome]

    @property
    def executed(self) -> int:
        return sum(c.state == "executed" for c in self.components)

    @property
    def cached(self) -> int:
        return sum(c.state == "cached" for c in self.components)

    def outcome(self, name: str) -> ComponentOutcome:
        return next(c for c in self.components if c.name == name)


def pipeline_dir(config: PipelineConfig) -> str:
    return os.path.join(config.pipeline.root, config.pipeline.name)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def code_version(spec: ComponentSpec) -> str:
    """Hash of the component's own sources and the shared code it runs on."""
    digest = hashlib.sha256()
    folders = [os.path.join(_PACKAGE_ROOT, "components", spec.package), os.path.join(_PACKAGE_ROOT, "components", "common")]
    files = [os.path.join(_PACKAGE_ROOT, "pipeline", name) for name in ("config.py", "specs.py")]
    for folder in folders:
        files += [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".py")]
    for path in files:
        digest.update(os.path.relpath(path, _PACKAGE_ROOT).encode())
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def cache_key(spec: ComponentSpec, config: PipelineConfig, inputs: Mapping[str, StoredArtifact]) -> str:
    """What decides whether an earlier execution can be reused: code, config sections, inputs, and
    whatever else the component's core names: files it reads (``external_files``) or other state
    (``cache_material``, e.g. the Evaluator's serving model)."""
    core = importlib.import_module(spec.core_module)
    sections = {name: config.section(name) for name in spec.sections}
    external = getattr(core, "external_files", lambda _: [])(sections)
    extra = getattr(core, "cache_material", lambda *_: {})(
        sections, {name: _input_path(spec, name, artifact) for name, artifact in inputs.items()})
    material = {
        "component": spec.name,
        "code": code_version(spec),
        "config": {name: config.section(name).model_dump(mode="json", by_alias=True) for name in spec.sections},
        "inputs": {name: artifact.fingerprint for name, artifact in sorted(inputs.items())},
        "files": {path: file_sha256(path) for path in external},
        **({"extra": extra} if extra else {}),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def run_pipeline(config: PipelineConfig, config_file: str, *, use_cache: bool = True,
                 until: str | None = None, echo: Callable[[str], None] = print) -> RunResult:
    """Runs the pipeline locally.

    Args:
        config: The loaded pipeline.
        config_file: The YAML it came from (recorded with the run).
        use_cache: Reuse outputs of earlier identical executions.
        until: Run only this component and what it depends on.
        echo: Receives progress lines.

    Returns:
        The run's outcome per component. A run whose components all succeed has status SUCCEEDED.

    Raises:
        ComponentFailed: A component failed; downstream components did not run. The run is
            recorded as FAILED first.
    """
    specs = upstream_of(until) if until else list(COMPONENTS)
    root = pipeline_dir(config)
    lineage = Lineage(root)
    run_id = new_run_id()
    run_dir = os.path.join(root, run_id)
    os.makedirs(run_dir)
    run = lineage.start_run(config.pipeline.name, run_id, os.path.abspath(config_file))
    echo(f"Run {run_id} of pipeline '{config.pipeline.name}' ({len(specs)} components, "
         f"cache {'on' if use_cache else 'off'})")
    artifacts: dict[tuple[str, str], StoredArtifact] = {}
    outcomes = [ComponentOutcome(spec.name, "not run") for spec in specs]
    width = max(len(spec.name) for spec in specs)
    failure: ComponentFailed | None = None
    for index, (spec, outcome) in enumerate(zip(specs, outcomes), start=1):
        label = f"[{index}/{len(specs)}] {spec.name.ljust(width)}"
        inputs = {name: artifacts[(ref.component, ref.output)] for name, ref in spec.inputs.items()}
        started = time.monotonic()
        try:
            key = cache_key(spec, config, inputs)
            hit = lineage.find_cached(spec.name, key) if use_cache else None
            if hit is not None:
                outputs = lineage.record_execution(
                    spec.name, run, state="CACHED", cache_key=key, run_id=run_id, inputs=inputs, new_outputs={},
                    reused_outputs=hit.outputs, properties={"reused_execution": hit.execution_id, **hit.figures})
                outcome.state, outcome.reused_from, outcome.figures = "cached", hit.run_id, hit.figures
                outcome.outputs = {name: a.uri for name, a in outputs.items()}
                echo(f"{label}  cached   (outputs of run {hit.run_id})")
            else:
                echo(f"{label}  running")
                outputs, figures = _execute(spec, config, inputs, key, run_dir, run_id, run, lineage,
                                            lambda line: echo(f"    {spec.name}: {line}"))
                outcome.state, outcome.figures = "executed", figures
                outcome.outputs = {name: a.uri for name, a in outputs.items()}
                outcome.seconds = time.monotonic() - started
                shown = "  ".join(f"{k}={_fmt(v)}" for k, v in figures.items()
                                  if not (isinstance(v, str) and len(v) > 40))  # long text is for lineage
                echo(f"{label}  done     {outcome.seconds:6.1f}s  {shown}")
        except Exception as exc:  # any failure stops the run; the user sees which component and why
            outcome.state, outcome.seconds = "failed", time.monotonic() - started
            outcome.error = str(exc)
            failure = ComponentFailed(spec.name, exc)
            echo(f"{label}  FAILED   {outcome.seconds:6.1f}s")
            break
        for name, artifact in outputs.items():
            artifacts[(spec.name, name)] = artifact
    status = "FAILED" if failure else "SUCCEEDED"
    figures = {f"{o.name}.{k}": v for o in outcomes for k, v in o.figures.items()}
    figures.update({"executed": sum(o.state == "executed" for o in outcomes),
                    "cached": sum(o.state == "cached" for o in outcomes)})
    lineage.finish_run(run, status, figures)
    result = RunResult(run_id, run_dir, status, outcomes)
    _write_run_file(result, config_file)
    if failure:
        raise failure
    return result


def _execute(spec: ComponentSpec, config: PipelineConfig, inputs: Mapping[str, StoredArtifact], key: str,
             run_dir: str, run_id: str, run, lineage: Lineage, progress: Callable[[str], None]):
    component_dir = os.path.join(run_dir, spec.name)
    os.makedirs(component_dir, exist_ok=True)
    temp_dirs = {name: os.path.join(component_dir, f".tmp-{name}-{secrets.token_hex(3)}") for name in spec.outputs}
    paths = {}
    for name, artifact_type in spec.outputs.items():
        os.makedirs(temp_dirs[name])
        paths[name] = os.path.join(temp_dirs[name], artifact_type.file_name) if artifact_type.file_name else temp_dirs[name]
    sections = {name: config.section(name) for name in spec.sections}
    input_paths = {name: _input_path(spec, name, artifact) for name, artifact in inputs.items()}
    try:
        figures = spec.executor()(input_paths, paths, sections, progress)
    except SluicewayError as exc:
        if getattr(exc, "outputs_complete", False):
            # a verdict (e.g. data anomalies): keep the evidence, but never cache a failed execution
            final = _commit(spec, temp_dirs, component_dir, key)
            lineage.record_execution(spec.name, run, state="FAILED", cache_key=key, run_id=run_id, inputs=inputs,
                                     new_outputs=final, reused_outputs={}, properties={"error": str(exc)[:2000]})
            progress("outputs kept in " + component_dir)
        else:
            _discard(temp_dirs)
            lineage.record_execution(spec.name, run, state="FAILED", cache_key=key, run_id=run_id, inputs=inputs,
                                     new_outputs={}, reused_outputs={}, properties={"error": str(exc)[:2000]})
        raise
    except BaseException as exc:
        _discard(temp_dirs)
        lineage.record_execution(spec.name, run, state="FAILED", cache_key=key, run_id=run_id, inputs=inputs,
                                 new_outputs={}, reused_outputs={},
                                 properties={"error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise
    final = _commit(spec, temp_dirs, component_dir, key)
    outputs = lineage.record_execution(spec.name, run, state="COMPLETE", cache_key=key, run_id=run_id, inputs=inputs,
                                       new_outputs=final, reused_outputs={}, properties=figures)
    return outputs, figures


def _input_path(spec: ComponentSpec, name: str, artifact: StoredArtifact) -> str:
    file_name = spec.input_type(name).file_name
    return os.path.join(artifact.uri, file_name) if file_name else artifact.uri


def _commit(spec: ComponentSpec, temp_dirs: Mapping[str, str], component_dir: str, key: str):
    final = {}
    for name, artifact_type in spec.outputs.items():
        target = os.path.join(component_dir, name)
        os.rename(temp_dirs[name], target)
        fingerprint = hashlib.sha256(f"{key}/{name}".encode()).hexdigest()
        final[name] = (artifact_type, target, fingerprint)
    return final


def _discard(temp_dirs: Mapping[str, str]) -> None:
    for path in temp_dirs.values():
        shutil.rmtree(path, ignore_errors=True)


def _write_run_file(result: RunResult, config_file: str) -> None:
    body = {
        "run_id": result.run_id,
        "status": result.status,
        "config_file": os.path.abspath(config_file),
        "components": [
            {"name": c.name, "state": c.state, "seconds": round(c.seconds, 3), "figures": c.figures,
             "outputs": c.outputs, "reused_from": c.reused_from, "error": c.error}
            for c in result.components
        ],
    }
    temp = os.path.join(result.run_dir, f".{RUN_FILE}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(body, handle, indent=2)
    os.replace(temp, os.path.join(result.run_dir, RUN_FILE))


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
