"""The ``sluiceway`` command line.

Exit codes: 0 success, 1 a component or unexpected failure, 2 a configuration error, 3 bad input
data, 4 data validation anomalies (``validation.on_anomaly: fail``), 5 the push was blocked by a gate
(a verdict: the run itself completed), 6 ``sluiceway monitor`` found retraining due (a verdict: the
serving model no longer fits the data; with ``--retrain`` the exit code is the retraining run's), 130 or
143 the run was cancelled by SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime

from pipeline.errors import RunCancelled, SluicewayError
from pipeline.files import atomic_path, atomic_write_text


def _quiet_libraries() -> None:
    """TensorFlow, Beam and Google's client libraries are chatty; keep the terminal for our progress."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # later components need tf.keras to be Keras 2 (tf_keras); it must be set before TF is imported
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # TFMA divides by zero for empty confusion-matrix cells (a rate at threshold 1.0, a tiny slice) and
    # reports the result as NaN, which the Evaluator shows; the numpy warning only adds noise
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tensorflow_model_analysis\.")
    for name in ("apache_beam", "absl", "tensorflow", "tensorflow_data_validation", "kfp"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from absl import logging as absl_logging  # absl resets its logger's level when first imported

    absl_logging.set_verbosity(absl_logging.ERROR)


def _load(path: str):
    from pipeline.loader import config_warnings, load_config

    config = load_config(path)
    _warn(path, config_warnings(config))
    return config


def _warn(path: str, warnings: list) -> None:
    """Prints each warning (a ``ConfigIssue``: YAML path and message) to stderr as ``warning: FILE: ...``."""
    for warning in warnings:
        print(f"warning: {path}: {warning}", file=sys.stderr)


def cmd_validate_config(args: argparse.Namespace) -> int:
    config = _load(args.file)
    print(f"{args.file}: OK (pipeline '{config.pipeline.name}', {len(config.features.feature_names)} features, "
          f"root {config.pipeline.root})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if args.runner in ("kfp-local", "docker"):
        result = _kfp_runner(args.runner)(config, args.file, until=args.until)
        where = "kfp local run" if args.runner == "kfp-local" else f"docker run (every component in {config.kubeflow.image})"
        print(f"{where} {result.status.lower()}: {result.executed} executed, {result.skipped} skipped; "
              f"outputs under {result.run_dir}")
        return verdict_exit_code(result)
    from pipeline.runner import run_pipeline

    result = run_pipeline(config, args.file, use_cache=not args.no_cache, until=args.until)
    return _print_run(result)


def _kfp_runner(name: str):
    """``--runner kfp-local`` or ``docker``: the function that runs components as kfp tasks."""
    from pipeline.kfp_local import run_with_kfp_docker, run_with_kfp_local

    return run_with_kfp_local if name == "kfp-local" else run_with_kfp_docker


def _print_run(result) -> int:
    """What ``sluiceway run`` prints after a local run, and its exit code."""
    from pipeline.specs import DECLARED

    ran_again = [o.name for o in result.components if o.state == "executed" and not DECLARED[o.name].cache]
    if result.cached and result.executed == len(ran_again):
        print(f"Nothing changed: all {result.cached} cacheable components reused cached outputs"
              + (f"; {', '.join(ran_again)} (never cached) ran again." if ran_again else "; no component executed."))
    else:
        print(f"Run {result.run_id} {result.status.lower()}: {result.executed} executed, {result.cached} cached, "
              f"{result.skipped} skipped.")
    print(f"Outputs: {result.run_dir}  (run.json lists every output)")
    for outcome in result.components:
        headline = DECLARED[outcome.name].headline
        if headline and outcome.state in ("executed", "cached"):
            try:
                print(headline.format(**outcome.outputs, **outcome.figures))
            except (KeyError, ValueError, TypeError):
                pass   # a figure the line names is missing (e.g. a run with tuning only)
    for outcome in result.components:
        for name, uri in outcome.outputs.items():
            print(f"  {outcome.name}.{name}: {uri}")
    return verdict_exit_code(result)


def verdict_exit_code(result) -> int:
    """A negative verdict (the push blocked by a gate) is the run's outcome: its reason goes to
    stderr, and the exit code is the verdict's (5 for gates)."""
    for outcome in result.components:
        if outcome.state == "skipped":
            print(f"{outcome.name} skipped: {outcome.skipped_because}")
    for blocked in result.blocked:
        print(f"error: {blocked.component}: {blocked.reason}", file=sys.stderr)
    return result.blocked[0].exit_code if result.blocked else 0


def cmd_monitor(args: argparse.Namespace) -> int:
    import json

    from components.monitor.core import SUMMARY_FILE
    from pipeline.runner import run_pipeline
    from pipeline.specs import MONITOR, MONITORING_REPORT, Components

    config = _load(args.file)
    if args.data:
        data = args.data if "://" in args.data else os.path.abspath(args.data)
        config = config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"source": data})})
    echo = (lambda line: print(line, file=sys.stderr)) if args.json else print
    monitor_only = Components([MONITOR])
    if args.runner == "local":
        result = run_pipeline(config, args.file, components=monitor_only, echo=echo)
    else:
        result = _kfp_runner(args.runner)(config, args.file, components=monitor_only, echo=echo)
    outcome = result.outcome(MONITOR.name)
    with open(os.path.join(outcome.outputs["findings"], SUMMARY_FILE), encoding="utf-8") as handle:
        summary = json.load(handle)
    report = outcome.outputs["monitoring_report"]
    if os.path.isdir(report):
        report = os.path.join(report, MONITORING_REPORT.file_name)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_monitoring(summary, report)
    if not summary["retrain"]:
        return 0
    if not args.retrain:
        print(f"Retraining is due: run `sluiceway monitor {args.file} --retrain`, or `sluiceway run {args.file}` "
              "(exit code 6)", file=sys.stderr)
        return MONITOR.verdict.exit_code
    return _retrain(config, args.file, summary, echo, args.runner)


