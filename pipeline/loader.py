"""Loads a pipeline YAML file into a ``PipelineConfig``, reporting every error at once.

Each error names its YAML path (``data.split.train``) and the expected form
(``expected a number between 0 and 100, got "seventy"``). Checks between sections (a split key
that is the label, a slice on an undeclared feature, ...) are reported too when other fields
failed: they run on every section that validated on its own.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.config import (GATE_TAGS, LOCATED_ERROR, SECTION_MODELS, Expected, PipelineConfig,
                             cross_section_issues, cross_section_warnings)
from pipeline.errors import ConfigError, ConfigIssue

_TOP_LEVEL = ", ".join(PipelineConfig.model_fields)


# Bounds of what a pipeline file may expand to. A real one is a few hundred values, nested under ten levels;
# aliases (*name) can make a 2 KB file stand for billions of values ("billion laughs"), and thousands of
# nested brackets exhaust Python's recursion in the YAML composer.
MAX_DEPTH = 64
MAX_VALUES = 100_000


class YamlTooLarge(yaml.YAMLError):
    """The YAML nests deeper, or its aliases expand to more values, than a pipeline file may."""

    def __init__(self, mark: Any, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys instead of silently keeping the last one, and nesting
    deeper than ``MAX_DEPTH`` (checked while composing, before Python's recursion limit is near)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self.anchor_names: dict[int, str] = {}   # id(node) -> its anchor, for messages

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlTooLarge(event.start_mark, f"values nested deeper than {MAX_DEPTH} levels; expected a "
                                                     "pipeline file (a few levels deep)")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if not isinstance(event, yaml.AliasEvent) and event.anchor is not None:
            self.anchor_names[id(node)] = event.anchor
        return node


def _check_expansion(root: yaml.Node, anchor_names: dict[int, str]) -> None:
    """Raises ``YamlTooLarge`` when ``root``, with every alias expanded, holds more than
    ``MAX_VALUES`` values, nests deeper than ``MAX_DEPTH`` or contains itself. Each node is measured
    once (an alias is the anchored node itself), so this is linear in the file's size."""
    measured: dict[int, tuple[int, int]] = {}   # id(node) -> (values with aliases expanded, levels below it)
    nodes: dict[int, yaml.Node] = {}
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            name = anchor_names.get(key, "?")
            raise YamlTooLarge(node.start_mark, f"the alias *{name} is used inside the value it names (&{name}), "
                                                "which makes it infinite; expected a value without itself in it")
        if key not in measured:
            if depth > MAX_DEPTH:
                raise YamlTooLarge(node.start_mark, f"values nested deeper than {MAX_DEPTH} levels once its "
                                                    "aliases are expanded; expected a pipeline file (a few levels deep)")
            open_nodes.add(key)
            children: list = []
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            values, levels = 1, 0
            for child in children:
                child_values, child_levels = measure(child, depth + 1)
                values, levels = values + child_values, max(levels, child_levels + 1)
            open_nodes.discard(key)
            measured[key], nodes[key] = (values, levels), node
        values, levels = measured[key]
        if depth + levels > MAX_DEPTH:
            raise YamlTooLarge(node.start_mark, f"values nested deeper than {MAX_DEPTH} levels once its aliases are "
                                                "expanded; expected a pipeline file (a few levels deep)")
        return values, levels

    total, _ = measure(root, 1)
    if total > MAX_VALUES:
        anchored = [(measured[key][0], key) for key in anchor_names if key in measured]
        values, key = max(anchored) if anchored else (total, id(root))
        node = nodes.get(key, root)
        name = anchor_names.get(key)
        culprit = f"&{name} expands to {values:,} values" if name else f"{values:,} values"
        raise YamlTooLarge(node.start_mark, f"with its aliases expanded the file holds {total:,} values ({culprit}); "
                                            f"expected at most {MAX_VALUES:,}: a pipeline file of ordinary size")


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            first = seen[key].start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first defined on line {first})", key_node.start_mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
# YAML 1.2 booleans: only true/false. YAML 1.1 also reads yes/no/on/off as booleans, which would turn
# `positive: yes` into True and silently stop matching a label column holding "yes"/"no".
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_config(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Reads and validates a pipeline YAML file.

    Args:
        path: The pipeline YAML file. Relative paths inside it resolve against its folder.
        overrides: Dotted YAML path -> value (``{"trainer.epochs": 5}``), applied before validation.

    Returns:
        The validated, immutable ``PipelineConfig``.

    Raises:
        ConfigError: The file is missing, unreadable, not YAML, or does not match the model; the
            error lists every problem found.
    """
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(file, [ConfigIssue("", "file not found; expected a pipeline YAML file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, [ConfigIssue("", f"cannot read the file: {exc}")]) from None
    return parse_config(text, file, overrides)


def read_yaml(text: str) -> Any:
    """``text`` read as pipeline files are: YAML 1.2 booleans, no duplicate keys, nesting and alias
    expansion bounded (``MAX_DEPTH``, ``MAX_VALUES``).

    Raises:
        YamlTooLarge: The bounds are exceeded (its ``mark`` says where).
        yaml.YAMLError: The text is not YAML.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, loader.anchor_names)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def parse_config(text: str, file: str, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Validates pipeline YAML ``text`` that came from ``file`` (used for messages and relative paths),
    with ``overrides`` (dotted YAML path -> value) applied first."""
    try:
        data = read_yaml(text)
    except YamlTooLarge as exc:
        where = f"line {exc.mark.line + 1}, column {exc.mark.column + 1}: " if exc.mark else ""
        raise ConfigError(file, [ConfigIssue("", f"{where}{exc.message}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or str(exc)
        raise ConfigError(file, [ConfigIssue("", f"{where}malformed YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, [ConfigIssue("", f"malformed YAML: {exc}")]) from None
    if data is None:
        raise ConfigError(file, [ConfigIssue("", f"the file is empty; expected a mapping with the keys {_TOP_LEVEL}")])
    if not isinstance(data, dict):
        raise ConfigError(
            file,
            [ConfigIssue("", f"expected a mapping with the keys {_TOP_LEVEL}, got {_describe(data)}")],
        )
    for dotted, value in (overrides or {}).items():
        _set_path(data, dotted, value, file)
    base_dir = os.path.dirname(os.path.abspath(file))
    try:
        return PipelineConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        issues = [_issue(error) for error in exc.errors()]
        issues += _cross_section_issues(data, {"base_dir": base_dir})
        # a value matching no branch of a union yields one error per branch, and the cross-section
        # checks ran already when every section validated: report each issue once
        raise ConfigError(file, list(dict.fromkeys(issues))) from None


def config_warnings(config: PipelineConfig) -> list[ConfigIssue]:
    """What in a valid ``config`` is probably not meant (a fairness gate on a feature not declared
    sensitive, ...), each with its YAML path; the CLI prints them as ``warning: FILE: PATH: ...``."""
    sections = {name: config.section(name) for name in PipelineConfig.model_fields}
    return [ConfigIssue(_format_loc(loc), message) for loc, message in cross_section_warnings(sections)]


def _cross_section_issues(data: dict, context: dict) -> list[ConfigIssue]:
    """The checks between sections, on the sections that validate on their own (a section left
    out takes its default; a missing required one, or one with errors, is left out)."""
    sections = {}
    for name, field in PipelineConfig.model_fields.items():
        if name not in data:
            if not field.is_required():
                sections[name] = field.get_default(call_default_factory=True)
            continue
        try:
            sections[name] = SECTION_MODELS[name].model_validate(data[name], context=context)
        except ValidationError:
            continue
    return [ConfigIssue(_format_loc(loc), message) for loc, message in cross_section_issues(sections)]


def _set_path(data: dict, dotted: str, value: Any, file: str) -> None:
    """Sets ``data[a][b][c] = value`` for ``dotted`` = ``a.b.c``, creating mappings on the way."""
    keys = dotted.split(".")
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            where = ".".join(keys[:depth + 1])
            raise ConfigError(file, [ConfigIssue(dotted, f"cannot set it: {where} is {_describe(child)}, not a mapping")])
        node = child
    node[keys[-1]] = value


def _issue(error: dict) -> ConfigIssue:
    raw = error["loc"]
    if error["type"] == LOCATED_ERROR:  # raised at its YAML path (dict keys included): nothing to strip
        return ConfigIssue(_format_loc(raw), error["msg"])
    loc = tuple(part for i, part in enumerate(raw) if not _is_union_branch(part)
                and not (i and isinstance(raw[i - 1], int) and part in GATE_TAGS))
    path = _format_loc(loc)
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        choices = _field_names(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return ConfigIssue(path, f"unknown key{hint}; expected one of: {', '.join(choices)}")
    expected = _expected_text(loc)
    if kind == "missing":
        return ConfigIssue(path, f"required; expected {expected}" if expected else "required")
    if kind in ("value_error", "assertion_error") and error.get("ctx", {}).get("error") is not None:
        return ConfigIssue(path, str(error["ctx"]["error"]))
    if expected:
        return ConfigIssue(path, f"expected {expected}, got {_describe(given)}")
    return ConfigIssue(path, f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_describe(given)}")


def _is_union_branch(part: Any) -> bool:
    # pydantic adds the union member (e.g. 'str', 'function-after[...]') to the location
    return isinstance(part, str) and (part in ("str", "int", "bool", "float") or "[" in part)


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _walk(loc: tuple) -> tuple[Any, Any]:
    """Follows ``loc`` through the model; returns (model class or None, field info of the last step)."""
    model: Any = PipelineConfig
    info = None
    names = [part for part in loc if not isinstance(part, int)]
    for step, part in enumerate(names):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None, None
        info = _field_of(model, part)
        if info is None:
            return None, None
        model = _model_in(info.annotation, names[step + 1] if step + 1 < len(names) else None)
    return model, info


def _field_of(model: type[BaseModel], name: Any) -> Any:
    fields = model.model_fields
    return fields.get(name) or {f.alias: f for f in fields.values() if f.alias}.get(name)


def _model_in(annotation: Any, field: Any = None) -> Any:
    """The model ``annotation`` holds (of a union of models, e.g. the gates: the first with ``field``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation if field is None or _field_of(annotation, field) is not None else None
    for arg in typing.get_args(annotation):
        found = _model_in(arg, field)
        if found is not None:
            return found
    return None


def _field_names(loc: tuple) -> list[str]:
    model, _ = _walk(loc)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _expected_text(loc: tuple) -> str | None:
    model, info = _walk(loc)
    if info is None:
        return None
    if typing.get_origin(info.annotation) is list and not (loc and isinstance(loc[-1], int)):
        element = _expected_in(typing.get_args(info.annotation)[0])
        return f"a list of {element}s" if element else "a list"
    if loc and isinstance(loc[-1], int):
        # an element of a list field: look for Expected metadata on the element type
        args = typing.get_args(info.annotation)
        return _expected_in(args[0]) if args else None
    for meta in info.metadata:
        if isinstance(meta, Expected):
            return meta.text
    found = _expected_in(info.annotation)
    if found:
        return found
    if model is not None:
        return f"a mapping with the keys {', '.join(f.alias or n for n, f in model.model_fields.items())}"
    if typing.get_origin(info.annotation) is list:
        return "a list"
    literal = _literal_values(info.annotation)
    if literal:
        return "one of " + ", ".join(repr(v) for v in literal)
    return None


def _expected_in(annotation: Any) -> str | None:
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, Expected):
            return meta.text
    for arg in typing.get_args(annotation):
        found = _expected_in(arg)
        if found:
            return found
    return None


def _literal_values(annotation: Any) -> tuple:
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        found = _literal_values(arg)
        if found:
            return found
    return ()


def _describe(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f'"{shown}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)
