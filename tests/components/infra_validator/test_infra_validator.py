"""The serving check on a real trained model, and on models that load or answer in the pipeline's process
but not in a clean serving process."""

from __future__ import annotations

import json
import os

import pytest

from tests.components.conftest import features_config, make_outputs


def _sample(model_dir: str, examples_dir: str, evaluation_dir) -> str:
    """An evaluation folder holding the Evaluator's serving sample of ``model_dir`` (scored in this process)."""
    import tensorflow as tf

    from components.evaluator.core import write_serving_sample
    from pipeline.specs import SERVING_SAMPLE_FILE

    os.makedirs(evaluation_dir, exist_ok=True)
    write_serving_sample(tf.saved_model.load(model_dir), examples_dir, "eval",
                         os.path.join(evaluation_dir, SERVING_SAMPLE_FILE))
    return str(evaluation_dir)


def _check(model_dir: str, evaluation_dir: str, folder, **settings) -> tuple[dict, dict, str]:
    from components.infra_validator.core import execute
    from pipeline.config import InfraValidatorConfig
    from pipeline.specs import INFRA_BLESSING_FILE

    outputs = make_outputs(str(folder), ("infra_blessing",), {"serving_report": "serving_check.md"})
    figures = execute({"model": model_dir, "evaluation": evaluation_dir}, outputs,
                      {"infra_validator": InfraValidatorConfig(**settings), "features": features_config()})
    with open(os.path.join(outputs["infra_blessing"], INFRA_BLESSING_FILE), encoding="utf-8") as handle:
        blessing = json.load(handle)
    with open(outputs["serving_report"], encoding="utf-8") as handle:
        return figures, blessing, handle.read()


def _by_name(blessing: dict) -> dict[str, dict]:
    return {check["check"]: check for check in blessing["checks"]}


