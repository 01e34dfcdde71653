"""The local runner: executes a pipeline in-process, in dependency order, with caching and lineage.

Every component runs in this one process, so TensorFlow's multi-second import is paid once per
run, not once per component. Outputs go to ``<root>/<pipeline>/<run-id>/<component>/<output>/``;
each is written under a temporary name and renamed when complete, so a crash never leaves a
partial output that looks complete. Executions and artifacts are recorded in ML Metadata
(``pipeline.lineage``), which is also what the cache consults.

What happens to a component in a run (its state):

- ``executed``: its core ran and its outputs were committed;
- ``cached``: an earlier execution with the same cache key is reused;
- ``skipped``: a run condition is false (the Pusher when the Evaluator did not bless the model),
  or a component it waits for was skipped;
- ``failed``: its core raised; the run stops, and the rest is ``not run``.

A verdict (the Evaluator's ``blessed``) is an output value: the component completes either way, is
cached like any other, and ``RunResult.blocked`` says which verdicts were negative.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Mapping

from pipeline.code_version import code_version
from pipeline.config import PipelineConfig
from pipeline.errors import ComponentFailed, ConfigError, ConfigIssue, RunCancelled, SluicewayError
from pipeline.files import atomic_write_json, file_sha256, listing_difference, tree_listing, tree_sha256
from pipeline.lineage import Lineage, StoredArtifact
from pipeline.run_lock import RunLock
from pipeline.specs import ComponentSpec, Components, load_reference, pipeline_of

RUN_FILE = "run.json"


@dataclass
class ComponentOutcome:
    """What happened to one component in a run."""

    name: str
    state: str  # executed | cached | skipped | failed | not run
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    reused_from: str | None = None
    error: str | None = None
    skipped_because: str | None = None


@dataclass(frozen=True)
class Blocked:
    """A negative verdict: which component judged, why, and the exit code the CLI gives it."""

    component: str
    reason: str
    exit_code: int


@dataclass
class RunResult:
    run_id: str
    run_dir: str
    status: str  # SUCCEEDED | BLOCKED | FAILED
    components: list[ComponentOutcome]
    blocked: list[Blocked] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def executed(self) -> int:
        return sum(c.state == "executed" for c in self.components)

    @property
    def cached(self) -> int:
        return sum(c.state == "cached" for c in self.components)

    @property
    def skipped(self) -> int:
        return sum(c.state == "skipped" for c in self.components)

    def outcome(self, name: str) -> ComponentOutcome:
        return next(c for c in self.components if c.name == name)


def pipeline_dir(config: PipelineConfig) -> str:
    return os.path.join(config.pipeline.root, config.pipeline.name)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def cache_key(spec: ComponentSpec, config: PipelineConfig, inputs: Mapping[str, StoredArtifact]) -> str:
    """What decides whether an earlier execution can be reused: the code of every sluiceway module
    the component imports, its config sections, its inputs' content fingerprints and the content of
    the files outside the pipeline it reads (``ComponentSpec.files_read``)."""
    sections = {name: config.section(name) for name in spec.sections}
    material = {
        "component": spec.name,
        "code": code_version(spec.core_module),
        "config": {name: section.model_dump(mode="json", by_alias=True) for name, section in sections.items()},
        "inputs": {name: artifact.fingerprint for name, artifact in sorted(inputs.items())},
        "files": {path: file_sha256(path) for path in spec.files_read(sections)},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def typed_figures(spec: ComponentSpec, figures: Mapping[str, object]) -> dict:
    """Figures with the declared output parameters in their types (ML Metadata keeps a bool as 0/1)."""
    out = dict(figures)
    for name, kind in spec.parameters.items():
        if name in out and out[name] is not None:
            out[name] = kind(out[name])
    return out


def skip_reason(spec: ComponentSpec, outcomes: Mapping[str, ComponentOutcome]) -> str | None:
    """Why ``spec`` must be skipped, or ``None`` when it may run."""
    for condition in spec.run_if:
        outcome = outcomes.get(condition.component)
        if outcome is None or outcome.state == "skipped":
            return f"{condition.component} was skipped"
        if not outcome.figures.get(condition.parameter):
            return f"{condition} is false"
    for ref in spec.inputs.values():
        outcome = outcomes.get(ref.component)
        if outcome is not None and outcome.state == "skipped" and not ref.optional:
            return f"{ref.component} was skipped"
    for name in spec.after:
        if outcomes.get(name) is not None and outcomes[name].state == "skipped":
            return f"{name} was skipped"
    return None


def negative_verdicts(specs: Components, outcomes: Mapping[str, ComponentOutcome]) -> list[Blocked]:
    """The verdicts of completed components (executed or reused) that came out false, in order."""
    return [Blocked(spec.name, str(outcomes[spec.name].figures.get(spec.verdict.reason) or ""), spec.verdict.exit_code)
            for spec in specs if spec.verdict and outcomes[spec.name].state in ("executed", "cached")
            and not outcomes[spec.name].figures.get(spec.verdict.parameter)]


def run_pipeline(config: PipelineConfig, config_file: str, *, use_cache: bool = True,
                 until: str | None = None, echo: Callable[[str], None] = print,
                 components: Components | None = None, annotations: Mapping[str, str] | None = None) -> RunResult:
    """Runs the pipeline locally.

    Args:
        config: The loaded pipeline.
        config_file: The YAML it came from (recorded with the run).
        use_cache: Reuse outputs of earlier identical executions.
        until: Run only this component and what it depends on.
        echo: Receives progress lines.
        components: The components to run (default: sluiceway's pipeline).
        annotations: Recorded with the run (ML Metadata and ``run.json``), e.g. ``triggered_by``: the
            monitor run whose verdict started this one.

    Returns:
        The run's outcome per component. A run whose components all complete has status SUCCEEDED,
        or BLOCKED when a verdict was negative (``RunResult.blocked`` says which and why).

    Raises:
        ComponentFailed: A component failed; downstream components did not run. The run is
            recorded as FAILED first.
        RunCancelled: The run was interrupted (SIGINT or SIGTERM); it is recorded as FAILED
            (cancelled) first, with the component that was running.
    """
    if components is None:
        components = pipeline_of(config)
    specs = components.upstream_of(until) if until else components
    root = pipeline_dir(config)
    lineage = Lineage(root)
    warning = lineage.lost_history_warning()
    if warning:
        echo(f"warning: {warning}")
    report_abandoned(lineage, config.pipeline.name, root, echo)
    check_preflight(specs, config, config_file)
    run_id = new_run_id()
    run_dir = os.path.join(root, run_id)
    os.makedirs(run_dir)
    lock = RunLock(run_dir)
    try:
        return _run(specs, components, config, config_file, use_cache, echo, lineage, run_id, run_dir,
                    dict(annotations or {}))
    finally:
        lock.release()


def report_abandoned(lineage: Lineage, pipeline: str, root: str, echo: Callable[[str], None]) -> None:
    """Marks runs whose process is gone as ABANDONED (cleaning their temporaries) and says so."""
    for run_id, removed in lineage.abandon_dead_runs(pipeline, root):
        cleaned = f"; removed its temporary folder{'s' if len(removed) != 1 else ''} {', '.join(removed)}" if removed else ""
        echo(f"note: run {run_id} was recorded as RUNNING but its process is gone (killed or crashed): "
             f"marked ABANDONED{cleaned}")


def check_preflight(specs: Components, config: PipelineConfig, config_file: str) -> None:
    """Raises ``ConfigError`` (before anything runs) when a component's preflight finds a problem."""
    issues = [ConfigIssue(path, message) for spec in specs
              for path, message in spec.preflight_problems({name: config.section(name) for name in spec.sections})]
    if issues:
        raise ConfigError(config_file, issues)


def _run(specs: Components, components: Components, config: PipelineConfig, config_file: str, use_cache: bool,
         echo: Callable[[str], None], lineage: Lineage, run_id: str, run_dir: str,
         annotations: dict[str, str]) -> RunResult:
    run = lineage.start_run(config.pipeline.name, run_id, os.path.abspath(config_file), annotations)
    echo(f"Run {run_id} of pipeline '{config.pipeline.name}' ({len(specs)} components, "
         f"cache {'on' if use_cache else 'off'})")
    artifacts: dict[tuple[str, str], StoredArtifact] = {}
    outcomes = {spec.name: ComponentOutcome(spec.name, "not run") for spec in specs}
    width = max(len(spec.name) for spec in specs)
    failure: BaseException | None = None
    with _signals_cancel():
        for index, spec in enumerate(specs, start=1):
            outcome = outcomes[spec.name]
            label = f"[{index}/{len(specs)}] {spec.name.ljust(width)}"
            started = time.monotonic()
            try:
                reason = skip_reason(spec, outcomes)
                if reason is not None:
                    outcome.state, outcome.skipped_because = "skipped", reason
                    lineage.record_skipped(spec.name, run, run_id=run_id, reason=reason)
                    echo(f"{label}  skipped  ({reason})")
                    continue
                inputs = {name: artifacts[(ref.component, ref.output)] for name, ref in spec.inputs.items()
                          if (ref.component, ref.output) in artifacts}
                key = cache_key(spec, config, inputs)
                hit = None
                if use_cache and spec.cache:
                    hit = lineage.find_cached(spec.name, key, verify_output, lambda run, output, problem: echo(
                        f"{label}  not reused: output '{output}' of run {run} changed on disk ({problem})"))
                if hit is not None:
                    outputs = lineage.record_execution(
                        spec.name, run, state="CACHED", cache_key=key, run_id=run_id, inputs=inputs, new_outputs={},
                        reused_outputs=hit.outputs, properties={"reused_execution": hit.execution_id, **hit.figures})
                    outcome.state, outcome.reused_from = "cached", hit.run_id
                    outcome.figures = typed_figures(spec, hit.figures)
                    outcome.outputs = {name: a.uri for name, a in outputs.items()}
                    echo(f"{label}  cached   (outputs of run {hit.run_id})")
                else:
                    echo(f"{label}  running")
                    outputs, figures = _execute(spec, components, config, inputs, key, run_dir, run_id, run, lineage,
                                                lambda line: echo(f"    {spec.name}: {line}"))
                    outcome.state, outcome.figures = "executed", figures
                    outcome.outputs = {name: a.uri for name, a in outputs.items()}
                    outcome.seconds = time.monotonic() - started
                    echo(f"{label}  done     {outcome.seconds:6.1f}s  {format_figures(figures)}")
            except (Exception, RunCancelled, KeyboardInterrupt) as exc:  # the user sees which component and why
                outcome.state, outcome.seconds = "failed", time.monotonic() - started
                if isinstance(exc, (RunCancelled, KeyboardInterrupt)):
                    failure = exc if isinstance(exc, RunCancelled) else RunCancelled("SIGINT")
                    outcome.error = f"cancelled ({failure.signal_name})"
                    echo(f"{label}  CANCELLED {outcome.seconds:5.1f}s  ({failure.signal_name})")
                else:
                    outcome.error = str(exc)
                    failure = ComponentFailed(spec.name, exc)
                    echo(f"{label}  FAILED   {outcome.seconds:6.1f}s")
                break
            for name, artifact in outputs.items():
                artifacts[(spec.name, name)] = artifact
        blocked = negative_verdicts(specs, outcomes)
        status = "FAILED" if failure else "BLOCKED" if blocked else "SUCCEEDED"
        figures = {f"{o.name}.{k}": v for o in outcomes.values() for k, v in o.figures.items()}
        figures.update({state: sum(o.state == state for o in outcomes.values())
                        for state in ("executed", "cached", "skipped")})
        skipped = [o.name for o in outcomes.values() if o.state == "skipped"]
        if skipped:
            figures["skipped_components"] = ", ".join(skipped)
        if isinstance(failure, RunCancelled):
            figures["cancelled"] = failure.signal_name
        lineage.finish_run(run, status, figures)
        result = RunResult(run_id, run_dir, status, list(outcomes.values()), blocked, annotations)
        write_run_file(result, config_file)
    if failure:
        raise failure
    return result


@contextmanager
def _signals_cancel() -> Iterator[None]:
    """SIGTERM (a CI job's timeout, ``kill``) interrupts the run like Ctrl-C, so it is recorded as
    cancelled rather than left RUNNING; the handler is put back afterwards."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:   # not the main thread: no signal handlers there
        yield
        return

    def cancel(signum, frame):
        raise RunCancelled("SIGTERM")

    try:
        signal.signal(signal.SIGTERM, cancel)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(spec: ComponentSpec, components: Components, config: PipelineConfig,
             inputs: Mapping[str, StoredArtifact], key: str, run_dir: str, run_id: str, run, lineage: Lineage,
             progress: Callable[[str], None]):
    component_dir = os.path.join(run_dir, spec.name)
    os.makedirs(component_dir, exist_ok=True)
    temp_dirs = {name: os.path.join(component_dir, f".tmp-{name}-{secrets.token_hex(3)}") for name in spec.outputs}
    paths = {}
    for name, artifact_type in spec.outputs.items():
        os.makedirs(temp_dirs[name])
        paths[name] = os.path.join(temp_dirs[name], artifact_type.file_name) if artifact_type.file_name else temp_dirs[name]
    sections = {name: config.section(name) for name in spec.sections}
    input_paths = {name: _input_path(components, spec, name, artifact) for name, artifact in inputs.items()}
    try:
        figures = spec.executor()(input_paths, paths, sections, progress)
    except SluicewayError as exc:
        if getattr(exc, "outputs_complete", False):
            # the data's verdict (anomalies): keep the evidence, but never cache a failed execution
            final = _commit(spec, temp_dirs, component_dir)
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
        error = (f"cancelled ({exc.signal_name})" if isinstance(exc, RunCancelled)
                 else "cancelled (SIGINT)" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
        lineage.record_execution(spec.name, run, state="FAILED", cache_key=key, run_id=run_id, inputs=inputs,
                                 new_outputs={}, reused_outputs={}, properties={"error": error[:2000]})
        raise
    figures = typed_figures(spec, figures)
    missing = [name for name in spec.parameters if name not in figures]
    if missing:
        _discard(temp_dirs)
        raise SluicewayError(f"{spec.name}: its core returned no {', '.join(missing)} (declared output parameters)")
    final = _commit(spec, temp_dirs, component_dir)
    outputs = lineage.record_execution(spec.name, run, state="COMPLETE", cache_key=key, run_id=run_id, inputs=inputs,
                                       new_outputs=final, reused_outputs={}, properties=figures)
    return outputs, figures


def _input_path(components: Components, spec: ComponentSpec, name: str, artifact: StoredArtifact) -> str:
    file_name = components.input_type(spec, name).file_name
    return os.path.join(artifact.uri, file_name) if file_name else artifact.uri


def _commit(spec: ComponentSpec, temp_dirs: Mapping[str, str], component_dir: str):
    """Renames each output into place, with its content recorded: its files and their sizes, a hash
    of the whole, and its fingerprint (that hash, or the artifact type's own, see
    ``ArtifactType.fingerprint``), so a consumer's cache key changes only when what it reads
    changed (a resolver that found the same model again), and a cache hit can check the output is
    still what was written."""
    final = {}
    for name, artifact_type in spec.outputs.items():
        target = os.path.join(component_dir, name)
        content, listing = tree_sha256(temp_dirs[name]), tree_listing(temp_dirs[name])
        fingerprint = (load_reference(artifact_type.fingerprint)(temp_dirs[name]) if artifact_type.fingerprint
                       else content)
        os.rename(temp_dirs[name], target)
        final[name] = (artifact_type, target, fingerprint, listing, content)
    return final


def verify_output(artifact: StoredArtifact) -> str | None:
    """What changed in a committed output since it was recorded, or ``None`` when it is intact: its
    file list and sizes first (to say what), then its content hash. Outputs recorded without a file
    listing (by an older sluiceway) are checked for existence only."""
    if artifact.files is None:
        return None
    difference = listing_difference(artifact.files, tree_listing(artifact.uri))
    if difference:
        return difference
    if tree_sha256(artifact.uri) != artifact.content_sha256:
        return "its content differs from what was written, though no file changed size"
    return None


def _discard(temp_dirs: Mapping[str, str]) -> None:
    for path in temp_dirs.values():
        shutil.rmtree(path, ignore_errors=True)


def write_run_file(result: RunResult, config_file: str) -> None:
    body = {
        "run_id": result.run_id,
        "status": result.status,
        "config_file": os.path.abspath(config_file),
        "components": [
            {"name": c.name, "state": c.state, "seconds": round(c.seconds, 3), "figures": c.figures,
             "outputs": c.outputs, "reused_from": c.reused_from, "error": c.error,
             "skipped_because": c.skipped_because}
            for c in result.components
        ],
        "blocked": [{"component": b.component, "reason": b.reason, "exit_code": b.exit_code} for b in result.blocked],
        "annotations": result.annotations,
    }
    atomic_write_json(os.path.join(result.run_dir, RUN_FILE), body, indent=2)


def format_figures(figures: Mapping[str, object]) -> str:
    """Figures for a progress line; long or empty text (a verdict's reasons) is for lineage and run.json."""
    return "  ".join(f"{k}={_fmt(v)}" for k, v in figures.items() if not (isinstance(v, str) and (len(v) > 40 or not v)))


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
