"""Announcer (test only): runs only when RowCounter found enough rows."""

from __future__ import annotations

from typing import Callable, Mapping

from pipeline.config import Section


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    with open(inputs["report"], encoding="utf-8") as handle:
        count = handle.read().split()[0]
    with open(outputs["announcement"], "w", encoding="utf-8") as handle:
        handle.write(f"{count} rows: enough to train on\n")
    return {"announced": True}
