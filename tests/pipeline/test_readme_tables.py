"""The README's tables of tasks and models list exactly what the config accepts, with the defaults it
applies (the metric table has its own test, beside the metric table)."""

from __future__ import annotations

import os
import re
import typing

from pipeline.config import MODELS, TASK_OBJECTIVES, TASKS, FeaturesConfig, TrainerConfig
from tests.conftest import REPO


def _table_after(readme: str, header: str) -> list[list[str]]:
    start = readme.index(header)
    rows = []
    for line in readme[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _readme() -> str:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def test_the_task_table_lists_each_task_with_its_objectives():
    rows = _table_after(_readme(), "| task | label |")
    assert [row[0].strip("`") for row in rows] == list(TASKS)
    assert list(typing.get_args(FeaturesConfig.model_fields["task"].annotation)) == list(TASKS)
    for row in rows:
        objectives = TASK_OBJECTIVES[row[0].strip("`")]
        default, listed = row[3].split(";")
        assert default.strip().strip("`") == objectives[0]
        assert re.findall(r"`(val_\w+)`", listed) == list(objectives)


def test_the_model_table_lists_each_model_with_its_default_depth():
    rows = _table_after(_readme(), "| model | library |")
    assert [row[0].split("`")[1] for row in rows] == list(MODELS)
    for row in rows:
        model = row[0].split("`")[1]
        hyperparameters = TrainerConfig(model=model).hyperparameters()
        for name in hyperparameters:
            assert f"`{name}`" in row[2] or (row[2].startswith("the same") and model == "dnn"), (model, name)
        if "max_depth" in hyperparameters:
            assert f"`max_depth` ({hyperparameters['max_depth']})" in row[2]
