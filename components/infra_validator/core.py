"""InfraValidator: proves the candidate model serves before the Pusher may push it.

A model that passes every metric gate can still fail in serving: an op or a Python function only the
training process had, an asset it does not carry, an input it cannot take. So the model is loaded in a
separate, clean Python process (``server.py``: TensorFlow and nothing of sluiceway, with
``python -I``), as a model server would load it, and its ``serving_default`` signature is queried with:

- the examples of the evaluated split the Evaluator scored (its ``serving_sample.json``, what the model
  returned for them inside the pipeline), whose served scores must equal the Evaluator's within
  ``infra_validator.score_tolerance`` (no training/serving skew);
- one example per feature with that feature missing, and one per categorical feature with a value train
  never had: real requests have both, and each must be answered.

Checks, every one recorded: the model loads within ``load_timeout_seconds``; the signature takes the
serialized examples; every output has the task's name, dtype and shape (``components.common.tasks``);
every value is finite and probabilities are within [0, 1] (a multiclass row sums to 1); the scores equal
the Evaluator's; the examples with a missing feature or an unseen category are answered; p50 and p99
latency of one-example and 100-example requests (the model's own time inside the serving process, without
a network), bounded by ``max_latency_ms`` / ``max_batch_latency_ms`` when the YAML sets them.

A failed check is a verdict, not an error: the infra blessing says ``serves: false`` with every check,
the runners skip the Pusher, and the CLI prints the failed checks and exits with code 5, as for a gate.
With ``--runner docker`` this component, and so the serving process, runs inside the project's image.
"""

from __future__ import annotations

import base64
import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

from components.common import tasks
from components.common.model_fingerprint import ModelUnreadable, model_fingerprint
from components.common.tree_model import uses_tree_ops
from pipeline.config import FeaturesConfig, InfraValidatorConfig, Section
from pipeline.errors import DataError
from pipeline.files import atomic_write_text
from pipeline.specs import INFRA_BLESSING_FILE, SERVING_SAMPLE_FILE
from pipeline.table import markdown_table, text_table

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
UNSEEN_VALUE = "__a value train never had__"
LATENCY_CALLS = {1: 200, 100: 30}   # timed calls per batch size
QUERY_SECONDS = 600                 # after loading, for every query and timed call
PASS, FAIL, RECORDED = "pass", "FAIL", "recorded"
CHECK_HEADERS = ("check", "value", "bound", "status")


@dataclass(frozen=True)
class ServingCheck:
    """One check of the serving process: what it measured, against what, and the outcome."""

    check: str
    value: str
    bound: str = "-"
    status: str = PASS
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def row(self) -> tuple:
        return (self.check, self.value + (f" ({self.detail})" if self.detail else ""), self.bound, self.status)


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the InfraValidator as a pipeline step; see ``validate``. Returns its figures: ``serves``
    (the verdict), ``serving_problems`` (the failed checks as a table, empty when it serves), the load
    time and latency figures, and ``serving_check`` (one line saying all that).

    Args:
        inputs: ``model`` (the Trainer's) and ``evaluation`` (the Evaluator's, with its serving sample).
        outputs: ``infra_blessing`` (a folder: ``infra_blessing.json``) and ``serving_report`` (Markdown).
    """
    checks, record = validate(inputs["model"], inputs["evaluation"], config["infra_validator"], config["features"],
                              outputs["infra_blessing"], progress)
    failed = [check for check in checks if check.failed]
    os.makedirs(outputs["infra_blessing"], exist_ok=True)
    atomic_write_text(os.path.join(outputs["infra_blessing"], INFRA_BLESSING_FILE), json.dumps(
        {"serves": not failed, "model_fingerprint": _fingerprint(inputs["model"]),
         "checks": [asdict(check) for check in checks], "blocking": [asdict(check) for check in failed],
         **record}, indent=2))
    os.makedirs(os.path.dirname(outputs["serving_report"]) or ".", exist_ok=True)
    atomic_write_text(outputs["serving_report"], _report(checks, failed, record))
    figures = {"load_seconds": record.get("load_seconds", float("nan"))}
    for batch in LATENCY_CALLS:
        latency = record.get("latency", {}).get(str(batch), {})
        for key in ("p50_ms", "p99_ms"):
            figures[f"latency_{batch}_{key}"] = round(latency.get(key, float("nan")), 3)
    if failed:
        progress(f"{len(failed)} of {len(checks)} serving checks failed: the model is not pushed")
    return {"serves": not failed, "serving_problems": problems_message(checks, failed) if failed else "",
            "serving_check": summary_line(checks, failed, record), **figures}


def _fingerprint(model_dir: str) -> str | None:
    """The checked model's fingerprint (the Pusher pushes only that model); none for files that do not read."""
    try:
        return model_fingerprint(model_dir)
    except ModelUnreadable:
        return None


