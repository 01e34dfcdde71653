"""The JSON Schema of pipeline YAML files, generated from the config model.

``schemas/pipeline.schema.json`` is this function's output, committed so editors can validate and
autocomplete pipeline files (e.g. with ``# yaml-language-server: $schema=...``). A test fails when
the committed file falls behind the model; regenerate with ``sluiceway config-schema -o
schemas/pipeline.schema.json``.
"""

from __future__ import annotations

import json

from pipeline.config import PipelineConfig

SCHEMA_ID = "https://sluiceway.dev/schemas/pipeline.schema.json"


def pipeline_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a pipeline YAML file."""
    schema = PipelineConfig.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "sluiceway pipeline", **{k: v for k, v in schema.items() if k != "title"}}


def render() -> str:
    """The schema as the text committed under ``schemas/``."""
    return json.dumps(pipeline_json_schema(), indent=2, sort_keys=True) + "\n"
