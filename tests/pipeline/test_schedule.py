"""`sluiceway schedule`: the plan offline, cron checks, an unreachable host, create vs update, and the
compiled continuous-training package."""

from __future__ import annotations

import json
import threading
import time
from http.server import HTTPServer
from types import SimpleNamespace

import kfp
import pytest
import yaml

from pipeline.cli import main
from pipeline.schedule import Schedule, ScheduleFailed, kfp_cron, prepare_schedule, send_schedule
from tests.pipeline.test_submit import _FakeKubeflowApi
from tests.pipeline.test_submit import quickstart  # noqa: F401 - the fixture: the quickstart with its schema found


def test_a_dry_run_prints_the_plan_offline_with_the_cron_kfp_receives(quickstart, tmp_path, capsys):
    package = tmp_path / "ct.yaml"
    assert main(["schedule", quickstart, "--cron", "0 3 * * *", "--dry-run", "-o", str(package)]) == 0
    out = capsys.readouterr().out
    assert "Dry run: nothing was sent" in out
    assert f"package:       {package} (pipeline 'quickstart', image localhost/sluiceway:0.1.0)" in out
    assert "host:          (none given)" in out and "experiment:    quickstart" in out
    assert "recurring run: quickstart-continuous-training" in out
    assert '"0 3 * * *" as given, "0 0 3 * * *" as Kubeflow Pipelines receives it' in out
    assert "max concurrency 1, catchup off" in out
    assert "replaces:      a recurring run named 'quickstart-continuous-training' in experiment 'quickstart'" in out
    assert "tasks:         Monitor, then only when its retrain output is true: ExampleGen," in out
    assert next(yaml.safe_load_all(package.read_text()))["pipelineInfo"]["name"] == "quickstart"


def test_names_given_are_the_ones_planned_and_six_fields_pass_unchanged(quickstart, tmp_path):
    plan = prepare_schedule(quickstart, host="http://kfp:8080", cron="30 15 2 * * MON-FRI", experiment="credit",
                            name="nightly", namespace="team-a", package=str(tmp_path / "p.yaml"))
    assert (plan.experiment, plan.name, plan.kfp_cron) == ("credit", "nightly", "30 15 2 * * MON-FRI")
    assert "host:          http://kfp:8080, namespace team-a" in plan.describe()