def validate(model_dir: str, evaluation_dir: str, settings: InfraValidatorConfig, features: FeaturesConfig,
             work_dir: str, progress: Callable[[str], None] = lambda _: None) -> tuple[list[ServingCheck], dict]:
    """Loads ``model_dir`` in a clean serving process, queries it and checks its answers.

    Returns:
        Every check, and the record of the serving process: load time, signature, latency per batch
        size, interpreter and TensorFlow versions, and its log file.

    Raises:
        DataError: The evaluation has no serving sample (an Evaluator older than the InfraValidator wrote it).
    """
    sample = _read_sample(evaluation_dir)
    examples = sample["examples"][:settings.examples]
    queries = {"sample": examples, **_variants(examples[0] if examples else None, features)}
    os.makedirs(work_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="serving-check-") as scratch:
        request_path, result_path = os.path.join(scratch, "request.json"), os.path.join(scratch, "result.json")
        with open(request_path, "w", encoding="utf-8") as handle:
            json.dump({"model": os.path.abspath(model_dir), "tree_ops": uses_tree_ops(model_dir),
                       "input": sample["input"], "queries": queries, "latency_examples": examples,
                       "latency_calls": {str(batch): calls for batch, calls in LATENCY_CALLS.items()}}, handle)
        log_path = os.path.join(work_dir, "serving_process.log")
        progress(f"loading the model in a clean serving process ({len(examples)} examples, "
                 f"{len(queries) - 1} with a missing feature or an unseen category, then latency)")
        started = time.monotonic()
        outcome = _serve(request_path, result_path, log_path, settings.load_timeout_seconds)
        result = outcome.get("result")
    record = {"seconds": round(time.monotonic() - started, 1), "log": os.path.basename(log_path),
              "examples": len(examples),
              "split": sample["split"]}
    if result is None or not result.get("loaded"):
        problem = outcome.get("problem") or (result or {}).get("load_error") or "it did not load"
        return [ServingCheck("loads in a clean process", "did not load", f"<= {settings.load_timeout_seconds:g} s",
                             FAIL, problem)], record
    record.update({key: result[key] for key in ("load_seconds", "python", "tensorflow", "inputs", "outputs",
                                                 "latency") if key in result})
    progress(f"loaded in {result['load_seconds']:.1f} s; checking its answers")
    return _checks(result, sample, examples, settings, features, model_dir), record


def _read_sample(evaluation_dir: str) -> dict:
    path = os.path.join(evaluation_dir, SERVING_SAMPLE_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            sample = json.load(handle)
    except FileNotFoundError:
        raise DataError(f"InfraValidator: the evaluation {evaluation_dir} has no {SERVING_SAMPLE_FILE} (the examples "
                        "the Evaluator scored, to compare with the served scores); rerun the Evaluator") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"InfraValidator: cannot read {path}: {exc}; rerun the Evaluator") from None
    if not sample.get("examples"):
        raise DataError(f"InfraValidator: {path} holds no examples: the evaluated split is empty")
    return sample


def _variants(encoded: str | None, features: FeaturesConfig) -> dict[str, list[str]]:
    """Requests a model meets in serving: the first example with each feature missing in turn, and with
    each categorical feature holding a value train never had."""
    if encoded is None:
        return {}
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(base64.b64decode(encoded))
    variants = {}
    for name in [*features.numeric, *features.categorical]:
        changed = example_pb2.Example()
        changed.CopyFrom(example)
        if name in changed.features.feature:
            del changed.features.feature[name]
        variants[f"missing:{name}"] = [base64.b64encode(changed.SerializeToString()).decode("ascii")]
    for name in features.categorical:
        changed = example_pb2.Example()
        changed.CopyFrom(example)
        feature = changed.features.feature[name]
        feature.Clear()
        feature.bytes_list.value.append(UNSEEN_VALUE.encode())
        variants[f"unseen:{name}"] = [base64.b64encode(changed.SerializeToString()).decode("ascii")]
    return variants