def cmd_predict(args: argparse.Namespace) -> int:
    """``sluiceway predict``: the BulkInferrer alone, recorded as a run (ML Metadata, run.json)."""
    from pipeline.runner import run_pipeline
    from pipeline.specs import BULK_INFERRER, Components

    config = _load(args.file)
    model = args.model if args.model == "latest" or args.model.isdigit() or "://" in args.model \
        else os.path.abspath(args.model)
    data = args.data if "://" in args.data else os.path.abspath(args.data)
    keep = [name.strip() for name in args.keep.split(",") if name.strip()]
    settings = config.bulk_inference.model_copy(update={
        "source": data, "output": os.path.abspath(args.output), "model": model, "keep": keep,
        "on_bad_row": args.on_bad_row, "format": args.format})
    config = config.model_copy(update={"bulk_inference": settings})
    alone = Components([BULK_INFERRER])
    if args.runner == "local":
        result = run_pipeline(config, args.file, components=alone, use_cache=False)
    else:
        result = _kfp_runner(args.runner)(config, args.file, components=alone)
    import json

    from components.bulk_inferrer.output import lineage_path

    with open(lineage_path(settings.output), encoding="utf-8") as handle:  # whichever runner wrote it
        lineage = json.load(handle)
    rows = lineage["rows"]
    print(f"Predictions: {rows['scored']:,} rows scored with {lineage['annotations']['model']} "
          f"({rows['scored'] / max(lineage['seconds'], 1e-9):,.0f} rows/s): {settings.output}"
          + (f"; {rows['skipped']:,} bad rows left out (listed in the lineage file)" if rows["skipped"] else ""))
    print(f"Lineage: {lineage_path(settings.output)}; run {result.run_id} in ML Metadata (sluiceway runs "
          f"{args.file})")
    return 0