@pytest.mark.parametrize("cron, expected", [
    ("0 3 * *", "expected 5 fields (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\""),
    ("61 * * * *", "the minute field '61' is out of range: expected 0-59"),
    ("abc", "got 1 field"),
    ("0 3 * * 7", "the day-of-week field '7' is out of range: expected 0-6 or SUN-SAT (0 = Sunday)"),
    ("0 25 * * *", "the hour field '25' is out of range: expected 0-23"),
    ("0 3x * * *", "the hour field '3x' is not a number"),
    ("*/0 * * * *", "has a step of 0"),
    ("0 3 * * 5-1", "runs backwards"),
    ("0 ? * * *", "? stands for * in the day fields only"),
])
def test_a_bad_cron_is_a_config_error_naming_the_option(quickstart, cron, expected, capsys):
    assert main(["schedule", quickstart, "--cron", cron, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f'--cron: "{cron}": ' in err and expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize("cron, six", [("*/15 * * * *", "0 */15 * * * *"),
                                       ("0 3 1,15 jan-mar ?", "0 0 3 1,15 jan-mar ?"),
                                       ("0 0 6 * * 1-5", "0 0 6 * * 1-5"),
                                       ("5/10 0-6/2 * * SUN", "0 5/10 0-6/2 * * SUN")])
def test_the_forms_kfps_scheduler_reads_are_accepted(cron, six):
    assert kfp_cron(cron) == six


def test_an_unreachable_host_fails_fast_naming_it(quickstart, capsys):
    started = time.monotonic()
    assert main(["schedule", quickstart, "--cron", "0 3 * * *", "--host", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "could not reach or query the Kubeflow Pipelines API on http://127.0.0.1:9" in err
    assert "Nothing was scheduled." in err and "Traceback" not in err
    assert main(["schedule", quickstart, "--cron", "0 3 * * *"]) == 1
    assert "give --host URL" in capsys.readouterr().err
    assert time.monotonic() - started < 30   # kfp.Client would retry healthz for 25 s on HTTP errors


def test_kfp_clients_own_connection_error_is_a_schedule_failure(tmp_path):
    """Past the connection check, what kfp.Client raises (here: refused during its healthz call) is
    reported the same way."""
    plan = _plan(tmp_path, host="http://127.0.0.1:9")
    with pytest.raises(ScheduleFailed, match=r"on http://127\.0\.0\.1:9: MaxRetryError: .*Nothing was scheduled\."):
        send_schedule(plan, client_factory=kfp.Client)


class _FakeClient:
    """Just the kfp.Client methods ``send_schedule`` calls, recording them in order."""

    def __init__(self, existing: list[tuple[str, str]] = (), fail: str | None = None, page_size: int = 2):
        self.existing = list(existing)          # (id, display name) in the experiment
        self.fail = fail
        self.page_size = page_size
        self.calls: list[tuple] = []

    def _call(self, *call):
        self.calls.append(call)
        if self.fail == call[0]:
            raise RuntimeError(f"HTTP 500 from {call[0]}")

    def create_experiment(self, name, namespace=None):
        self._call("create_experiment", name, namespace)
        return SimpleNamespace(experiment_id="exp-1")

    def list_recurring_runs(self, page_token="", page_size=10, experiment_id=None, filter=None):
        self._call("list_recurring_runs", page_token, experiment_id)
        start = int(page_token or 0)
        runs = [SimpleNamespace(recurring_run_id=i, display_name=n)
                for i, n in self.existing[start:start + self.page_size]]   # a server ignoring the filter
        more = start + self.page_size < len(self.existing)
        return SimpleNamespace(recurring_runs=runs or None, next_page_token=str(start + self.page_size) if more else "")

    def create_recurring_run(self, experiment_id, job_name, **kwargs):
        self._call("create_recurring_run", experiment_id, job_name, kwargs)
        return SimpleNamespace(recurring_run_id="new-1", display_name=job_name)

    def disable_recurring_run(self, recurring_run_id):
        self._call("disable_recurring_run", recurring_run_id)

    def delete_recurring_run(self, recurring_run_id):
        self._call("delete_recurring_run", recurring_run_id)


def _plan(tmp_path, host="http://kfp:8080") -> Schedule:
    return Schedule(config_file="pipeline.yaml", package=str(tmp_path / "ct.yaml"), pipeline_name="quickstart",
                    image="img", tasks=("Monitor", "ExampleGen"), host=host, experiment="quickstart",
                    name="quickstart-continuous-training", namespace=None, cron="0 3 * * *", kfp_cron="0 0 3 * * *")


def _factory(fake: _FakeClient, seen: dict):
    def make(**kwargs):
        seen.update(kwargs)
        return fake
    return make


def test_a_new_recurring_run_is_created_with_the_package_and_the_schedule(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_PIPELINES_TOKEN", "t0ken")
    fake, seen = _FakeClient(existing=[("other-1", "something-else")]), {}
    assert send_schedule(_plan(tmp_path), client_factory=_factory(fake, seen)) == ("new-1", "created")
    assert seen == {"host": "http://kfp:8080", "namespace": None, "existing_token": "t0ken"}
    [create] = [c for c in fake.calls if c[0] == "create_recurring_run"]
    assert create[1:3] == ("exp-1", "quickstart-continuous-training")
    assert create[3] == {"cron_expression": "0 0 3 * * *", "pipeline_package_path": str(tmp_path / "ct.yaml"),
                         "max_concurrency": 1, "no_catchup": True, "enabled": True}
    assert not [c for c in fake.calls if c[0].endswith(("disable_recurring_run", "delete_recurring_run"))]


def test_an_update_deletes_the_old_ones_of_that_name_only_after_the_new_one_exists(tmp_path):
    name = "quickstart-continuous-training"
    fake = _FakeClient(existing=[("a", "other"), ("old-1", name), ("b", "other"), ("old-2", name)])
    assert send_schedule(_plan(tmp_path), client_factory=_factory(fake, {})) == ("new-1", "updated")
    order = [c[:2] for c in fake.calls if c[0] != "list_recurring_runs"]
    assert order == [("create_experiment", "quickstart"), ("create_recurring_run", "exp-1"),
                     ("disable_recurring_run", "old-1"), ("delete_recurring_run", "old-1"),
                     ("disable_recurring_run", "old-2"), ("delete_recurring_run", "old-2")]
    assert [c[1] for c in fake.calls if c[0] == "list_recurring_runs"] == ["", "2"]   # every page read


def test_a_rejected_package_schedules_nothing_and_leaves_the_old_one(tmp_path):
    fake = _FakeClient(existing=[("old-1", "quickstart-continuous-training")], fail="create_recurring_run")
    with pytest.raises(ScheduleFailed) as caught:
        send_schedule(_plan(tmp_path), client_factory=_factory(fake, {}))
    message = str(caught.value)
    assert "could not create the recurring run 'quickstart-continuous-training' on http://kfp:8080" in message
    assert "HTTP 500 from create_recurring_run" in message and "Nothing was scheduled." in message
    assert "(old-1) is unchanged" in message
    assert not [c for c in fake.calls if c[0] in ("disable_recurring_run", "delete_recurring_run")]


@pytest.mark.parametrize("fail, left", [("disable_recurring_run", "still enabled: both will run"),
                                        ("delete_recurring_run", "disabled but not deleted")])
def test_an_old_one_that_cannot_be_removed_is_named_with_what_is_left(tmp_path, fail, left):
    fake = _FakeClient(existing=[("old-1", "quickstart-continuous-training")], fail=fail)
    with pytest.raises(ScheduleFailed) as caught:
        send_schedule(_plan(tmp_path), client_factory=_factory(fake, {}))
    message = str(caught.value)
    assert "created the recurring run 'quickstart-continuous-training' on http://kfp:8080 (id new-1)" in message
    assert "(id old-1)" in message and left in message


class _RecurringRunsApi(_FakeKubeflowApi):
    """The Kubeflow Pipelines v2beta1 REST calls of an update: an experiment holding one recurring run of
    the name, then create, disable and delete."""

    requests: list = []

    def do_GET(self):  # noqa: N802
        self.requests.append(("GET", self.path, None))
        if self.path.startswith("/apis/v2beta1/healthz"):
            self._reply({"multi_user": False})
        elif self.path.startswith("/apis/v2beta1/recurringruns"):
            self._reply({"recurringRuns": [{"recurring_run_id": "old-9",
                                            "display_name": "quickstart-continuous-training"}]})
        else:
            self._reply({"experiments": [{"experiment_id": "exp-7", "display_name": "quickstart"}]})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.requests.append(("POST", self.path, body))
        self._reply({"recurring_run_id": "new-3", "display_name": body.get("display_name")})

    def do_DELETE(self):  # noqa: N802
        self.requests.append(("DELETE", self.path, None))
        self._reply({})


def test_the_real_kfp_client_sends_the_update_as_create_then_disable_and_delete(quickstart, capsys):
    server = HTTPServer(("127.0.0.1", 0), _RecurringRunsApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _RecurringRunsApi.requests = []
    try:
        host = f"http://127.0.0.1:{server.server_port}"
        assert main(["schedule", quickstart, "--host", host, "--cron", "0 3 * * *"]) == 0
    finally:
        server.shutdown()
    assert "Recurring run quickstart-continuous-training updated: id new-3" in capsys.readouterr().out
    sent = [(m, p.split("?")[0]) for m, p, _ in _RecurringRunsApi.requests if m != "GET"]
    assert sent == [("POST", "/apis/v2beta1/recurringruns"), ("POST", "/apis/v2beta1/recurringruns/old-9:disable"),
                    ("DELETE", "/apis/v2beta1/recurringruns/old-9")]
    [created] = [b for m, p, b in _RecurringRunsApi.requests if (m, p) == ("POST", "/apis/v2beta1/recurringruns")]
    assert created["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert (created["max_concurrency"], created["no_catchup"], created["mode"]) == (1, True, "ENABLE")
    assert created["experiment_id"] == "exp-7" and created["pipeline_spec"]["pipelineInfo"]["name"] == "quickstart"


def test_the_package_runs_the_monitor_first_and_trains_only_when_it_says_retrain(quickstart, tmp_path):
    package = tmp_path / "ct.yaml"
    prepare_schedule(quickstart, host=None, cron="0 3 * * *", package=str(package))
    spec = next(yaml.safe_load_all(package.read_text()))
    root = spec["root"]["dag"]["tasks"]
    starts = [name for name, task in root.items() if not task.get("dependentTasks")]
    assert starts == ["monitor"] and root["monitor"]["taskInfo"]["name"] == "Monitor"
    [condition] = [task for name, task in root.items() if name != "monitor"]
    assert condition["dependentTasks"] == ["monitor"]
    assert condition["inputs"]["parameters"]["pipelinechannel--monitor-retrain"]["taskOutputParameter"] == {
        "outputParameterKey": "retrain", "producerTask": "monitor"}
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--monitor-retrain'] == true")
    gated = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert {"example-gen", "trainer", "evaluator"} <= set(gated)
    assert gated["trainer"]["taskInfo"]["name"] == "Trainer"