def _serve(request_path: str, result_path: str, log_path: str, load_timeout: float) -> dict:
    """Runs the serving process; holds it to ``load_timeout`` for importing TensorFlow and loading the
    model, then to ``QUERY_SECONDS`` for the rest. Returns its ``result``, or the ``problem``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, "-I", SERVER, request_path, result_path], stdout=subprocess.PIPE,
                                   stderr=log, stdin=subprocess.DEVNULL, text=True, env=environment,
                                   cwd=os.path.dirname(result_path))
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        stage, deadline = "starting", time.monotonic() + load_timeout
        limit = f"{load_timeout:g} s (infra_validator.load_timeout_seconds)"
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                process.kill()
                process.wait()
                return {"problem": f"no answer within {limit}; it was still {stage}"}
            if line is None:
                break  # the process ended
            stage = line.split()[0] if line.split() else stage
            if stage == "loaded":
                deadline = time.monotonic() + QUERY_SECONDS
                limit, stage = f"{QUERY_SECONDS} s after loading", "answering the requests"
        code = process.wait()
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as handle:
            return {"result": json.load(handle)}
    return {"problem": f"the serving process exited with code {code} while {stage}: {_last_lines(log_path)}"}


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


def _last_lines(path: str, count: int = 3) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        kept = [line.strip() for line in handle if line.strip()]
    return " / ".join(kept[-count:]) or "it printed nothing"


def _checks(result: dict, sample: dict, examples: list[str], settings: InfraValidatorConfig,
            features: FeaturesConfig, model_dir: str) -> list[ServingCheck]:
    task = features.task
    checks = [ServingCheck("loads in a clean process", f"{result['load_seconds']:.1f} s",
                           f"<= {settings.load_timeout_seconds:g} s")]
    inputs = result["inputs"]
    spec = inputs.get(sample["input"], {})
    takes_examples = len(inputs) == 1 and spec.get("dtype") == "string" and len(spec.get("shape", [])) == 1
    checks.append(ServingCheck("takes serialized tf.Examples",
                               ", ".join(f"{name}: {v['dtype']} {v['shape']}" for name, v in inputs.items()),
                               f"{sample['input']}: string [None]", PASS if takes_examples else FAIL))
    answer = result["queries"]["sample"]
    if "error" in answer:
        checks.append(ServingCheck(f"answers {len(examples)} examples of the {sample['split']} split",
                                   "an error", "an answer", FAIL, answer["error"]))
        return checks + _variant_checks(result["queries"], task) + _latency_checks(result, settings)
    expected = _expected_outputs(task, model_dir, features, len(examples))
    checks.append(_output_check(answer, expected))
    checks += _value_checks(answer, task)
    checks.append(_skew_check(answer, sample, len(examples), settings.score_tolerance, task))
    return checks + _variant_checks(result["queries"], task) + _latency_checks(result, settings)


def _expected_outputs(task: str, model_dir: str, features: FeaturesConfig, batch: int) -> dict[str, tuple]:
    """Output name -> (dtype, shape) that the task's serving contract (``components.common.tasks``) promises."""
    if task == tasks.BINARY:
        return {tasks.SCORES: ("float32", [batch, 1])}
    if task == tasks.REGRESSION:
        return {tasks.PREDICTIONS: ("float32", [batch, 1])}
    classes = len(tasks.model_classes(model_dir, features.label))
    return {tasks.SCORES: ("float32", [batch, classes]), tasks.CLASSES: ("string", [batch, classes])}


def _output_check(answer: dict, expected: dict[str, tuple]) -> ServingCheck:
    got = {name: (value["dtype"], value["shape"]) for name, value in answer.items()}
    text = ", ".join(f"{name} {dtype} {shape}" for name, (dtype, shape) in sorted(got.items()))
    wanted = ", ".join(f"{name} {dtype} {shape}" for name, (dtype, shape) in sorted(expected.items()))
    return ServingCheck("outputs: names, dtypes, shapes", text, wanted,
                        PASS if all(got.get(name) == (d, s) for name, (d, s) in expected.items()) else FAIL)


def _value_checks(answer: dict, task: str) -> list[ServingCheck]:
    key = tasks.prediction_key(task)
    if key not in answer:
        return []
    values = [v for row in answer[key]["values"] for v in row]
    finite = [v for v in values if math.isfinite(v)]
    checks = [ServingCheck(f"{key} are finite", f"{len(finite)} of {len(values)} finite", "all",
                           PASS if len(finite) == len(values) else FAIL)]
    if task != tasks.REGRESSION and finite:
        low, high = min(finite), max(finite)
        checks.append(ServingCheck("probabilities within [0, 1]", f"{low:.4g} to {high:.4g}", "[0, 1]",
                                   PASS if 0 <= low and high <= 1 else FAIL))
    if task == tasks.MULTICLASS:
        sums = [sum(row) for row in answer[key]["values"]]
        worst = max(abs(total - 1) for total in sums) if sums else 0.0
        checks.append(ServingCheck("a row's probabilities sum to 1", f"largest miss {worst:.2g}", "<= 0.001",
                                   PASS if worst <= 1e-3 else FAIL))
    return checks


