"""The search space and KerasTuner oracles, without training: seeded, in range, grid exhaustive."""

from __future__ import annotations

import pytest

from components.tuner.search import _values, make_oracle
from pipeline.config import TunerConfig

pytestmark = pytest.mark.slow  # imports keras_tuner (and with it Keras 3 and TensorFlow)

SPACE = {"learning_rate": {"min": 0.0001, "max": 0.1, "sampling": "log"},
         "hidden_units": {"choices": [[16], [32, 16]]}, "batch_size": {"min": 32, "max": 256}}


def _proposals(tuner: TunerConfig, tmp_path, count: int) -> list[dict]:
    import keras_tuner as kt

    oracle = make_oracle(tuner, str(tmp_path))
    proposals = []
    for _ in range(count):
        trial = oracle.create_trial("test")
        if trial.status == kt.engine.trial.TrialStatus.STOPPED:
            break
        proposals.append(_values(trial.hyperparameters, tuner))
        oracle.update_trial(trial.trial_id, {tuner.objective or "val_auc": 0.5})
        trial.status = kt.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return proposals


def test_the_same_seed_proposes_the_same_trials(tmp_path):
    tuner = TunerConfig.model_validate({"enabled": True, "max_trials": 3, "seed": 7, "search_space": SPACE})
    first = _proposals(tuner, tmp_path / "a", 3)
    assert first == _proposals(tuner, tmp_path / "b", 3)
    other = TunerConfig.model_validate({"enabled": True, "max_trials": 3, "seed": 8, "search_space": SPACE})
    assert _proposals(other, tmp_path / "c", 3) != first
    for values in first:
        assert 0.0001 <= values["learning_rate"] <= 0.1
        assert values["hidden_units"] in ([16], [32, 16])  # lists come back as lists, not JSON text
        assert isinstance(values["batch_size"], int) and 32 <= values["batch_size"] <= 256


def test_grid_search_tries_every_combination_of_choices_once(tmp_path):
    tuner = TunerConfig.model_validate({"enabled": True, "algorithm": "grid", "max_trials": 50, "search_space": {
        "learning_rate": {"choices": [0.01, 0.1]}, "hidden_units": {"choices": [[8], [16]]}}})
    proposals = _proposals(tuner, tmp_path, 50)
    assert sorted((p["learning_rate"], tuple(p["hidden_units"])) for p in proposals) == [
        (0.01, (8,)), (0.01, (16,)), (0.1, (8,)), (0.1, (16,))]


@pytest.mark.parametrize("algorithm", ["bayesian", "hyperband"])
def test_bayesian_and_hyperband_oracles_propose_values_in_the_space(tmp_path, algorithm):
    tuner = TunerConfig.model_validate({"enabled": True, "algorithm": algorithm, "max_trials": 2, "epochs": 3,
                                        "search_space": SPACE})
    proposals = _proposals(tuner, tmp_path, 2)
    assert len(proposals) == 2
    assert all(0.0001 <= p["learning_rate"] <= 0.1 for p in proposals)
