"""`sluiceway submit`: a dry run offline, an unreachable host, and what the real kfp client sends."""

from __future__ import annotations

import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from pipeline.cli import main
from tests.conftest import QUICKSTART_SCHEMA, REPO


@pytest.fixture
def quickstart(tmp_path) -> str:
    text = open(f"{REPO}/examples/quickstart/pipeline.yaml").read()
    path = tmp_path / "pipeline.yaml"
    path.write_text(text.replace("../../schemas/quickstart/schema.pbtxt", QUICKSTART_SCHEMA))
    return str(path)


def test_a_dry_run_compiles_and_prints_the_changed_arguments_offline(quickstart, tmp_path, capsys):
    package = tmp_path / "out.yaml"
    assert main(["submit", quickstart, "--dry-run", "--param", "trainer.epochs=5", "-o", str(package)]) == 0
    out = capsys.readouterr().out
    assert "Dry run: nothing was sent" in out and "experiment: quickstart" in out
    assert "arguments:  trainer.epochs=5" in out and '"epochs": 5' in out
    assert "evaluator =" not in out  # only the sections the overrides change are sent
    spec = next(yaml.safe_load_all(package.read_text()))
    assert spec["pipelineInfo"]["name"] == "quickstart"


def test_overrides_are_validated_like_the_file(quickstart, capsys):
    assert main(["submit", quickstart, "--dry-run", "--param", "trainer.epochs=many"]) == 2
    assert "trainer.epochs" in capsys.readouterr().err
    assert main(["submit", quickstart, "--dry-run", "--param", "kubeflow.image=x"]) == 2
    assert "--param kubeflow: not a pipeline parameter" in capsys.readouterr().err
    assert main(["submit", quickstart, "--dry-run", "--param", "epochs"]) == 2


def test_an_unreachable_host_fails_with_a_clear_message(quickstart, capsys):
    assert main(["submit", quickstart, "--host", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "could not create the run on http://127.0.0.1:9" in err and "Nothing was submitted" in err
    assert main(["submit", quickstart]) == 1
    assert "give --host URL" in capsys.readouterr().err


class _FakeKubeflowApi(BaseHTTPRequestHandler):
    """Just enough of the Kubeflow Pipelines v2beta1 REST API for kfp.Client to create a run."""

    requests: list = []

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self.requests.append(("GET", self.path, None))
        if self.path.startswith("/apis/v2beta1/healthz"):
            self._reply({"multi_user": False})
        else:  # experiments listed by name: none yet
            self._reply({})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.requests.append(("POST", self.path, body))
        if self.path.startswith("/apis/v2beta1/experiments"):
            self._reply({"experiment_id": "exp-1", "display_name": body.get("display_name")})
        else:
            self._reply({"run_id": "run-42", "display_name": body.get("display_name"), "experiment_id": "exp-1"})

    def log_message(self, *args):
        pass


def test_submit_sends_the_package_and_the_changed_sections_through_kfps_client(quickstart, capsys):
    server = HTTPServer(("127.0.0.1", 0), _FakeKubeflowApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FakeKubeflowApi.requests = []
    try:
        host = f"http://127.0.0.1:{server.server_port}"
        assert main(["submit", quickstart, "--host", host, "--experiment", "credit", "--param",
                     "trainer.learning_rate=0.01"]) == 0
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert "id run-42" in out
    [experiment] = [b for m, p, b in _FakeKubeflowApi.requests if m == "POST" and "experiments" in p]
    assert experiment["display_name"] == "credit"
    [run] = [b for m, p, b in _FakeKubeflowApi.requests if m == "POST" and p.startswith("/apis/v2beta1/runs")]
    assert run["experiment_id"] == "exp-1" and run["pipeline_spec"]["pipelineInfo"]["name"] == "quickstart"
    parameters = run["runtime_config"]["parameters"]
    assert set(parameters) == {"trainer"}
    assert json.loads(parameters["trainer"])["learning_rate"] == 0.01


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Python's temporary folder for this test only, so other processes' folders do not count."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_dry_run_without_output_leaves_no_temporary_folder(quickstart, private_tmp, capsys):
    assert main(["submit", quickstart, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Dry run: nothing was sent" in out
    assert "(temporary: removed when submit ends; -o FILE keeps it)" in out
    assert list(private_tmp.iterdir()) == []   # was: sluiceway-submit-*/pipeline.yaml, one per dry run


def test_a_failed_submit_leaves_no_temporary_folder_either(quickstart, private_tmp, capsys):
    assert main(["submit", quickstart, "--host", "http://127.0.0.1:9"]) == 1
    assert "Nothing was submitted" in capsys.readouterr().err
    assert list(private_tmp.iterdir()) == []


def test_submit_prints_the_host_path_warnings_of_the_compiled_spec(quickstart, private_tmp, capsys):
    assert main(["submit", quickstart, "--dry-run", "--param", "pusher.destination=gs://bucket/credit"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {quickstart}: data.source: " in err and "is a path on this machine" in err
    assert "pusher.destination" not in err   # the run's destination, with the override, is a URL


def test_a_deeply_nested_param_value_is_a_config_error_not_a_recursion_error(quickstart, capsys):
    assert main(["submit", quickstart, "--dry-run", "--param", "tuner.search_space=" + "[" * 5000 + "]" * 5000]) == 2
    err = capsys.readouterr().err
    assert "--param: tuner.search_space: values nested deeper than 64 levels" in err
    assert "RecursionError" not in err