@pytest.fixture(scope="module")
def checked(trained_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving-check")
    evaluation = _sample(trained_model.model, trained_model.pipeline.examples, root / "evaluation")
    return _check(trained_model.model, evaluation, root / "InfraValidator")


def test_a_trained_model_serves_with_every_check_recorded(checked, trained_model):
    from components.common.model_fingerprint import model_fingerprint

    figures, blessing, report = checked
    assert figures["serves"] is True and figures["serving_problems"] == ""
    assert blessing["serves"] is True and blessing["blocking"] == []
    assert blessing["model_fingerprint"] == model_fingerprint(trained_model.model)
    checks = _by_name(blessing)
    assert checks["outputs: names, dtypes, shapes"]["value"] == "scores float32 [100, 1]"
    assert checks["same scores as the Evaluator"]["value"].startswith("largest difference 0 over 100 examples")
    # 4 numeric + 3 categorical features, each sent missing; the 3 categorical ones with an unseen value
    assert checks["answers with a feature missing"]["value"] == "7 of 7 features"
    assert checks["answers a category train never had"]["value"] == "3 of 3 features"
    assert all(check["status"] in ("pass", "recorded") for check in blessing["checks"])
    for batch in ("1", "100"):
        latency = blessing["latency"][batch]
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert figures["latency_1_p50_ms"] > 0 and figures["latency_100_p99_ms"] > 0
    assert figures["serving_check"].startswith("passed (") and "loaded in" in figures["serving_check"]
    assert "**Serves**" in report and "| same scores as the Evaluator |" in report


def test_a_latency_bound_the_model_misses_blocks_it_naming_the_bound(trained_model, tmp_path):
    evaluation = _sample(trained_model.model, trained_model.pipeline.examples, tmp_path / "evaluation")
    figures, blessing, _ = _check(trained_model.model, evaluation, tmp_path / "InfraValidator",
                                  max_latency_ms=0.001, max_batch_latency_ms=60000)
    assert figures["serves"] is False
    failed = {check["check"]: check for check in blessing["blocking"]}
    assert list(failed) == ["latency, 1 example per request"]
    assert failed["latency, 1 example per request"]["bound"] == "p99 <= 0.001 ms"
    assert _by_name(blessing)["latency, 100 examples per request"]["status"] == "pass"
    assert "latency, 1 example per request" in figures["serving_problems"]
    assert "p99 <= 0.001 ms" in figures["serving_problems"]


def test_scores_that_differ_from_the_evaluators_are_skew(trained_model, tmp_path):
    from pipeline.specs import SERVING_SAMPLE_FILE

    evaluation = _sample(trained_model.model, trained_model.pipeline.examples, tmp_path / "evaluation")
    path = os.path.join(evaluation, SERVING_SAMPLE_FILE)
    with open(path, encoding="utf-8") as handle:
        sample = json.load(handle)
    sample["outputs"]["scores"][3][0] += 0.01   # the Evaluator saw another score for the 4th example
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(sample, handle)
    figures, blessing, _ = _check(trained_model.model, evaluation, tmp_path / "InfraValidator")
    assert figures["serves"] is False
    skew = _by_name(blessing)["same scores as the Evaluator"]
    assert skew["status"] == "FAIL" and skew["detail"] == "1 values differ"
    assert skew["value"].startswith("largest difference 0.01 ")


def _python_function_model(folder) -> tuple[str, object]:
    """A model whose serving path calls a Python function (``tf.py_function``): it answers in the process
    that saved it, but a model server has no such function."""
    import numpy as np
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            scores = tf.py_function(lambda batch: np.full((len(batch), 1), 0.5, np.float32), [examples], tf.float32)
            return {"scores": tf.reshape(scores, [-1, 1])}

    model = Model()
    path = str(folder)
    tf.saved_model.save(model, path, signatures={"serving_default": model.serve})
    return path, model


def test_a_model_that_answers_only_in_the_pipelines_process_does_not_serve(trained_model, tmp_path):
    model_dir, model = _python_function_model(tmp_path / "model")
    # loaded again in this process, whose Python function the model finds (while ``model`` lives)
    evaluation = _sample(model_dir, trained_model.pipeline.examples, tmp_path / "evaluation")
    assert model is not None
    figures, blessing, report = _check(model_dir, evaluation, tmp_path / "InfraValidator")
    assert figures["serves"] is False
    failed = _by_name({"checks": blessing["blocking"]})
    answer = failed["answers 100 examples of the eval split"]
    assert answer["detail"] == ("InvalidArgumentError at node EagerPyFunc: ValueError: Could not find callback with "
                               "key=pyfunc_0 in the registry.")
    assert "**Does not serve**" in report


def test_a_model_that_does_not_load_fails_the_first_check(trained_model, tmp_path):
    import shutil

    evaluation = _sample(trained_model.model, trained_model.pipeline.examples, tmp_path / "evaluation")
    broken = tmp_path / "broken"
    shutil.copytree(trained_model.model, broken)
    shutil.rmtree(broken / "variables")
    figures, blessing, _ = _check(str(broken), evaluation, tmp_path / "InfraValidator")
    assert figures["serves"] is False
    [check] = blessing["checks"]
    assert check["check"] == "loads in a clean process" and check["status"] == "FAIL"
    assert check["value"] == "did not load" and "variables" in check["detail"].lower()


def test_a_model_that_does_not_load_in_time_is_stopped(trained_model, tmp_path):
    evaluation = _sample(trained_model.model, trained_model.pipeline.examples, tmp_path / "evaluation")
    figures, blessing, _ = _check(trained_model.model, evaluation, tmp_path / "InfraValidator",
                                  load_timeout_seconds=0.2)
    assert figures["serves"] is False
    [check] = blessing["checks"]
    assert check["detail"].startswith("no answer within 0.2 s (infra_validator.load_timeout_seconds); it was still ")


def test_an_evaluation_without_a_serving_sample_is_a_clear_error(trained_model, tmp_path):
    from components.infra_validator.core import execute
    from pipeline.config import InfraValidatorConfig
    from pipeline.errors import DataError

    (tmp_path / "evaluation").mkdir()
    outputs = make_outputs(str(tmp_path / "InfraValidator"), ("infra_blessing",), {"serving_report": "s.md"})
    with pytest.raises(DataError, match="has no serving_sample.json .*rerun the Evaluator"):
        execute({"model": trained_model.model, "evaluation": str(tmp_path / "evaluation")}, outputs,
                {"infra_validator": InfraValidatorConfig(), "features": features_config()})
