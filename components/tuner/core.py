"""Tuner: searches the Trainer's hyperparameters with KerasTuner, or passes the YAML's on.

With ``tuner.enabled: false`` it writes the ``trainer`` section's fixed hyperparameters, so the
Trainer always reads them from one place and the lineage records what every model was trained with.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

from pipeline.config import Section, TrainerConfig, TunerConfig
from pipeline.specs import HYPERPARAMETERS_FILE
from pipeline.table import markdown_table


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs the Tuner as a pipeline step. Returns its figures."""
    tuner: TunerConfig = config["tuner"]
    trainer: TrainerConfig = config["trainer"]
    fixed = trainer.hyperparameters()
    if not tuner.enabled:
        write_hyperparameters(outputs["best_hyperparameters"], fixed, source="trainer section (tuning off)")
        _write_trials(outputs["trials"], [], tuner)
        return {"tuned": False, "trials": 0}
    from components.tuner.search import search

    trials, best = search(inputs["transformed_examples"], inputs["transform_graph"], tuner, trainer, progress)
    write_hyperparameters(outputs["best_hyperparameters"], {**fixed, **best["hyperparameters"]},
                          source=f"{tuner.algorithm} search, trial {best['trial']}")
    _write_trials(outputs["trials"], trials, tuner)
    figures: dict[str, Any] = {"tuned": True, "trials": len(trials), "best_trial": best["trial"],
                               f"best_{best['objective']}": round(best["score"], 4)}
    if tuner.cv_folds:
        figures["best_spread"] = round(best["spread"], 4)
    return figures


def write_hyperparameters(folder: str, values: dict[str, Any], source: str) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, HYPERPARAMETERS_FILE), "w", encoding="utf-8") as handle:
        json.dump({"values": values, "source": source}, handle, indent=2, sort_keys=True)


def _write_trials(path: str, trials: list[dict], tuner: TunerConfig) -> None:
    lines = ["# Tuner trials", ""]
    if not trials:
        lines.append("Tuning is off (tuner.enabled: false): the Trainer uses the trainer section's values.")
    else:
        names = sorted({name for t in trials for name in t["hyperparameters"]})
        spread = ["spread (sd over folds)"] if tuner.cv_folds else []
        rows = [[t["trial"], *[t["hyperparameters"].get(n, "") for n in names], f"{t['score']:.4f}",
                 *([f"{t['spread']:.4f}"] if tuner.cv_folds else []), t["status"]] for t in trials]
        objective = trials[0]["objective"]
        lines += [f"Algorithm {tuner.algorithm}, objective {objective}"
                  + (f", {tuner.cv_folds}-fold cross-validation over train" if tuner.cv_folds else "") + ".", "",
                  markdown_table(["trial", *names, objective, *spread, "status"], rows)]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
