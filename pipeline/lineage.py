"""Lineage of local runs in ML Metadata (ml-metadata's SQLite store, as TFX keeps it locally).

Records every run as a context, every component execution (executed, cached or failed) with its
cache key and figures, and every artifact with its URI, content fingerprint and file listing. The
local runner's cache is a query over these records: a COMPLETE execution of the same component with
the same cache key whose output artifacts are LIVE and, on disk, still what was recorded.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline import run_lock
from pipeline.errors import SluicewayError
from pipeline.specs import ArtifactType

PIPELINE_CONTEXT = "sluiceway.Pipeline"
RUN_CONTEXT = "sluiceway.PipelineRun"
STORE_FILE = "metadata.sqlite"
ABANDONED = "ABANDONED"  # the status of a run whose process ended without finishing it
_BOOKKEEPING = {"cache_key", "run_id", "reused_execution", "error", "skipped"}


def execution_type_name(component: str) -> str:
    return f"sluiceway.{component}"


@dataclass(frozen=True)
class StoredArtifact:
    """An artifact as recorded: enough to feed a downstream component or reuse it from the cache."""

    id: int
    type_name: str
    uri: str
    fingerprint: str
    files: dict[str, int] | None = field(default=None, compare=False)  # relative path -> size, when recorded
    content: str | None = field(default=None, compare=False)  # hash of the files, when not the fingerprint

    @property
    def content_sha256(self) -> str:
        """The hash of the artifact's files as written (``pipeline.files.tree_sha256``)."""
        return self.content or self.fingerprint


@dataclass(frozen=True)
class CacheHit:
    execution_id: int
    run_id: str
    outputs: dict[str, StoredArtifact]
    figures: dict[str, object]


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    started: float
    finished: float | None
    config_file: str
    figures: dict[str, object]
    annotations: dict[str, str] = field(default_factory=dict)


class StoreDamaged(SluicewayError):
    """The ML Metadata store cannot be read (not a database, truncated, corrupted pages)."""

    def __init__(self, path: str, cause: BaseException):
        detail = str(cause).split(" query:")[0].removeprefix("Error when executing query: ").strip()
        super().__init__(
            f"the ML Metadata store {path} cannot be read ({detail}): it is damaged. The run folders beside it "
            f"are intact, but the run history and the cache are kept in the store. Restore it from a backup, or "
            f"move it aside to start a new history: mv {path} {path}.damaged")
        self.path = path


