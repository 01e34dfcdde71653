"""The version of a component's code: a hash of every sluiceway module it can run.

A component's cache key includes its code version, so an execution is reused only while the code it
ran is unchanged. That code is more than the component's own folder (the Evaluator, for instance,
imports the Trainer's core), so the version covers the closure of the component's imports over
sluiceway's own modules (``pipeline.*``, ``components.*``): start from the core module and every module
in its package folder, follow each ``import`` and ``from ... import`` (relative ones, and those inside
functions, included), and add the ``__init__`` of every package on the way, since importing a module
runs them. Third-party imports are not followed: the lock pins them.

Modules imported by name at run time (``importlib.import_module("...")``) are not seen; sluiceway
uses that only to find a component's core from its spec.
"""

from __future__ import annotations

import ast
import hashlib
import os

from pipeline.files import files_sha256

FIRST_PARTY = ("pipeline", "components")
# (package, content hash) -> the names its imports refer to; parsing is what takes the time
_IMPORTS_SEEN: dict[tuple[str, bytes], tuple[str, ...]] = {}


def source_root() -> str:
    """The folder holding the ``pipeline`` and ``components`` packages (a checkout, or site-packages)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def imported_modules(core_module: str, *, root: str | None = None) -> list[str]:
    """The sluiceway modules a component's code consists of, sorted.

    Args:
        core_module: The component's core module, e.g. ``components.evaluator.core``.
        root: The folder holding ``pipeline/`` and ``components/``; by default this installation's.

    Returns:
        Dotted module names; a package stands for its ``__init__.py`` (``components.evaluator``).

    Raises:
        ModuleNotFoundError: ``core_module`` is not a sluiceway module under ``root``.
        SyntaxError: A module of the closure does not parse.
    """
    return sorted(_closure(core_module, root or source_root()))


def code_version(core_module: str, *, root: str | None = None) -> str:
    """The SHA-256 of the relative paths and contents of ``imported_modules(core_module)``'s files.

    Any change to any of those files (or a module entering or leaving the closure) changes it; a
    change to a sluiceway module the component never imports does not.

    Args:
        core_module: The component's core module, e.g. ``components.evaluator.core``.
        root: The folder holding ``pipeline/`` and ``components/``; by default this installation's.

    Raises:
        ModuleNotFoundError: ``core_module`` is not a sluiceway module under ``root``.
        SyntaxError: A module of the closure does not parse.
    """
    base = root or source_root()
    closure = _closure(core_module, base)
    return files_sha256(base, [os.path.relpath(path, base).replace(os.sep, "/") for path in closure.values()])


def _closure(core_module: str, root: str) -> dict[str, str]:
    """Module name -> file, for every sluiceway module reachable from the component."""
    # a component outside sluiceway's packages (one a test declares) is first-party code too
    first_party = (*FIRST_PARTY, core_module.split(".")[0])
    start = _module_file(core_module, root, first_party)
    if start is None:
        raise ModuleNotFoundError(f"code_version: {core_module} is not a module under {os.path.join(root, '')} "
                                  f"(expected a name starting with {' or '.join(p + '.' for p in FIRST_PARTY)})",
                                  name=core_module)
    package = core_module if _is_package(start) else core_module.rpartition(".")[0]
    pending = [core_module, *_package_modules(package, root)]
    found: dict[str, str] = {}
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = _module_file(name, root, first_party)
        if path is None:  # "from pkg.mod import NAME": NAME is not a module
            continue
        found[name] = path
        parts = name.split(".")
        pending += [".".join(parts[:depth]) for depth in range(1, len(parts))]  # the packages' __init__ run too
        pending += _imported_names(name, path)
    return found


def _module_file(name: str, root: str, first_party: tuple[str, ...] = FIRST_PARTY) -> str | None:
    parts = name.split(".")
    if parts[0] not in first_party or not all(part.isidentifier() for part in parts):
        return None
    base = os.path.join(root, *parts)
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _is_package(path: str) -> bool:
    return os.path.basename(path) == "__init__.py"


def _package_modules(package: str, root: str) -> list[str]:
    """Every module in a package's folder and its subfolders."""
    if not package:
        return []
    top = os.path.join(root, *package.split("."))
    names = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        relative = os.path.relpath(folder, top)
        prefix = package if relative == "." else f"{package}.{relative.replace(os.sep, '.')}"
        names += [prefix if f == "__init__.py" else f"{prefix}.{f[:-3]}" for f in files if f.endswith(".py")]
    return names


def _imported_names(name: str, path: str) -> list[str]:
    """The absolute names a module's import statements may refer to as modules, anywhere in it.

    ``from a import b`` gives ``a`` and ``a.b``: ``b`` may be a submodule or a name defined in ``a``;
    ``_module_file`` tells which.
    """
    with open(path, "rb") as handle:
        source = handle.read()
    package = name if _is_package(path) else name.rpartition(".")[0]
    key = (package, hashlib.sha256(source).digest())  # by content, so an edited file is parsed again
    if key not in _IMPORTS_SEEN:
        names: list[str] = []
        for statement in _import_statements(source.decode("utf-8", errors="replace")):
            try:
                names += _parse_imports(package, ast.parse(statement))
            except SyntaxError:  # prose in a docstring that starts like an import ("from the ... import")
                continue
        _IMPORTS_SEEN[key] = tuple(names)
    return list(_IMPORTS_SEEN[key])


def _import_statements(source: str) -> list[str]:
    """Every statement of ``source`` that begins a line (indented or not) with ``import`` or ``from``,
    continuation lines included. Parsing only these is some ten times faster than parsing the whole
    module, which a cached rerun does for every component; an import that follows ``:`` or ``;`` on
    one line is not seen (sluiceway's code has none, and a test checks the closure)."""
    lines = source.splitlines()
    statements, index = [], 0
    while index < len(lines):
        stripped = lines[index].lstrip()
        if stripped.startswith(("import ", "from ")):
            statement = stripped
            while index + 1 < len(lines):
                code = "\n".join(line.split("#", 1)[0] for line in statement.split("\n"))
                if code.count("(") > code.count(")") or code.rstrip().endswith("\\"):
                    index += 1
                    statement += "\n" + lines[index]
                else:
                    break
            statements.append(statement)
        index += 1
    return statements


def _parse_imports(package: str, tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 >= len(parts):  # beyond the top package: Python refuses it too
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names