def print_monitoring(summary: dict, report: str) -> None:
    """The monitor's findings as tables: every feature's distance, the anomalies, the metrics now and
    at push, every reason and the verdict."""
    from components.monitor.core import reasons_table
    from components.example_gen.sources import spans_text
    from pipeline.table import text_table

    serving, data = summary["serving"], summary["data"]
    trained = serving["trained_on"]
    spans = trained.get("spans")
    print(f"Serving version {serving['version']} (pushed {serving.get('pushed_at') or '?'} by run "
          f"{serving.get('run') or '?'}; trained on "
          + (spans_text(sorted(spans)) if spans else "data.source")
          + (f", {trained['rows']:,} rows" if trained.get("rows") else "") + ")")
    print(f"Judged: {data['rows']:,} rows of {data['source']}" + (f" (span {data['span']})" if data['span'] is not None
                                                                  else "")
          + ("" if data["labelled"] else "; no labels, so drift only"))
    if summary["drift"]:
        print("\nDrift against the serving model's train split (every feature):")
        print(text_table(("feature", "type", "measure", "distance", "threshold", "test p (Holm)", "decision"), [
            (m["feature"], m["type"], m["measure"],
             f"{m['value']:.4f}", f"{m['threshold']:g}",
             "-" if m["holm_p_value"] is None else f"{m['holm_p_value']:.2g}",
             m["decision"] + (f" (KS gap {m['statistic']:.3g})" if m["decision"] == "drift"
                              and m["value"] <= m["threshold"] and m.get("statistic") is not None else ""))
            for m in summary["drift"]]))
    if summary["anomalies"]:
        print("\nSchema anomalies:")
        print(text_table(("feature", "anomaly", "description"),
                         [(a["feature"], a["anomaly"], a["description"]) for a in summary["anomalies"]], max_width=80))
    evaluation = summary["evaluation"]
    if evaluation:
        rows = [m for m in evaluation["metrics"] if m["metric"] == evaluation["metric"]]
        print(f"\nThe serving model on this data ({evaluation['metric']}, now vs at push):")
        print(text_table(("slice", "examples", "at push", "now", "change"), [
            (m["slice"], f"{m['size']:,}", _figure(m["at_push"]), _figure(m["now"]),
             "-" if m["change"] is None else f"{m['change']:+.4f}") for m in rows]))
    if summary["reasons"]:
        print(f"\n{len(summary['reasons'])} finding(s):")
        print(reasons_table(summary["reasons"]))
    due = summary["retrain"]
    print(f"\nVerdict: {summary['verdict']}; " + ("retraining is due (monitoring.retrain_on: "
                                                 + ", ".join(summary["retrain_on"]) + ")" if due
                                                 else "no retraining due"))
    print(f"Report: {report}")


