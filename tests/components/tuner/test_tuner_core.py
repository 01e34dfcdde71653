"""The Tuner's core: tuning off passes the trainer section on; tuning on searches a tiny space on a
few hundred transformed rows; with cv_folds a trial scores the mean over folds of train."""

from __future__ import annotations

import os
import statistics

import pytest

from pipeline.config import KERAS_HYPERPARAMETERS as HYPERPARAMETERS, TunerConfig
from pipeline.specs import HYPERPARAMETERS_FILE
from tests.components.conftest import make_outputs, markdown_rows, read_json, trainer_config

LEARNING_RATE = {"min": 0.002, "max": 0.03, "sampling": "log"}
HIDDEN_UNITS = [[8], [16, 8]]
SPACE = {"learning_rate": LEARNING_RATE, "hidden_units": {"choices": HIDDEN_UNITS}}


def _run(folder, tuner: TunerConfig, transformed: str, graph: str) -> tuple[dict, dict, str, list[str]]:
    from components.tuner.core import execute

    outputs = make_outputs(str(folder), ("best_hyperparameters",), {"trials": "trials.md"})
    lines: list[str] = []
    figures = execute({"transformed_examples": transformed, "transform_graph": graph}, outputs,
                      {"tuner": tuner, "trainer": trainer_config(epochs=2)}, lines.append)
    best = read_json(os.path.join(outputs["best_hyperparameters"], HYPERPARAMETERS_FILE))
    with open(outputs["trials"], encoding="utf-8") as handle:
        trials = handle.read()
    return figures, best, trials, lines


def test_tuning_off_passes_the_trainer_sections_hyperparameters_on(tmp_path):
    # nothing is read (the inputs do not even exist) and nothing is trained
    missing = str(tmp_path / "no-such-artifact")
    figures, best, trials, _ = _run(tmp_path / "out", TunerConfig(enabled=False, search_space=SPACE), missing, missing)
    section = trainer_config(epochs=2)
    assert best["values"] == {name: getattr(section, name) for name in HYPERPARAMETERS}
    assert "tuning off" in best["source"]
    assert figures == {"tuned": False, "trials": 0}
    assert "Tuning is off" in trials and not markdown_rows(trials)


@pytest.mark.slow
def test_a_search_of_two_trials_picks_the_best_values_inside_the_space(tiny_pipeline, tmp_path):
    tuner = TunerConfig.model_validate({"enabled": True, "algorithm": "random", "max_trials": 2, "epochs": 2,
                                        "seed": 3, "search_space": SPACE})
    figures, best, trials, lines = _run(tmp_path, tuner, tiny_pipeline.transformed_examples,
                                        tiny_pipeline.transform_graph)
    table = markdown_rows(trials)
    assert [row["trial"] for row in table] == ["1", "2"] and {row["status"] for row in table} == {"completed"}
    assert sum("trial " in line and "val_auc=" in line for line in lines) == 2
    proposed = [(float(row["learning_rate"]), row["hidden_units"]) for row in table]
    assert proposed[0] != proposed[1]
    for learning_rate, hidden_units in proposed:
        assert LEARNING_RATE["min"] <= learning_rate <= LEARNING_RATE["max"]
        assert hidden_units in [str(h) for h in HIDDEN_UNITS]
    scores = {int(row["trial"]): float(row["val_auc"]) for row in table}
    assert figures["tuned"] is True and figures["trials"] == 2
    assert scores[figures["best_trial"]] == max(scores.values())
    assert figures["best_val_auc"] == pytest.approx(max(scores.values()), abs=1e-4)
    values = best["values"]
    winner = table[figures["best_trial"] - 1]
    assert values["learning_rate"] == pytest.approx(float(winner["learning_rate"]))
    assert str(values["hidden_units"]) == winner["hidden_units"]
    section = trainer_config(epochs=2)
    assert {k: v for k, v in values.items() if k not in SPACE} == {
        name: getattr(section, name) for name in HYPERPARAMETERS if name not in SPACE}
    assert best["source"] == f"random search, trial {figures['best_trial']}"


@pytest.mark.slow
def test_with_cv_folds_a_trial_scores_the_mean_over_folds_of_train(tiny_pipeline, tmp_path, monkeypatch):
    import numpy as np

    from components.common import keras_model

    fits: list[dict] = []
    fit = keras_model.fit

    def recording_fit(model, train, validation, *args, **kwargs):
        history = fit(model, train, validation, *args, **kwargs)
        fits.append({"train": sum(int(np.size(y)) for _, y in train),
                     "validation": sum(int(np.size(y)) for _, y in validation), "best": max(history["val_auc"])})
        return history

    monkeypatch.setattr(keras_model, "fit", recording_fit)
    tuner = TunerConfig.model_validate({"enabled": True, "max_trials": 1, "epochs": 2, "cv_folds": 2,
                                        "search_space": {"learning_rate": LEARNING_RATE}})
    figures, _, trials, lines = _run(tmp_path, tuner, tiny_pipeline.transformed_examples,
                                     tiny_pipeline.transform_graph)
    rows = tiny_pipeline.figures["ExampleGen"]["rows_train"]
    assert len(fits) == 2
    # each fold validates on its own part of train and trains on the rest
    assert all(f["validation"] > 0 for f in fits) and sum(f["validation"] for f in fits) == rows
    assert all(f["train"] + f["validation"] == rows for f in fits)
    folds = [f["best"] for f in fits]
    assert figures["best_val_auc"] == pytest.approx(statistics.fmean(folds), abs=1e-4)
    assert figures["best_spread"] == pytest.approx(statistics.pstdev(folds), abs=1e-4)
    [row] = markdown_rows(trials)
    assert float(row["val_auc"]) == pytest.approx(statistics.fmean(folds), abs=1e-4)
    assert float(row["spread (sd over folds)"]) == pytest.approx(statistics.pstdev(folds), abs=1e-4)
    assert "2-fold cross-validation over train" in trials
    assert any("mean of 2 folds" in line for line in lines)
