"""Which files ExampleGen reads: a module of its own, without pyarrow or numpy, so the local runner
can list them for the cache key (every run, cached or not) without importing the reader (a URL
source imports TensorFlow's file systems).

Data arriving in spans: ``data.source`` may hold ``{SPAN}`` once (``data/span-{SPAN}/*.csv``,
``data/credit-{SPAN}.csv``, ``gs://bucket/span-{SPAN}/``), as TFX's input config does. A span is the
non-negative integer written where ``{SPAN}`` stands (digits only; ``span-007`` is span 7), and its
files are what the source names with that text in place of ``{SPAN}`` (a file, a folder's files or a
glob's matches). ExampleGen reads the latest ``data.window`` spans, so the cache key, made of these
files, changes when a new span arrives.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from typing import Mapping

from components.example_gen import storage
from pipeline.config import DataConfig, Section
from pipeline.errors import DataError

#: The placeholder in ``data.source`` where the span number stands.
SPAN = "{SPAN}"


@dataclass(frozen=True)
class Span:
    """One span of a ``data.source`` holding ``{SPAN}``.

    Attributes:
        number: The span number (``span-007`` is 7).
        source: ``data.source`` with the span's text in place of ``{SPAN}`` (``.../span-007/*.csv``).
        files: The files that source names, sorted.
    """

    number: int
    source: str
    files: tuple[str, ...]


def source_files(data: DataConfig, field: str = "data.source") -> list[str]:
    """The files ExampleGen reads: those ``data.source`` names (a file, a folder's files or a glob's
    matches, sorted; local or a URL such as ``gs://bucket/data/*.csv``, read through ``tf.io.gfile``:
    see ``storage``), or with ``{SPAN}`` in it the files of the spans ``resolve_spans`` picks, span by
    span.

    ``field`` is what an error calls the source (``bulk_inference.source`` for data read elsewhere).

    Raises:
        DataError: Nothing matches, or a URL cannot be listed.
    """
    if SPAN in data.source:
        return [path for span in resolve_spans(data) for path in span.files]
    return _files_of(data.source, field)


def resolve_spans(data: DataConfig) -> list[Span]:
    """The spans ExampleGen reads: the latest ``data.window`` ones (the highest numbers), in
    increasing order; all there are when there are fewer (ExampleGen says so). Empty when
    ``data.source`` holds no ``{SPAN}``.

    Raises:
        DataError: No span matches, two names give the same span number, or a URL cannot be
            listed; the message names ``data.source`` and its pattern.
    """
    if SPAN not in data.source:
        return []
    return all_spans(data)[-data.window:]


def latest_span(data: DataConfig) -> Span:
    """The highest-numbered span of ``data.source``.

    Raises:
        DataError: ``data.source`` holds no ``{SPAN}``, or as ``all_spans`` does.
    """
    if SPAN not in data.source:
        raise DataError(f"data.source: {data.source}: holds no {SPAN}, so it has no spans; expected a source "
                        f"such as data/span-{SPAN}/*.csv")
    return all_spans(data)[-1]


def all_spans(data: DataConfig) -> list[Span]:
    """Every span of ``data.source`` (which holds ``{SPAN}``) that names at least one file, in
    increasing order.

    Raises:
        DataError: No span matches, two names give the same span number (``span-7`` and
            ``span-007``), or a URL cannot be listed.
    """
    source = data.source
    pattern = _span_regex(source.rstrip("/"))
    wildcard = source.rstrip("/").replace(SPAN, "*")
    texts: dict[int, dict[str, str]] = {}  # number -> text where {SPAN} stands -> a path showing it
    # a span is a file (or a glob's match) matching the pattern, or a folder of files matching it
    for path in sorted(storage.list_files(wildcard) or []) + sorted(storage.list_files(wildcard + "/*") or []):
        text = _span_text(pattern, path)
        if text is not None:
            texts.setdefault(int(text), {}).setdefault(text, path)
    spans = []
    for number, by_text in sorted(texts.items()):
        if len(by_text) > 1:
            shown = " and ".join(by_text.values())
            raise DataError(f"data.source: {source}: {shown} are both span {number}; expected one name per span "
                            f"number where {SPAN} stands (rename or remove one)")
        (text,) = by_text
        expanded = source.replace(SPAN, text)
        # a glob after {SPAN} (credit-{SPAN}*.csv) also matches other spans' names (credit-12.csv for 1)
        files = [path for path in storage.list_files(expanded) or [] if _span_text(pattern, path) == text]
        if files:
            spans.append(Span(number=number, source=expanded, files=tuple(sorted(files))))
    if not spans:
        raise DataError(f"data.source: {source}: no span matches (looked for {wildcard}); expected files or folders "
                        f"whose names hold a span number (digits) where {SPAN} stands, e.g. data/span-{SPAN}/*.csv "
                        "matching data/span-1/part-0.csv")
    return spans


def span_of(data: DataConfig, path: str) -> int | None:
    """Which span of ``data.source`` the file or folder ``path`` belongs to, from its name alone (no
    file is read): a span's file, its folder (``data/span-3`` for ``data/span-{SPAN}/*.csv``) or
    its source as expanded. ``None`` when ``path`` is none of these, or ``data.source`` holds no
    ``{SPAN}``. A relative local path is taken from the working directory, as ``data.source`` is
    resolved against the YAML's folder.
    """
    if SPAN not in data.source:
        return None
    source = data.source.rstrip("/")
    if not storage.is_url(path) and not storage.is_url(source):
        path = os.path.normpath(os.path.abspath(path)) if os.path.isabs(source) else os.path.normpath(path)
    path = path.rstrip("/")
    at = source.index(SPAN)
    end = source.find("/", at)
    folder = source if end < 0 else source[:end]  # up to the end of the name holding {SPAN}
    full, head = _span_regex(source), _span_regex(folder)
    for regex, candidate in ((full, path), (full, posixpath.dirname(path)), (head, path)):
        found = regex.fullmatch(candidate)
        if found:
            return int(found.group(1))
    return None


def spans_text(numbers: list[int]) -> str:
    """``span 3``, ``spans 2-3``, ``spans 1, 4-6``: increasing numbers, runs shown as ranges."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    shown = ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)
    return f"span{'s' if len(numbers) > 1 else ''} {shown}"