def _figure(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _retrain(config, config_file: str, summary: dict, echo, runner: str = "local") -> int:
    """Runs the whole pipeline because the monitor found retraining due; the new model is pushed only
    if it passes the same gates (no-regression against the serving model included)."""
    from components.example_gen import sources
    from pipeline.runner import run_pipeline

    data = config.data
    if sources.SPAN in data.source:
        window = sources.resolve_spans(data)[-data.window:]
        numbers = [span.number for span in window]
        judged = summary["data"]["span"]
        note = "" if judged is None or judged in numbers else \
            f"; the judged data (span {judged}) is not in the window"
        echo(f"Retraining on {sources.spans_text(numbers)} of {data.source} "
             f"(data.window {data.window}){note}")
    else:
        echo(f"Retraining on {data.source}" + ("" if summary["data"]["span"] is not None else
                                               " (the judged data is not part of data.source)"))
    reasons = "; ".join(f"{r['kind']} {r['what']}" + (f" [{r['slice']}]" if r["slice"] not in ("-", "overall") else "")
                        for r in summary["reasons"] if r["triggers_retrain"])
    if runner == "local":
        result = run_pipeline(config, config_file, echo=echo,
                              annotations={"triggered_by": summary["run"], "trigger_verdict": summary["verdict"],
                                           "trigger_reasons": reasons[:2000]})
        code = _print_run(result)
    else:
        result = _kfp_runner(runner)(config, config_file, echo=echo)
        code = verdict_exit_code(result)
    pusher = next((o for o in result.components if o.name == "Pusher"), None)
    if pusher and pusher.state == "executed" and pusher.figures.get("pushed"):
        print(f"Retrained: version {pusher.figures.get('version')} now serves, replacing "
              f"{summary['serving']['version']}")
    else:
        print(f"Retrained, but nothing was pushed: version {summary['serving']['version']} still serves"
              + (f" ({pusher.skipped_because})" if pusher and pusher.skipped_because else ""))
    return code


def cmd_generate_data(args: argparse.Namespace) -> int:
    from pipeline.datagen import generate

    try:
        result = generate(args.output, rows=args.rows, seed=args.seed, bias=args.bias, drift=args.drift,
                          task=args.task, concept_drift=args.concept_drift)
    except (ValueError, TypeError) as exc:
        raise SluicewayError(f"generate-data: {exc}") from None
    print(f"Wrote {result.rows:,} rows to {result.path} in {result.seconds:.1f}s "
          f"({result.label_summary()}, bias {args.bias:g}, drift {args.drift:g}, "
          f"concept drift {args.concept_drift:g})")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from pipeline.compiler import compile_pipeline, host_path_warnings
    from pipeline.specs import pipeline_of, retrain_if_due

    config = _load(args.file)
    components = retrain_if_due(pipeline_of(config)) if args.monitor else pipeline_of(config)
    path = compile_pipeline(config, args.output, components)
    _warn(args.file, host_path_warnings(config, components))
    what = " (continuous training: the Monitor first, training only when it finds retraining due)" if args.monitor \
        else ""
    print(f"Compiled '{config.pipeline.name}' for Kubeflow Pipelines v2{what}: {path} (image {config.kubeflow.image})")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    import json

    from pipeline.provenance import format_lineage, version_lineage

    config = _load(args.file)
    lineage = version_lineage(config, version=args.version, run=args.run)
    print(json.dumps(lineage, indent=2) if args.json else format_lineage(lineage))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from pipeline.lineage import STORE_FILE, Lineage, describe_run_folders, earlier_run_folders
    from pipeline.runner import pipeline_dir, report_abandoned
    from pipeline.specs import COMPONENTS
    from pipeline.table import text_table

    config = _load(args.file)
    root = pipeline_dir(config)
    if not os.path.exists(os.path.join(root, STORE_FILE)):
        folders = earlier_run_folders(root)
        if folders:
            raise SluicewayError(
                f"runs: the ML Metadata store {os.path.join(root, STORE_FILE)} does not exist, though "
                f"{describe_run_folders(folders)}: the run history was deleted. Each run's folder still holds its "
                "run.json; the next run starts a new history.")
        print(f"No runs of '{config.pipeline.name}' yet (nothing under {root}).")
        return 0
    lineage = Lineage(root, create=False)
    report_abandoned(lineage, config.pipeline.name, root, print)
    runs = lineage.runs(config.pipeline.name)
    if not runs:
        print(f"No runs of '{config.pipeline.name}' recorded in {root}.")
        return 0
    summary = {f"{spec.name}.{figure}": spec.parameters.get(figure) for spec in COMPONENTS for figure in spec.summary}
    rows = []
    for run in runs[-args.last:]:
        figures = run.figures
        took = f"{run.finished - run.started:.1f}s" if run.finished else "-"
        shown = ", ".join(f"{key.split('.', 1)[1]}={kind(figures[key]) if kind else figures[key]}"
                          for key, kind in summary.items() if key in figures)
        status = f"{run.status} (cancelled, {figures['cancelled']})" if "cancelled" in figures else run.status
        rows.append((run.run_id, status, datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M:%S"), took,
                     figures.get("executed", "-"), figures.get("cached", "-"),
                     figures.get("skipped_components", "-"), shown))
    print(text_table(("run", "status", "started", "took", "executed", "cached", "skipped", "figures"), rows))
    return 0


def cmd_infer_schema(args: argparse.Namespace) -> int:
    from components.schema_gen.core import infer_schema
    from pipeline.runner import run_pipeline
    from pipeline.specs import STATISTICS_GEN

    config = _load(args.file)
    target = args.output or config.validation.schema_path
    if not target:
        raise SluicewayError("infer-schema: give -o PATH (e.g. schemas/<pipeline>/schema.pbtxt) or set validation.schema")
    if os.path.exists(target) and not args.force:
        raise SluicewayError(f"infer-schema: {target} exists; pass --force to overwrite the curated schema")
    result = run_pipeline(config, args.file, until=STATISTICS_GEN.name)
    statistics = result.outcome(STATISTICS_GEN.name).outputs["statistics"]
    import tensorflow_data_validation as tfdv

    schema = infer_schema(statistics)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    with atomic_path(target) as temp:
        tfdv.write_schema_text(schema, temp)
    print(f"Wrote the schema inferred from the train split to {target} ({len(schema.feature)} features). "
          "Curate it, then name it as validation.schema in the pipeline YAML.")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from pipeline.lineage import Lineage
    from pipeline.runner import RUN_FILE, pipeline_dir
    from pipeline.specs import COMPONENTS, FAIRNESS_REPORT

    config = _load(args.file)
    root = pipeline_dir(config)
    runs = Lineage(root).runs(config.pipeline.name) if os.path.isdir(root) else []
    run_ids = [r.run_id for r in runs] if args.run is None else [args.run]
    producers = [(spec.name, name) for spec in COMPONENTS for name, kind in spec.outputs.items()
                 if kind == FAIRNESS_REPORT]
    for run_id in reversed(run_ids):
        run_dir = os.path.join(root, run_id)
        candidates = [os.path.join(run_dir, component, output, FAIRNESS_REPORT.file_name)
                      for component, output in producers]
        run_file = os.path.join(run_dir, RUN_FILE)
        if os.path.exists(run_file):  # a cached component points at the run that wrote the report
            with open(run_file, encoding="utf-8") as handle:
                body = json.load(handle)
            for component in body["components"]:
                for name, output in producers:
                    if component["name"] == name and output in component["outputs"]:
                        candidates.insert(0, os.path.join(component["outputs"][output], FAIRNESS_REPORT.file_name))
        found = next((path for path in candidates if os.path.exists(path)), None)
        if found:
            print(found)
            return 0
        if args.run is not None:
            break
    which = f"run {args.run}" if args.run else f"any run of '{config.pipeline.name}'"
    raise SluicewayError(f"report: no fairness report in {which}; the Evaluator writes one when it runs")


def cmd_approve(args: argparse.Namespace) -> int:
    from components.pusher.approve import approve

    config = _load(args.file)
    record = approve(config, args.run, args.reason, args.by, progress=print)
    approval = record["approval"]
    if record["pushed"]:
        print(f"Pushed run {args.run}'s blocked model as version {record['version']} ({record['path']}), approved by "
              f"{approval['by']} at {approval['at']}: {approval['reason']}. {len(approval['failed_checks'])} failed "
              "checks are on the record in its manifest and model card.")
    else:
        print(f"Nothing pushed: run {args.run}'s model is {record['reason']}.")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from components.pusher.approve import card_path

    print(card_path(_load(args.file), args.version))
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from pipeline.json_schema import render

    text = render()
    if args.output:
        atomic_write_text(args.output, text)
        print(f"Wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from pipeline import submit

    params = submit.parse_params(args.param or [])
    with submit.package_file(args.output) as package:   # a temporary package is removed at the end
        submission = submit.prepare(args.file, params, host=args.host, experiment=args.experiment,
                                    run_name=args.run_name, namespace=args.namespace, package=package,
                                    package_kept=bool(args.output))
        _warn(args.file, submission.warnings)
        if args.dry_run:
            print("Dry run: nothing was sent. This is what `submit` would send:")
            print(submission.describe())
            return 0
        print(f"Submitting {submission.pipeline_name} to {submission.host} (experiment '{submission.experiment}')")
        run_id = submit.send(submission)
    print(f"Run {submission.run_name} created: id {run_id}")
    print(f"See it at {submission.host.rstrip('/')}/#/runs/details/{run_id}")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from pipeline import schedule, submit

    with submit.package_file(args.output) as package:   # a temporary package is removed at the end
        plan = schedule.prepare_schedule(args.file, host=args.host, cron=args.cron, experiment=args.experiment,
                                         name=args.name, namespace=args.namespace, package=package,
                                         package_kept=bool(args.output))
        _warn(args.file, plan.warnings)
        if args.dry_run:
            print("Dry run: nothing was sent. This is what `schedule` would create:")
            print(plan.describe())
            return 0
        print(f"Scheduling {plan.pipeline_name} on {plan.host} (experiment '{plan.experiment}', "
              f"cron {plan.kfp_cron!r})")
        recurring_run_id, outcome = schedule.send_schedule(plan)
    print(f"Recurring run {plan.name} {outcome}: id {recurring_run_id}")
    print(f"See it at {plan.host.rstrip('/')}/#/recurringrun/details/{recurring_run_id}")
    return 0


def cmd_build_image(args: argparse.Namespace) -> int:
    import shlex

    from pipeline import image

    tag = args.tag or (_load(args.file).kubeflow.image if args.file else image.DEFAULT_IMAGE)
    engine, notes = image.choose_engine(args.engine)
    plan = image.plan_build(engine, tag, base_image=args.base_image, ca_bundle=args.ca_bundle,
                            engine_args=args.engine_arg)
    print(f"Building {tag} with {engine}" + (f" ({notes})" if notes else ""))
    print("  " + shlex.join(plan.command), flush=True)
    if args.dry_run:
        return 0
    started = time.monotonic()
    image.build(plan)
    print(f"Built {tag} with {engine} in {time.monotonic() - started:.0f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluiceway", description="Declarative ML pipelines with TFX-style components.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a pipeline locally")
    p.add_argument("file", help="pipeline YAML")
    p.add_argument("--no-cache", action="store_true", help="execute every component even if cached outputs exist")
    p.add_argument("--runner", choices=("local", "kfp-local", "docker"), default="local",
                   help="local: in-process with caching and lineage (default); kfp-local: kfp's SubprocessRunner; "
                        "docker: each component in kubeflow.image through kfp's DockerRunner (DOCKER_HOST may "
                        "point at a podman socket)")
    from pipeline.specs import COMPONENTS

    p.add_argument("--until", choices=COMPONENTS.names, help="run only this component and what it needs")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("monitor", help="judge new data against the serving model; say whether to retrain")
    p.add_argument("file", help="pipeline YAML")
    p.add_argument("--data", help="the data to judge: a file, folder or glob (CSV, Parquet or TFRecord, with or "
                                  "without labels); default monitoring.source, else the latest span of data.source")
    p.add_argument("--retrain", action="store_true",
                   help="when retraining is due, run the pipeline (the new model is pushed only if it passes the "
                        "gates)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (progress goes to stderr)")
    p.add_argument("--runner", choices=("local", "kfp-local", "docker"), default="local",
                   help="as for run: in-process (default), as a kfp task, or in kubeflow.image")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("predict", help="score a table with the serving model (or another) into Parquet or CSV")
    p.add_argument("file", help="pipeline YAML (its features, data options and pusher.destination)")
    p.add_argument("--data", required=True, help="the data to score: a CSV, Parquet or TFRecord file, folder or glob")
    p.add_argument("-o", "--output", required=True, help="file to write: .parquet, .csv or .csv.gz (replaced whole)")
    p.add_argument("--model", default="latest",
                   help="latest (the version serving in pusher.destination, default), a version number there, or a "
                        "SavedModel folder")
    p.add_argument("--keep", default="", help="columns to copy before the predictions, comma-separated (e.g. an id)")
    p.add_argument("--on-bad-row", choices=("fail", "skip"), default="fail",
                   help="a row with a value of the wrong type: stop naming it (default), or leave it out and list it")
    p.add_argument("--format", choices=("auto", "csv", "parquet", "tfrecord"), default="auto",
                   help="input format; auto decides by file extension")
    p.add_argument("--runner", choices=("local", "kfp-local"), default="local",
                   help="in-process (default), or as a kfp task")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("validate-config", help="check a pipeline YAML without running anything")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate_config)

    p = sub.add_parser("generate-data", help="write a synthetic credit data set (approval, risk tier or interest "
                                             "rate)")
    p.add_argument("-o", "--output", required=True, help="file to write: .csv, .csv.gz or .parquet")
    p.add_argument("--task", choices=("binary", "multiclass", "regression"), default="binary",
                   help="the label: binary approved yes/no (default), multiclass risk_tier low/medium/high, "
                        "regression interest_rate in percent")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bias", type=float, default=0.0, help="label unfairness against sex=female (0 = none)")
    p.add_argument("--drift", type=float, default=0.0, help="feature shift and unseen categories (0 = none)")
    p.add_argument("--concept-drift", type=float, default=0.0, metavar="C",
                   help="how far the label's dependence on the features changes, 0 to 1, with the features "
                        "unchanged (0 = none; 1: a model trained at 0 ranks at about chance)")
    p.set_defaults(func=cmd_generate_data)

    p = sub.add_parser("compile", help="compile to a Kubeflow Pipelines v2 spec")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True, help="output YAML")
    p.add_argument("--monitor", action="store_true",
                   help="compile the continuous-training pipeline: the Monitor first, every training task under "
                        "dsl.If on its retrain verdict")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("lineage", help="where a pushed version came from, and what has judged it since")
    p.add_argument("file")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="a pushed version (default: the one serving)")
    which.add_argument("--run", help="the version this training run pushed")
    p.add_argument("--json", action="store_true", help="print JSON, for tools")
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("submit", help="compile and start a run on a Kubeflow Pipelines cluster")
    p.add_argument("file")
    p.add_argument("--host", help="the Kubeflow Pipelines API, e.g. http://localhost:8080 (port-forwarded)")
    p.add_argument("--experiment", help="experiment name (default: the pipeline's name)")
    p.add_argument("--run-name", help="run name (default: <pipeline>-<UTC time>)")
    p.add_argument("--namespace", help="Kubeflow profile namespace (multi-user installations)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="change a value for this run, e.g. trainer.epochs=5 (repeatable)")
    p.add_argument("-o", "--output", help="also keep the compiled package here")
    p.add_argument("--dry-run", action="store_true", help="compile and print what would be sent; send nothing")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("schedule", help="create or update a Kubeflow Pipelines recurring run of the "
                                        "continuous-training pipeline (the Monitor, then training when due)")
    p.add_argument("file")
    p.add_argument("--host", help="the Kubeflow Pipelines API, e.g. http://localhost:8080 (port-forwarded)")
    p.add_argument("--cron", required=True,
                   help='when to run, as in crontab: "0 3 * * *" is 03:00 every day (6 fields, seconds first, '
                        "are taken as they are)")
    p.add_argument("--experiment", help="experiment name (default: the pipeline's name)")
    p.add_argument("--name", help="recurring run name (default: <pipeline>-continuous-training); one of that name "
                                  "in the experiment is replaced")
    p.add_argument("--namespace", help="Kubeflow profile namespace (multi-user installations)")
    p.add_argument("-o", "--output", help="also keep the compiled package here")
    p.add_argument("--dry-run", action="store_true", help="compile and print what would be created; send nothing")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("build-image", help="build the image the compiled components run in (docker or podman)")
    p.add_argument("file", nargs="?", help="pipeline YAML whose kubeflow.image is the tag (default "
                                           "localhost/sluiceway:0.1.0)")
    p.add_argument("--tag", help="image name, instead of the YAML's kubeflow.image")
    p.add_argument("--engine", choices=("docker", "podman"), help="default: docker if it answers, else podman")
    p.add_argument("--base-image", help="the Dockerfile's BASE_IMAGE (default python:3.11-slim)")
    p.add_argument("--ca-bundle", help="CA certificates for a TLS-intercepting proxy: a build secret, never "
                                       "stored in the image")
    p.add_argument("--engine-arg", action="append", metavar="ARG",
                   help="passed to `<engine> build` as is, e.g. --engine-arg=--network=host (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the build command only")
    p.set_defaults(func=cmd_build_image)

    p = sub.add_parser("runs", help="list recorded runs of a pipeline")
    p.add_argument("file")
    p.add_argument("--last", type=int, default=20, help="show the last N runs")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("infer-schema", help="write the schema inferred from train, for you to curate")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="where to write schema.pbtxt (default: validation.schema)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_infer_schema)

    p = sub.add_parser("report", help="print the path of a run's fairness report (HTML)")
    p.add_argument("file")
    p.add_argument("--run", help="run id (default: the latest run with a report)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("approve", help="push a run's model the gates blocked, with who approved it and why on the "
                                       "record (never one that failed the serving check)")
    p.add_argument("file")
    p.add_argument("--run", required=True, help="the run whose blocked model ships (`sluiceway runs` lists them)")
    p.add_argument("--reason", required=True, help="why it may ship though a gate blocked it")
    p.add_argument("--by", help="who approves (default: the user running the command)")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("card", help="print the path of a pushed version's model card (HTML)")
    p.add_argument("file")
    p.add_argument("--version", type=int, help="the version (default: the one serving)")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("config-schema", help="print or write the JSON Schema of pipeline YAML files")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_config_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    started = time.monotonic()
    try:
        return args.func(args)
    except SluicewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (RunCancelled, KeyboardInterrupt) as exc:
        cancelled = exc if isinstance(exc, RunCancelled) else RunCancelled("SIGINT")
        print(f"error: {cancelled}; a local run is recorded as failed (cancelled)", file=sys.stderr)
        return cancelled.exit_code
    finally:
        if args.command in ("run", "monitor", "predict") and not getattr(args, "json", False):
            print(f"Finished in {time.monotonic() - started:.1f}s.")


if __name__ == "__main__":
    sys.exit(main())
