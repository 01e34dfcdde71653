"""The quickstart with every component in sluiceway's image (``sluiceway run --runner docker``), then
in-process (``sluiceway run``), and their outputs compared: the same state for every component, same
splits, same schema, pushed (or blocked) the same way, same eval AUC. Then a model the gates block,
in the image: the Evaluator completes, the Pusher is skipped, the command exits 5, nothing is pushed.

Needs ``DOCKER_HOST`` (``tests/container/setup_podman.sh`` prints it) and the image
(``tests/container/build_image.sh``, i.e. ``sluiceway build-image``).

    .venv/bin/python tests/container/run_docker_pipeline.py --workdir .container-state/quickstart

Everything it writes is under ``--workdir``: the data, two YAML copies of the quickstart (their
own roots and push destinations, so neither run serves as the other's baseline), their outputs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

QUICKSTART = os.path.join(REPO, "examples", "quickstart", "pipeline.yaml")


def write_yaml(workdir: str, name: str, data: str, gates: list | None = None) -> str:
    """The quickstart YAML with absolute paths and its own root and push destination under workdir
    (and other gates, when given)."""
    import yaml

    with open(QUICKSTART, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    here = os.path.dirname(QUICKSTART)
    doc["pipeline"]["root"] = os.path.join(workdir, name, "pipelines")
    doc["data"]["source"] = data
    if doc.get("validation", {}).get("schema"):
        doc["validation"]["schema"] = os.path.normpath(os.path.join(here, doc["validation"]["schema"]))
    doc["pusher"]["destination"] = os.path.join(workdir, name, "serving", "credit")
    if gates is not None:
        doc["evaluator"]["gates"] = gates
    path = os.path.join(workdir, f"{name}.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(doc, handle, sort_keys=False)
    return path


def docker_outputs(kfp_root: str) -> dict:
    """Figures, schema and push result of the (newest) DockerRunner run under kfp_root."""
    run = sorted(glob.glob(os.path.join(kfp_root, "*")), key=os.path.getmtime)[-1]
    result = {"figures": {}, "dir": run}
    for task in sorted(os.listdir(run)):
        if not os.path.exists(os.path.join(run, task, "executor_output.json")):
            continue   # the task failed
        with open(os.path.join(run, task, "executor_output.json"), encoding="utf-8") as handle:
            out = json.load(handle)
        metrics = out.get("artifacts", {}).get("metrics", {}).get("artifacts", [{}])[0].get("metadata", {})
        result["figures"][task] = metrics
    result["schema"] = _read_schema(os.path.join(run, "schema-gen", "schema"))
    result["tasks_done"] = sorted(result["figures"])
    with open(os.path.join(run, "run.json"), encoding="utf-8") as handle:   # what the dispatcher recorded
        result["states"] = {c["name"]: c["state"] for c in json.load(handle)["components"]}
    return result


def local_outputs(run_json: str) -> dict:
    with open(run_json, encoding="utf-8") as handle:
        run = json.load(handle)
    result = {"figures": {}, "status": run["status"], "states": {c["name"]: c["state"] for c in run["components"]}}
    for component in run["components"]:
        result["figures"][component["name"]] = component["figures"]
        if component["name"] == "SchemaGen":
            result["schema"] = _read_schema(component["outputs"]["schema"])
    return result


def _read_schema(path: str) -> str:
    """The schema itself (schema_source.json beside it names where it came from, which differs:
    the curated file on the host, a temporary copy of the spec's parameter in a task)."""
    with open(os.path.join(path, "schema.pbtxt"), encoding="utf-8") as handle:
        return handle.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=".container-state/quickstart")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--no-local", action="store_true", help="skip the in-process run and the comparison")
    parser.add_argument("--no-blocked", action="store_true", help="skip the run of a model the gates block")
    args = parser.parse_args()
    if not os.environ.get("DOCKER_HOST"):
        parser.error("DOCKER_HOST is not set: eval the exports tests/container/setup_podman.sh prints")

    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    sluiceway = os.path.join(os.path.dirname(sys.executable), "sluiceway")
    data = os.path.join(workdir, "data", "credit.csv.gz")
    if not os.path.exists(data):
        subprocess.run([sluiceway, "generate-data", "-o", data, "--rows", str(args.rows), "--seed", "7"], check=True)

    for name in ("docker", "local", "blocked"):   # fresh outputs and push destinations: no baseline, no cache
        shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)

    from pipeline.loader import load_config

    # both copies now, from the same quickstart text: the two runs compare the same pipeline
    docker_file = write_yaml(workdir, "docker", data)
    config = load_config(docker_file)
    local_file = write_yaml(workdir, "local", data)
    local_config = load_config(local_file)
    kfp_root = os.path.join(config.pipeline.root, config.pipeline.name, "kfp-docker")
    start = time.monotonic()
    code = subprocess.run([sluiceway, "run", docker_file, "--runner", "docker"]).returncode
    failed = None if code == 0 else f"sluiceway run --runner docker exited with {code}"
    docker_seconds = time.monotonic() - start

    report = {"docker_seconds": round(docker_seconds, 1), "docker_failed": failed}
    docker = docker_outputs(kfp_root)
    report["docker_dir"] = docker["dir"]
    report["docker_tasks_done"] = docker["tasks_done"]
    report["docker_states"] = docker["states"]
    report["docker_pushed"] = sorted(os.listdir(config.pusher.destination))
    if not args.no_local:
        start = time.monotonic()
        code = subprocess.run([sluiceway, "run", local_file, "--no-cache"]).returncode
        report["local_seconds"] = round(time.monotonic() - start, 1)
        run_dirs = sorted(glob.glob(os.path.join(local_config.pipeline.root, local_config.pipeline.name, "2*")))
        here = local_outputs(os.path.join(run_dirs[-1], "run.json"))
        report["local_exit"] = code
        report["local_pushed"] = sorted(os.listdir(local_config.pusher.destination))
        report["local_states"] = here["states"]
        checks = {
            "states": docker["states"] == here["states"],
            "splits": all(docker["figures"]["example-gen"].get(k) == here["figures"]["ExampleGen"].get(k)
                          for k in ("rows_train", "rows_eval", "rows_test", "rows")),
            "schema": docker["schema"] == here["schema"],
            "pushed": bool(report["docker_pushed"]) == bool(report["local_pushed"]),
        }
        for key in ("eval_auc",):
            report[f"trainer_{key}"] = {"docker": docker["figures"].get("trainer", {}).get(key),
                                        "local": here["figures"].get("Trainer", {}).get(key)}
        report["checks"] = checks
    if not args.no_blocked:
        blocked_file = write_yaml(workdir, "blocked", data, gates=[{"metric": "auc", "min": 0.99}])
        blocked_config = load_config(blocked_file)
        start = time.monotonic()
        code = subprocess.run([sluiceway, "run", blocked_file, "--runner", "docker"]).returncode
        report["blocked_seconds"] = round(time.monotonic() - start, 1)
        states = docker_outputs(os.path.join(blocked_config.pipeline.root, blocked_config.pipeline.name,
                                             "kfp-docker"))["states"]
        report["blocked_exit"], report["blocked_states"] = code, states
        destination = blocked_config.pusher.destination
        report.setdefault("checks", {})["blocked"] = (
            code == 5 and states.get("Evaluator") == "executed" and states.get("Pusher") == "skipped"
            and not (os.path.isdir(destination) and os.listdir(destination)))
    print(json.dumps(report, indent=2))
    return 0 if failed is None and all(report.get("checks", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
