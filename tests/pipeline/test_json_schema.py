"""The committed JSON Schema of pipeline YAML files is current and validates real pipeline files."""

from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest
import yaml

from pipeline.json_schema import SCHEMA_ID, render
from tests.conftest import REPO, pipeline_yaml

SCHEMA_FILE = os.path.join(REPO, "schemas", "pipeline.schema.json")
QUICKSTART = os.path.join(REPO, "examples", "quickstart", "pipeline.yaml")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    with open(SCHEMA_FILE, encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def quickstart() -> dict:
    with open(QUICKSTART, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def errors(validator, document) -> list[str]:
    return [f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_committed_schema_matches_the_config_model():
    with open(SCHEMA_FILE, encoding="utf-8") as handle:
        committed = handle.read()

    assert committed == render(), (
        "schemas/pipeline.schema.json is out of date with pipeline/config.py; "
        "regenerate it with `make json-schema` and commit the result"
    )


def test_schema_identifies_itself_and_forbids_unknown_top_level_keys():
    schema = json.loads(render())

    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"pipeline", "data", "features"}


def test_quickstart_pipeline_validates(validator, quickstart):
    assert errors(validator, quickstart) == []


def test_quickstart_names_the_committed_schema():
    with open(QUICKSTART, encoding="utf-8") as handle:
        first = handle.readline()

    assert first.startswith("# yaml-language-server: $schema=")
    target = first.split("$schema=", 1)[1].strip()
    assert os.path.samefile(os.path.join(os.path.dirname(QUICKSTART), target), SCHEMA_FILE)


def test_test_pipeline_with_extra_sections_validates(validator):
    text = pipeline_yaml("data.csv", extra="""\
        validation:
          schema: schema.pbtxt
          on_anomaly: warn
          skew:
            numeric_jsd: null
        beam:
          pipeline_options: [--runner=DirectRunner]
        """)

    assert errors(validator, yaml.safe_load(text)) == []


@pytest.mark.parametrize("where", [(), ("pipeline",), ("data", "split"), ("validation", "drift")])
def test_unknown_key_fails(validator, quickstart, where):
    document = copy.deepcopy(quickstart)
    section = document
    for key in where:
        section = section[key]
    section["rooot"] = "x"

    found = errors(validator, document)

    assert len(found) == 1, found
    assert "rooot" in found[0]


@pytest.mark.parametrize("where, value", [
    (("data", "split", "train"), "seventy"),
    (("features", "numeric"), "age"),
    (("validation", "on_anomaly"), "explode"),
    (("data", "batch_rows"), "65536"),
    (("pipeline", "name"), "has spaces"),
])
def test_wrong_type_or_value_fails(validator, quickstart, where, value):
    document = copy.deepcopy(quickstart)
    section = document
    for key in where[:-1]:
        section = section[key]
    section[where[-1]] = value

    found = errors(validator, document)

    assert found, f"{'.'.join(where)} = {value!r} was accepted"
    assert all(message.startswith(".".join(where)) for message in found), found


def test_no_regression_on_a_metric_that_cannot_regress_fails(validator, quickstart):
    # editors flag it as the loader does: example_count has no better or worse
    gate = next(g for g in quickstart["evaluator"]["gates"] if "no_regression" in g)
    gate["no_regression"] = "example_count"

    found = errors(validator, quickstart)

    assert found and all("no_regression" in message for message in found), found
    gate["no_regression"] = "calibration"
    assert errors(validator, quickstart) == []


def test_missing_required_section_fails(validator, quickstart):
    del quickstart["features"]

    found = errors(validator, quickstart)

    assert len(found) == 1 and "'features' is a required property" in found[0]