def _skew_check(answer: dict, sample: dict, count: int, tolerance: float, task: str) -> ServingCheck:
    key = tasks.prediction_key(task)
    served = answer.get(key, {}).get("values")
    evaluated = sample["outputs"].get(key, [])[:count]
    name = "same scores as the Evaluator"
    if served is None or len(served) != len(evaluated):
        return ServingCheck(name, f"{len(served or [])} served, {len(evaluated)} evaluated", "equal counts", FAIL)
    differences = [abs(a - b) for row_a, row_b in zip(served, evaluated) for a, b in zip(row_a, row_b)]
    worst = max(differences) if differences else 0.0
    ok = worst <= tolerance  # a NaN difference is not within any tolerance
    return ServingCheck(name, f"largest difference {worst:.2g} over {count} examples", f"<= {tolerance:g}",
                        PASS if ok else FAIL,
                        "" if ok else f"{sum(1 for d in differences if not d <= tolerance)} values differ")


def _variant_checks(queries: dict, task: str) -> list[ServingCheck]:
    checks = []
    for kind, title in (("missing", "answers with a feature missing"),
                        ("unseen", "answers a category train never had")):
        answers = {name.split(":", 1)[1]: answer for name, answer in queries.items() if name.startswith(kind + ":")}
        if not answers:
            continue
        problems = {name: _answer_problem(answer, task) for name, answer in answers.items()}
        problems = {name: problem for name, problem in problems.items() if problem}
        answered = len(answers) - len(problems)
        detail = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        checks.append(ServingCheck(title, f"{answered} of {len(answers)} features", "all",
                                   FAIL if problems else PASS, detail))
    return checks


def _answer_problem(answer: dict, task: str) -> str:
    if "error" in answer:
        return answer["error"]
    values = answer.get(tasks.prediction_key(task), {}).get("values")
    if not values:
        return f"no {tasks.prediction_key(task)} output"
    flat = [v for row in values for v in row]
    if not all(math.isfinite(v) for v in flat):
        return "a value is not finite"
    if task != tasks.REGRESSION and not all(0 <= v <= 1 for v in flat):
        return "a probability is outside [0, 1]"
    return ""


def _latency_checks(result: dict, settings: InfraValidatorConfig) -> list[ServingCheck]:
    checks = []
    for batch, bound in ((1, settings.max_latency_ms), (100, settings.max_batch_latency_ms)):
        latency = result.get("latency", {}).get(str(batch))
        name = f"latency, {batch} example{'s' if batch > 1 else ''} per request"
        if not latency:
            continue
        if "error" in latency:
            checks.append(ServingCheck(name, "an error", "an answer", FAIL, latency["error"]))
            continue
        value = f"p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms ({latency['calls']} calls)"
        if bound is None:
            checks.append(ServingCheck(name, value, "-", RECORDED))
        else:
            checks.append(ServingCheck(name, value, f"p99 <= {bound:g} ms", PASS if latency["p99_ms"] <= bound else FAIL))
    return checks


def problems_message(checks: list[ServingCheck], failed: list[ServingCheck]) -> str:
    """What ``sluiceway run`` prints when the serving check blocks the push: the failed checks as a table."""
    table = text_table(CHECK_HEADERS, [check.row()[:1] + (check.value,) + check.row()[2:] for check in failed],
                       max_width=70)
    details = "".join(f"\n  {check.check}: {check.detail}" for check in failed if check.detail)
    return f"the model is not pushed: {len(failed)} of {len(checks)} serving checks failed:\n{table}{details}"


def summary_line(checks: list[ServingCheck], failed: list[ServingCheck], record: dict) -> str:
    """One line: the verdict, the load time and the latency figures."""
    verdict = f"FAILED ({len(failed)} of {len(checks)} checks)" if failed else f"passed ({len(checks)} checks)"
    parts = [verdict]
    if "load_seconds" in record:
        parts.append(f"loaded in {record['load_seconds']:.1f} s in a clean process")
    for batch in LATENCY_CALLS:
        latency = record.get("latency", {}).get(str(batch), {})
        if "p50_ms" in latency:
            parts.append(f"{batch} example{'s' if batch > 1 else ''}: p50 {latency['p50_ms']:.1f} ms, "
                         f"p99 {latency['p99_ms']:.1f} ms")
    return "; ".join(parts)


def _report(checks: list[ServingCheck], failed: list[ServingCheck], record: dict) -> str:
    verdict = (f"**Does not serve**: {len(failed)} of {len(checks)} checks failed; the model is not pushed."
               if failed else f"**Serves**: every one of {len(checks)} checks passed.")
    lines = ["# Serving check", "", verdict, "",
             f"The model was loaded in a separate Python process (TensorFlow {record.get('tensorflow', '?')}, Python "
             f"{record.get('python', '?')}, nothing of the pipeline imported) and queried with {record['examples']} "
             f"examples of the {record['split']} split the Evaluator scored, plus examples with a feature missing "
             "or a category train never had. Latency is the model's time inside that process, without a network.",
             "", markdown_table(CHECK_HEADERS, [check.row() for check in checks]), "",
             f"The serving process's log is `{record['log']}` in the infra blessing's folder.", ""]
    return "\n".join(lines)