class _GuardedStore:
    """A ``MetadataStore`` whose failures to read or write the SQLite file are ``StoreDamaged``,
    named by path, rather than a ``RuntimeError`` from deep inside ml-metadata."""

    def __init__(self, store: metadata_store.MetadataStore, path: str):
        self._store, self._path = store, path

    def __getattr__(self, name: str):
        method = getattr(self._store, name)
        if not callable(method):
            return method

        @functools.wraps(method)
        def guarded(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except (RuntimeError, mlmd_errors.DataLossError, mlmd_errors.InternalError) as exc:
                raise StoreDamaged(self._path, exc) from None
        return guarded


def earlier_run_folders(pipeline_dir: str) -> list[str]:
    """Run ids of the run folders under ``pipeline_dir`` (those with a ``run.json``), oldest first."""
    if not os.path.isdir(pipeline_dir):
        return []
    return sorted(name for name in os.listdir(pipeline_dir)
                  if os.path.isfile(os.path.join(pipeline_dir, name, "run.json")))


def describe_run_folders(run_ids: list[str]) -> str:
    """'1 earlier run folder exists (R)' or 'N earlier run folders exist (R1 ... RN)'."""
    if len(run_ids) == 1:
        return f"1 earlier run folder exists ({run_ids[0]})"
    return f"{len(run_ids)} earlier run folders exist ({run_ids[0]} ... {run_ids[-1]})"


class Lineage:
    """The ML Metadata store of one pipeline (``<root>/<pipeline>/metadata.sqlite``).

    Attributes:
        lost_history: Run folders found beside a store that did not exist (it was deleted): those
            runs are not in the new store, so neither ``sluiceway runs`` nor the cache knows them.
    """

    def __init__(self, pipeline_dir: str, *, create: bool = True):
        path = os.path.join(pipeline_dir, STORE_FILE)
        self.path = path
        self.lost_history: list[str] = []
        if not os.path.exists(path):
            if not create:
                raise FileNotFoundError(path)
            self.lost_history = earlier_run_folders(pipeline_dir)
        os.makedirs(pipeline_dir, exist_ok=True)
        config = mlmd.ConnectionConfig()
        config.sqlite.filename_uri = path
        config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        try:
            store = metadata_store.MetadataStore(config)
        except (RuntimeError, mlmd_errors.StatusError) as exc:
            raise StoreDamaged(path, exc) from None
        self.store = _GuardedStore(store, path)
        self._type_ids: dict[tuple[str, str], int] = {}

    def lost_history_warning(self) -> str | None:
        """What to tell the user when the store was recreated beside earlier runs' folders."""
        if not self.lost_history:
            return None
        return (f"the ML Metadata store {self.path} did not exist, though "
                f"{describe_run_folders(self.lost_history)}: "
                "a new, empty store was created. Earlier runs are not listed by `sluiceway runs` and nothing of "
                "them is reused from the cache; their folders are kept.")

    # -- types -------------------------------------------------------------------------------
    def _context_type(self, name: str) -> int:
        key = ("context", name)
        if key not in self._type_ids:
            self._type_ids[key] = self.store.put_context_type(mlmd.ContextType(name=name))
        return self._type_ids[key]

    def _execution_type(self, component: str) -> int:
        key = ("execution", component)
        if key not in self._type_ids:
            self._type_ids[key] = self.store.put_execution_type(mlmd.ExecutionType(name=execution_type_name(component)))
        return self._type_ids[key]

    def _artifact_type(self, artifact_type: ArtifactType) -> int:
        key = ("artifact", artifact_type.name)
        if key not in self._type_ids:
            self._type_ids[key] = self.store.put_artifact_type(mlmd.ArtifactType(name=artifact_type.name))
        return self._type_ids[key]

    # -- runs --------------------------------------------------------------------------------
    def start_run(self, pipeline: str, run_id: str, config_file: str,
                  annotations: Mapping[str, str] | None = None) -> mlmd.Context:
        """Records a new run (status RUNNING) under the pipeline's context, with its annotations
        (``annotation:<key>`` properties: why it ran, e.g. the monitor run that triggered it)."""
        parent = self._pipeline_context(pipeline)
        run = mlmd.Context(type_id=self._context_type(RUN_CONTEXT), name=f"{pipeline}/{run_id}")
        _set(run.custom_properties, {"run_id": run_id, "status": "RUNNING", "started": time.time(),
                                     "config_file": config_file, "pid": os.getpid(), "host": socket.gethostname(),
                                     **{f"annotation:{k}": str(v) for k, v in (annotations or {}).items()}})
        [run.id] = self.store.put_contexts([run])
        self.store.put_parent_contexts([mlmd.ParentContext(child_id=run.id, parent_id=parent.id)])
        return run

    def abandon_dead_runs(self, pipeline: str, pipeline_dir: str) -> list[tuple[str, list[str]]]:
        """Marks the runs recorded as RUNNING whose process is gone (their lock is free: killed with
        ``kill -9``, crashed, the machine rebooted) as ABANDONED, and removes the temporary folders
        they left. Live runs (holding their lock) are not touched.

        Returns:
            (run id, temporary folders removed) of each run marked.
        """
        marked = []
        for context, props in self._run_contexts(pipeline):
            run_id = str(props.get("run_id", ""))
            run_dir = os.path.join(pipeline_dir, run_id)
            if props.get("status") != "RUNNING" or not run_id or run_lock.is_live(run_dir):
                continue
            removed = run_lock.remove_temporaries(run_dir)
            _set(context.custom_properties, {
                "status": ABANDONED, "abandoned_at": time.time(),
                "abandoned_because": "its process ended without finishing the run (killed, crashed or the machine "
                                     "stopped)"})
            self.store.put_contexts([context])
            marked.append((run_id, removed))
        return marked

    def finish_run(self, run: mlmd.Context, status: str, figures: Mapping[str, object]) -> None:
        _set(run.custom_properties, {"status": status, "finished": time.time()})
        _set(run.custom_properties, {f"figure:{k}": v for k, v in figures.items()})
        self.store.put_contexts([run])

    def _pipeline_context(self, pipeline: str) -> mlmd.Context:
        type_id = self._context_type(PIPELINE_CONTEXT)
        found = self.store.get_context_by_type_and_name(PIPELINE_CONTEXT, pipeline)
        if found is not None:
            return found
        context = mlmd.Context(type_id=type_id, name=pipeline)
        [context.id] = self.store.put_contexts([context])
        return context

    def _run_contexts(self, pipeline: str) -> list[tuple[mlmd.Context, dict[str, object]]]:
        """Each run context of ``pipeline`` with its properties."""
        parent = self.store.get_context_by_type_and_name(PIPELINE_CONTEXT, pipeline)
        if parent is None:
            return []
        return [(context, _get(context.custom_properties))
                for context in self.store.get_children_contexts_by_context(parent.id)]

    def runs(self, pipeline: str) -> list[RunSummary]:
        """Every recorded run of ``pipeline``, oldest first."""
        out = []
        for context, props in self._run_contexts(pipeline):
            out.append(RunSummary(
                run_id=str(props.get("run_id", context.name)), status=str(props.get("status", "UNKNOWN")),
                started=float(props.get("started", 0.0)), finished=props.get("finished"),
                config_file=str(props.get("config_file", "")),
                figures={k[len("figure:"):]: v for k, v in props.items() if k.startswith("figure:")},
                annotations={k[len("annotation:"):]: str(v) for k, v in props.items() if k.startswith("annotation:")}))
        return sorted(out, key=lambda r: r.started)

    def executions_of_run(self, run: mlmd.Context) -> list[mlmd.Execution]:
        return self.store.get_executions_by_context(run.id)

    def run_context(self, pipeline: str, run_id: str) -> mlmd.Context | None:
        return self.store.get_context_by_type_and_name(RUN_CONTEXT, f"{pipeline}/{run_id}")

    # -- executions --------------------------------------------------------------------------
    def find_cached(self, component: str, cache_key: str,
                    verify: Callable[[StoredArtifact], str | None] = lambda _: None,
                    rejected: Callable[[str, str, str], None] = lambda *_: None) -> CacheHit | None:
        """The newest COMPLETE execution of ``component`` with ``cache_key`` whose outputs are intact.

        Args:
            verify: Says what is wrong with an output on disk (``None``: intact). An execution with a
                damaged output is never reused again: its artifacts are marked ABANDONED.
            rejected: Told (run id, output name, what is wrong) of each execution passed over.
        """
        self._execution_type(component)
        candidates = [e for e in self.store.get_executions_by_type(execution_type_name(component))
                      if e.last_known_state == mlmd.Execution.COMPLETE
                      and e.custom_properties["cache_key"].string_value == cache_key]
        for execution in sorted(candidates, key=lambda e: e.id, reverse=True):
            outputs = self._outputs_of(execution.id)
            if not outputs:
                continue
            run_id = execution.custom_properties["run_id"].string_value
            problem = next(((name, found) for name, artifact in outputs.items()
                            if (found := ("it is gone" if not os.path.exists(artifact.uri) else verify(artifact)))),
                           None)
            if problem is not None:
                rejected(run_id, *problem)
                self._abandon(list(outputs.values()))
                continue
            figures = {k: v for k, v in _get(execution.custom_properties).items() if k not in _BOOKKEEPING}
            return CacheHit(execution.id, run_id, outputs, figures)
        return None

    def _abandon(self, artifacts: list[StoredArtifact]) -> None:
        stored = self.store.get_artifacts_by_id([a.id for a in artifacts])
        for artifact in stored:
            artifact.state = mlmd.Artifact.ABANDONED
        self.store.put_artifacts(stored)

    def _outputs_of(self, execution_id: int) -> dict[str, StoredArtifact]:
        events = [e for e in self.store.get_events_by_execution_ids([execution_id]) if e.type == mlmd.Event.OUTPUT]
        if not events:
            return {}
        by_id = {a.id: a for a in self.store.get_artifacts_by_id([e.artifact_id for e in events])}
        type_names = {t.id: t.name for t in self.store.get_artifact_types_by_id(list({a.type_id for a in by_id.values()}))}
        outputs = {}
        for event in events:
            artifact = by_id[event.artifact_id]
            if artifact.state != mlmd.Artifact.LIVE:
                return {}
            props = artifact.custom_properties
            files = props["files"].string_value if "files" in props else ""
            outputs[event.path.steps[0].key] = StoredArtifact(
                artifact.id, type_names[artifact.type_id], artifact.uri, props["fingerprint"].string_value,
                json.loads(files) if files else None,
                props["content_sha256"].string_value if "content_sha256" in props else None)
        return outputs

    def record_skipped(self, component: str, run: mlmd.Context, *, run_id: str, reason: str) -> None:
        """Records that ``component`` was skipped in ``run`` (a run condition was false): an execution
        in state CANCELED, with ``skipped`` saying why, and no artifacts."""
        execution = mlmd.Execution(type_id=self._execution_type(component), last_known_state=mlmd.Execution.CANCELED)
        _set(execution.custom_properties, {"run_id": run_id, "skipped": reason})
        self.store.put_execution(execution, [], [run], reuse_context_if_already_exist=True, force_reuse_context=True)

    def execution_states(self, run: mlmd.Context) -> dict[str, str]:
        """Component -> what happened to it in ``run``: executed, cached, skipped or failed."""
        types = {t.id: t.name for t in self.store.get_execution_types()}
        names = {mlmd.Execution.COMPLETE: "executed", mlmd.Execution.CACHED: "cached",
                 mlmd.Execution.CANCELED: "skipped", mlmd.Execution.FAILED: "failed"}
        states = {}
        for execution in self.store.get_executions_by_context(run.id):
            component = types.get(execution.type_id, "").removeprefix("sluiceway.")
            states[component] = names.get(execution.last_known_state, "unknown")
        return states

    def record_execution(self, component: str, run: mlmd.Context, *, state: str, cache_key: str, run_id: str,
                         inputs: Mapping[str, StoredArtifact], new_outputs: Mapping[str, tuple[ArtifactType, str, str]],
                         reused_outputs: Mapping[str, StoredArtifact], properties: Mapping[str, object]
                         ) -> dict[str, StoredArtifact]:
        """Records one execution with its input and output artifacts, atomically.

        Args:
            state: ``COMPLETE``, ``CACHED`` or ``FAILED``.
            new_outputs: Output name -> (type, uri, content fingerprint, file listing, hash of the
                files) of artifacts this execution wrote.
            reused_outputs: Output name -> artifacts an earlier execution wrote (a cache hit).
            properties: Figures and facts shown by ``sluiceway runs`` and lineage queries.

        Returns:
            Every output by name.
        """
        execution = mlmd.Execution(type_id=self._execution_type(component),
                                   last_known_state=getattr(mlmd.Execution, state))
        _set(execution.custom_properties, {"cache_key": cache_key, "run_id": run_id, **properties})
        existing_ids = [a.id for a in (*inputs.values(), *reused_outputs.values())]
        existing = {a.id: a for a in self.store.get_artifacts_by_id(existing_ids)} if existing_ids else {}
        pairs = []
        for name, stored in inputs.items():
            pairs.append((existing[stored.id], _event(mlmd.Event.INPUT, name)))
        fresh = {}
        for name, (artifact_type, uri, fingerprint, files, content) in new_outputs.items():
            artifact = mlmd.Artifact(type_id=self._artifact_type(artifact_type), uri=uri, state=mlmd.Artifact.LIVE)
            _set(artifact.custom_properties, {"fingerprint": fingerprint, "run_id": run_id, "producer": component,
                                              "files": json.dumps(files, sort_keys=True),
                                              "content_sha256": content if content != fingerprint else None})
            fresh[name] = (artifact, artifact_type.name, uri, fingerprint, files, content)
            pairs.append((artifact, _event(mlmd.Event.OUTPUT, name)))
        for name, stored in reused_outputs.items():
            pairs.append((existing[stored.id], _event(mlmd.Event.OUTPUT, name)))
        _, artifact_ids, _ = self.store.put_execution(execution, pairs, [run], reuse_context_if_already_exist=True,
                                                      force_reuse_context=True)
        outputs = dict(reused_outputs)
        for index, (name, (_, type_name, uri, fingerprint, files, content)) in enumerate(fresh.items(),
                                                                                         start=len(inputs)):
            outputs[name] = StoredArtifact(artifact_ids[index], type_name, uri, fingerprint, files,
                                           content if content != fingerprint else None)
        return outputs


def _event(kind: int, name: str) -> mlmd.Event:
    event = mlmd.Event(type=kind)
    event.path.steps.add().key = name
    return event


def _set(target, values: Mapping[str, object]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            target[key].int_value = int(value)
        elif isinstance(value, int):
            target[key].int_value = value
        elif isinstance(value, float):
            target[key].double_value = value
        else:
            target[key].string_value = str(value)


def _get(source) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in source.items():
        kind = value.WhichOneof("value")
        out[key] = getattr(value, kind) if kind else None
    return out
