"""The Tuner for every task and model family: a multiclass Keras search and a regression tree search,
each k-fold cross-validated, scored by the task's default objective."""

from __future__ import annotations

import os

import pytest

from tests.components.conftest import (CATEGORICAL, NUMERIC, make_outputs, markdown_rows, read_json, run_data_half,
                                      trainer_config)

pytestmark = pytest.mark.slow

LABELS = {"multiclass": "risk_tier", "regression": "interest_rate"}


def _transformed(task: str, root) -> dict:
    from pipeline.config import BeamConfig, DataConfig, EvaluatorConfig, FeaturesConfig, TransformConfig, ValidationConfig
    from pipeline.datagen import generate

    source = str(root / "data.csv.gz")
    generate(source, rows=700, seed=5, task=task)
    config = {"data": DataConfig.model_validate({"source": source, "split": {"key": "applicant_id"}}),
              "features": FeaturesConfig(label=LABELS[task], task=task, numeric=NUMERIC, categorical=CATEGORICAL),
              "beam": BeamConfig(), "validation": ValidationConfig(), "transform": TransformConfig(),
              "evaluator": EvaluatorConfig()}
    _, out = run_data_half(root, config)
    return {"transformed_examples": out["transformed_examples"], "transform_graph": out["transform_graph"]}


def _search(task: str, root, tuner: dict, trainer) -> tuple[dict, dict, list[dict], list[str]]:
    from components.tuner.core import execute
    from pipeline.config import TunerConfig

    outputs = make_outputs(str(root / "Tuner"), ("best_hyperparameters",), {"trials": "trials.md"})
    lines: list[str] = []
    figures = execute(_transformed(task, root), outputs, {"tuner": TunerConfig.model_validate(tuner), "trainer": trainer},
                      lines.append)
    best = read_json(os.path.join(outputs["best_hyperparameters"], "hyperparameters.json"))
    return figures, best, markdown_rows(open(outputs["trials"], encoding="utf-8").read()), lines


def test_a_multiclass_search_scores_folds_by_validation_loss(tmp_path):
    figures, best, table, lines = _search("multiclass", tmp_path, {
        "enabled": True, "max_trials": 2, "epochs": 2, "cv_folds": 2, "seed": 3,
        "search_space": {"learning_rate": {"choices": [0.001, 0.03]}}}, trainer_config(epochs=2))
    assert figures["trials"] == 2 and [row["status"] for row in table] == ["completed", "completed"]
    losses = {int(row["trial"]): float(row["val_loss"]) for row in table}
    assert figures["best_trial"] == min(losses, key=losses.get)  # a loss: the lowest wins
    assert figures["best_val_loss"] == pytest.approx(min(losses.values()), abs=1e-4)
    assert all("mean of 2 folds" in line for line in lines if line.startswith("trial "))
    assert best["values"]["learning_rate"] == float(table[figures["best_trial"] - 1]["learning_rate"])


def test_a_regression_tree_grid_search_picks_the_lowest_rmse(tmp_path):
    trainer = trainer_config(model="gradient_boosted_trees", num_trees=20, max_depth=3)
    figures, best, table, _ = _search("regression", tmp_path, {
        "enabled": True, "algorithm": "grid", "max_trials": 4, "cv_folds": 2,
        "search_space": {"num_trees": {"choices": [2, 20]}, "shrinkage": {"choices": [0.3]}}}, trainer)
    assert sorted(int(row["num_trees"]) for row in table) == [2, 20]
    rmse = {int(row["num_trees"]): float(row["val_rmse"]) for row in table}
    assert rmse[20] < rmse[2]  # 2 boosted trees of depth 3 cannot fit the rate as 20 do
    assert best["values"] == {"num_trees": 20, "shrinkage": 0.3, "max_depth": 3, "min_examples": 5}
    assert figures["best_val_rmse"] == pytest.approx(rmse[20], abs=1e-4)
