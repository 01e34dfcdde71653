"""``sluiceway schedule``: a Kubeflow Pipelines recurring run of the continuous-training pipeline.

The pipeline scheduled is ``pipeline.specs.retrain_if_due()`` compiled: the Monitor first, and the
training tasks under ``dsl.If`` on its ``retrain`` output, so a scheduled run that finds the serving
model still fits ends after the Monitor. The run is created with max concurrency 1 (a run never
starts while the last one is still going) and catchup off (a paused schedule does not backfill every
missed time when it resumes: one monitor run judges the latest data).

Users write cron the usual way, five fields; Kubeflow Pipelines' scheduler (robfig/cron) takes six,
seconds first, so a five-field expression gets ``0`` seconds prepended. The expression is checked
here, so a typo is a configuration error (exit code 2) rather than a recurring run the cluster
refuses or, worse, accepts and fires at the wrong times. Failures to reach or use the API are
``ScheduleFailed`` (exit code 1).
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from pipeline.errors import ConfigError, ConfigIssue, SluicewayError

CRON_EXAMPLE = '"0 3 * * *" (03:00 every day)'
CONNECT_TIMEOUT_SECONDS = 10
_NAMES = {"month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
          "day-of-week": ("sun", "mon", "tue", "wed", "thu", "fri", "sat")}
# the six fields Kubeflow Pipelines' scheduler reads: (name, lowest, highest)
_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12),
           ("day-of-week", 0, 6))
_ITEM = re.compile(r"^(?P<range>\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


class ScheduleFailed(SluicewayError):
    """The Kubeflow Pipelines API could not be reached or refused the recurring run."""


@dataclass
class Schedule:
    """What ``schedule`` creates: the compiled continuous-training package and its recurring run."""

    config_file: str
    package: str
    pipeline_name: str
    image: str
    tasks: tuple[str, ...]     # the Monitor first, then the ones it gates
    host: str | None
    experiment: str
    name: str
    namespace: str | None
    cron: str                  # as given
    kfp_cron: str              # six fields, as Kubeflow Pipelines receives it
    warnings: list[ConfigIssue] = field(default_factory=list)
    package_kept: bool = True

    def describe(self) -> str:
        kept = "" if self.package_kept else " (temporary: removed when schedule ends; -o FILE keeps it)"
        monitor, *gated = self.tasks
        lines = [f"package:       {self.package}{kept} (pipeline '{self.pipeline_name}', image {self.image})",
                 f"tasks:         {monitor}, then only when its retrain output is true: {', '.join(gated)}",
                 f"host:          {self.host or '(none given)'}" + (f", namespace {self.namespace}" if self.namespace
                                                                     else ""),
                 f"experiment:    {self.experiment}",
                 f"recurring run: {self.name}",
                 f"cron:          {json.dumps(self.cron)} as given, {json.dumps(self.kfp_cron)} as Kubeflow Pipelines "
                 "receives it (seconds first; the scheduler's time zone, usually UTC)",
                 "runs:          max concurrency 1, catchup off (missed times are not backfilled)",
                 f"replaces:      a recurring run named '{self.name}' in experiment '{self.experiment}', if there "
                 "is one (the new one is created first, then the old one deleted); a dry run does not look"]
        return "\n".join(lines)


def kfp_cron(cron: str) -> str:
    """The six-field expression Kubeflow Pipelines takes for ``cron`` (five fields, or six with seconds).

    Raises:
        ConfigError: ``cron`` has another number of fields, or a field outside its range or form.
    """
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise _cron_error(cron, f"expected 5 fields (minute hour day-of-month month day-of-week), e.g. "
                                f"{CRON_EXAMPLE}, or 6 with seconds first as Kubeflow Pipelines takes them, e.g. "
                                f'"0 0 3 * * *"; got {len(fields)} field{"s" if len(fields) != 1 else ""}')
    if len(fields) == 5:
        fields = ["0", *fields]
    for (name, low, high), text in zip(_FIELDS, fields):
        problem = _field_problem(name, low, high, text.lower())
        if problem:
            raise _cron_error(cron, f"the {name} field {text!r} {problem}; e.g. {CRON_EXAMPLE}")
    return " ".join(fields)


def _field_problem(name: str, low: int, high: int, text: str) -> str | None:
    """Why one cron field is not what robfig/cron accepts (None when it is): a comma list of ``*``,
    ``N``, ``N-M``, each optionally ``/STEP``; month and day-of-week names; ``?`` in the day fields."""
    names = _NAMES.get(name, ())
    span = f"{low}-{high}" + (f" or {names[0].upper()}-{names[-1].upper()}" if names else "")
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match or (match["range"] == "?" and not name.startswith("day")):
            return (f"is not *, a number, a range (N-M) or a list (N,M), each optionally with a step (/N)"
                    + ("; ? stands for * in the day fields only" if "?" in item else ""))
        if match["step"] is not None and int(match["step"]) == 0:
            return "has a step of 0"
        if match["range"] in ("*", "?"):
            continue
        bounds = []
        for value in match["range"].split("-"):
            if value in names:
                number = names.index(value) + low
            elif value.isdigit():
                number = int(value)
            else:
                what = "is" if value == text else f"has {value!r}, which is"
                return f"{what} not a number" + (f" or a {name} name" if names else "")
            if not low <= number <= high:
                return f"is out of range: expected {span}" + (" (0 = Sunday)" if name == "day-of-week" else "")
            bounds.append(number)
        if bounds[0] > bounds[-1]:
            return f"has a range that runs backwards ({match['range']})"
    return None


def _cron_error(cron: str, message: str) -> ConfigError:
    return ConfigError("--cron", [ConfigIssue("--cron", f"{json.dumps(cron)}: {message}")])


def prepare_schedule(config_file: str, *, host: str | None, cron: str, experiment: str | None = None,
                     name: str | None = None, namespace: str | None = None, package: str,
                     package_kept: bool = True) -> Schedule:
    """Checks ``cron`` and the file, and compiles the continuous-training pipeline to ``package``.

    Args:
        config_file: The pipeline YAML.
        host: The Kubeflow Pipelines API (None for a dry run).
        cron: Five fields, or six with seconds first.
        experiment: Default: the pipeline's name.
        name: The recurring run's name; default ``<pipeline>-continuous-training``.
        namespace: The Kubeflow profile namespace (multi-user installations).
        package: Where to write the compiled package.
        package_kept: Whether ``package`` outlives the command (only said in ``describe``).

    Returns:
        The schedule, with the warnings of the file and the host paths the compiled spec carries.

    Raises:
        ConfigError: A bad cron expression (naming --cron) or pipeline file.
    """
    from pipeline.compiler import compile_pipeline, host_path_warnings
    from pipeline.loader import config_warnings, load_config
    from pipeline.specs import pipeline_of, retrain_if_due

    six_fields = kfp_cron(cron)
    config = load_config(config_file)
    components = retrain_if_due(pipeline_of(config))
    compile_pipeline(config, package, components=components)
    pipeline_name = config.pipeline.name
    return Schedule(config_file=config_file, package=package, pipeline_name=pipeline_name,
                    image=config.kubeflow.image, tasks=components.names, host=host,
                    experiment=experiment or pipeline_name, name=name or f"{pipeline_name}-continuous-training",
                    namespace=namespace, cron=cron, kfp_cron=six_fields,
                    warnings=config_warnings(config) + host_path_warnings(config, components),
                    package_kept=package_kept)


def send_schedule(schedule: Schedule, client_factory: Callable[..., Any] | None = None) -> tuple[str, str]:
    """Creates the recurring run in its experiment (made if missing), replacing any of the same name.

    Kubeflow Pipelines cannot edit a recurring run in place (its API has create, enable, disable and
    delete), so an update is a new recurring run and the old ones of that name deleted, in that
    order: when the new one cannot be created (a rejected package, a lost connection) the old schedule
    keeps running rather than leaving the pipeline unscheduled. Each old one is disabled before it is
    deleted, so one that cannot be deleted at least no longer fires beside the new one.

    Args:
        schedule: From ``prepare_schedule``.
        client_factory: Makes the client (``kfp.Client``'s arguments); default ``kfp.Client`` after
            checking, with a timeout, that the host accepts connections (the client has none).

    Returns:
        The new recurring run's id, and ``"created"`` or ``"updated"`` (one of the same name was replaced).

    Raises:
        ScheduleFailed: The host is unreachable, refuses the credentials or rejects the package; or the
            new recurring run was created but an old one could not be removed (the message says which).
    """
    host = schedule.host
    if not host:
        raise ScheduleFailed("schedule: give --host URL (the Kubeflow Pipelines API, e.g. http://localhost:8080 after "
                             "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`), or --dry-run")
    try:
        client = (client_factory or _kfp_client)(host=host, namespace=schedule.namespace,
                                                  existing_token=os.environ.get("KF_PIPELINES_TOKEN") or None)
        experiment_id = client.create_experiment(name=schedule.experiment, namespace=schedule.namespace).experiment_id
        old = _recurring_runs_named(client, experiment_id, schedule.name)
    except Exception as exc:  # noqa: BLE001 - socket, urllib3, kfp_server_api and auth errors all mean "not scheduled"
        raise ScheduleFailed(f"schedule: could not reach or query the Kubeflow Pipelines API on {host}: "
                             f"{_reason(exc)}. {_CHECK_HOST} Nothing was scheduled.") from None
    try:
        created = client.create_recurring_run(
            experiment_id, schedule.name, cron_expression=schedule.kfp_cron,
            pipeline_package_path=schedule.package, max_concurrency=1, no_catchup=True, enabled=True)
    except Exception as exc:  # noqa: BLE001 - as above
        kept = (f" The existing recurring run '{schedule.name}' ({', '.join(old)}) is unchanged." if old else "")
        raise ScheduleFailed(f"schedule: could not create the recurring run '{schedule.name}' on {host}: "
                             f"{_reason(exc)}. {_CHECK_HOST} Nothing was scheduled.{kept}") from None
    new_id = created.recurring_run_id
    for old_id in old:
        step = "disable"
        try:
            client.disable_recurring_run(old_id)
            step = "delete"
            client.delete_recurring_run(old_id)
        except Exception as exc:  # noqa: BLE001 - as above
            left = "still enabled: both will run" if step == "disable" else "disabled but not deleted"
            raise ScheduleFailed(f"schedule: created the recurring run '{schedule.name}' on {host} (id {new_id}), "
                                 f"but could not {step} the one it replaces (id {old_id}): {_reason(exc)}. That one "
                                 f"is {left}; delete it in the Kubeflow Pipelines UI (Recurring Runs).") from None
    return new_id, "updated" if old else "created"


_CHECK_HOST = ("Check that the host is the Kubeflow Pipelines API (port-forwarded or in-cluster address) and that "
               "you are authorised (KF_PIPELINES_TOKEN or the in-cluster service account).")


def _kfp_client(host: str, **kwargs) -> Any:
    """``kfp.Client`` once the host accepts a connection within ``CONNECT_TIMEOUT_SECONDS``: the client
    sets no connect timeout, so a host that drops packets would hold it for minutes (urllib3 tries four
    times, each until the system gives up)."""
    import kfp

    address = urlsplit(host if "://" in host else f"https://{host}")   # kfp.Client assumes https too
    port = address.port or (443 if address.scheme == "https" else 80)
    with socket.create_connection((address.hostname or "", port), timeout=CONNECT_TIMEOUT_SECONDS):
        pass
    return kfp.Client(host=host, **kwargs)


def _recurring_runs_named(client: Any, experiment_id: str, name: str) -> list[str]:
    """The ids of the experiment's recurring runs called ``name``, every page read (the name filter is
    the server's; the names are compared here too, so a server that ignores it still gives the right ids)."""
    by_name = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})
    found: list[str] = []
    token, seen = "", set()
    while True:
        page = client.list_recurring_runs(page_token=token, page_size=100, experiment_id=experiment_id,
                                          filter=by_name)
        found += [run.recurring_run_id for run in page.recurring_runs or [] if run.display_name == name]
        token = page.next_page_token or ""
        if not token or token in seen:
            return found
        seen.add(token)


def _reason(exc: Exception) -> str:
    reason = " ".join(str(exc).split())[:400]
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
