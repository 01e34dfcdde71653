"""The exceptions sluiceway raises on purpose.

Every message names where the problem is (a YAML path, a file, a component) and what was
expected, so the user can fix it without reading a traceback. The CLI prints these without a
traceback and exits with ``exit_code``.
"""

from __future__ import annotations

from dataclasses import dataclass


class SluicewayError(Exception):
    """Base class: an error the user can act on. The CLI prints it without a traceback."""

    exit_code = 1


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a pipeline YAML: where it is and what was expected there."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(SluicewayError):
    """The pipeline YAML is malformed or does not match the config model.

    Carries every issue found, not only the first, so a user fixes the file in one pass.
    """

    exit_code = 2

    def __init__(self, file: str, issues: list[ConfigIssue]):
        self.file = file
        self.issues = list(issues)
        count = len(self.issues)
        head = f"{file}: {count} configuration error{'s' if count != 1 else ''}"
        super().__init__(head + "".join(f"\n  {issue}" for issue in self.issues))


class DataError(SluicewayError):
    """An input data file is missing, empty or not of the declared shape."""

    exit_code = 3


class DataValidationError(SluicewayError):
    """TFDV found anomalies and ``validation.on_anomaly`` is ``fail``.

    The component's outputs (the anomalies themselves) are complete and kept: the failure is a
    verdict on the data, not a crash.
    """

    exit_code = 4
    outputs_complete = True


class GateFailed(SluicewayError):
    """The Pusher was asked to push a model its blessing does not bless (its own check, whatever ran it).

    In a pipeline run a blocked model is not an error but the Evaluator's verdict (``blessed`` false,
    see ``pipeline.specs.Verdict``): the Pusher is skipped and the CLI exits with the same code 5, so
    CI/CD can tell "the model is not good enough" from "the pipeline broke".
    """

    exit_code = 5


class RunCancelled(BaseException):
    """A run was interrupted by SIGINT (Ctrl-C) or SIGTERM. Like ``KeyboardInterrupt`` it is not an
    ``Exception``, so no ``except Exception`` in a component swallows it; the runner records the run
    as cancelled before it propagates. Exit codes follow the shell's: 128 + the signal's number."""

    def __init__(self, signal_name: str):
        self.signal_name = signal_name
        self.exit_code = {"SIGINT": 130, "SIGTERM": 143}.get(signal_name, 130)
        super().__init__(f"the run was cancelled ({signal_name})")


class ComponentFailed(SluicewayError):
    """A component of a local run failed; names the component and the cause."""

    def __init__(self, component: str, cause: BaseException):
        self.component = component
        self.cause = cause
        self.exit_code = getattr(cause, "exit_code", 1)
        reason = str(cause) if isinstance(cause, SluicewayError) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"{component} failed: {reason}")