def cache_files(config: Mapping[str, Section]) -> list[str]:
    """The files whose content is part of ExampleGen's cache key (``ComponentSpec.cache_files``):
    the chosen spans' files, so a new span makes ExampleGen run again."""
    return source_files(config["data"])


def _files_of(source: str, field: str = "data.source") -> list[str]:
    matches = storage.list_files(source)
    if matches is None:
        raise DataError(f"{field}: {source}: no such file; expected a CSV, Parquet or TFRecord file, a folder or a glob")
    if not matches:
        raise DataError(f"{field}: {source}: no files match")
    return sorted(matches)


def _span_text(pattern: re.Pattern, path: str) -> str | None:
    """The digits where ``{SPAN}`` stands in the name of the file ``path`` or of its folder."""
    for candidate in (path, posixpath.dirname(path)):
        found = pattern.fullmatch(candidate)
        if found:
            return found.group(1)
    return None


def _span_regex(source: str) -> re.Pattern:
    """A regular expression matching what the glob ``source`` matches, with the digits where ``{SPAN}``
    stands as its group."""
    left, right = source.split(SPAN, 1)
    return re.compile(_glob_regex(left) + r"(\d+)" + _glob_regex(right))


def _glob_regex(pattern: str) -> str:
    """A glob (``*``, ``?``, ``[...]``, as ``glob`` reads them: never across a ``/``) as a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and _class_end(pattern, i) > 0:
            close = _class_end(pattern, i)
            body = pattern[i + 1:close]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """Where the ``[...]`` opening at ``start`` closes (a ``]`` first in it, or after ``!``, is a
    member), or -1 when it does not: then ``[`` is a plain character, as for ``fnmatch``."""
    i = start + 1
    if pattern[i:i + 1] == "!":
        i += 1
    if pattern[i:i + 1] == "]":
        i += 1
    return pattern.find("]", i)
