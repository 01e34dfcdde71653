"""setup.py declares every distribution the code imports, in ranges that admit the locked versions.

``pip install sluiceway`` (or ``pip install -e .`` without the lock) installs what setup.py
declares; an import that only works because some other package happened to pull its distribution
in breaks the day that package stops doing so.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import os
import re
import sys
from typing import Iterator

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

FIRST_PARTY = ("pipeline", "components")
_MODULE_SUFFIX = re.compile(r"(\.cpython-[^/]*)?\.(py|so|pyd|pyi)$")


def _declared_requirements() -> list[Requirement]:
    """``install_requires`` as written in setup.py (not the metadata of whatever is installed)."""
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "install_requires":
                    return [Requirement(text) for text in ast.literal_eval(keyword.value)]
    raise AssertionError("setup.py has no setup(install_requires=[...])")


def _locked_versions() -> dict[str, str]:
    pins = {}
    with open(os.path.join(REPO, "requirements.lock"), encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
            if match:
                pins[canonicalize_name(match.group(1))] = match.group(3)
    return pins


def _imports(path: str) -> Iterator[tuple[str, int]]:
    """Every absolute module an import statement in ``path`` names, at any depth (functions too).

    ``from a import b`` yields ``a.b`` (``b`` may be a submodule, as in ``from kfp import kubernetes``,
    which another distribution than ``kfp`` provides).
    """
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield (node.module if alias.name == "*" else f"{node.module}.{alias.name}"), node.lineno


def _sources() -> Iterator[str]:
    for top in FIRST_PARTY:
        for folder, dirs, names in os.walk(os.path.join(REPO, top)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            yield from (os.path.join(folder, name) for name in sorted(names) if name.endswith(".py"))


@functools.cache
def _top_level_owners() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@functools.cache
def _modules_of(distribution: str) -> frozenset[str]:
    """The module and package names a distribution's files provide (``google.protobuf.text_format``,
    ``google.protobuf``, ``google``), with a ``:init`` mark on the packages whose ``__init__`` it ships."""
    provided = set()
    for file in metadata.distribution(distribution).files or []:
        parts = str(file).split("/")
        if not _MODULE_SUFFIX.search(parts[-1]) or any(".dist-info" in part or ".data" in part for part in parts):
            continue
        stem = _MODULE_SUFFIX.sub("", parts[-1])
        package = parts[:-1]
        provided.update(".".join(package[:depth]) for depth in range(1, len(package) + 1))
        provided.add(".".join(package) + ":init" if stem == "__init__" else ".".join([*package, stem]))
    return frozenset(provided)


def _owners(module: str) -> set[str]:
    """The installed distributions that provide ``module`` (or the deepest package of it one provides)."""
    candidates = _top_level_owners().get(module.split(".")[0], [])
    if len(set(candidates)) <= 1:
        return {canonicalize_name(name) for name in candidates}
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = ".".join(parts[:depth])
        owners = {name for name in candidates if prefix in _modules_of(name)}
        if owners:
            # a namespace shared by several (kfp/, google/): the one shipping its __init__ owns it
            with_init = {name for name in owners if f"{prefix}:init" in _modules_of(name)}
            return {canonicalize_name(name) for name in (with_init or owners)}
    return {canonicalize_name(name) for name in candidates}


def test_every_third_party_import_is_declared_in_setup_py():
    declared = {canonicalize_name(requirement.name) for requirement in _declared_requirements()}
    missing, unknown = {}, {}
    for path in _sources():
        relative = os.path.relpath(path, REPO)
        for module, line in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in FIRST_PARTY:
                continue
            owners = _owners(module)
            if not owners:
                unknown.setdefault(module, []).append(f"{relative}:{line}")
            elif not owners & declared:
                missing.setdefault(" or ".join(sorted(owners)), []).append(f"{module} ({relative}:{line})")
    assert not unknown, f"imports that no installed distribution provides: {unknown}"
    assert not missing, "setup.py's install_requires lacks:\n" + "\n".join(
        f"  {owner}: imported as {', '.join(places)}" for owner, places in sorted(missing.items()))


def test_the_import_scan_sees_imports_inside_functions_and_submodules_of_shared_namespaces(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("import os\n\ndef build():\n    from kfp import kubernetes\n    import google_crc32c\n"
                      "    from google.protobuf import text_format\n")
    found = dict(_imports(str(source)))
    assert found == {"os": 1, "kfp.kubernetes": 4, "google_crc32c": 5, "google.protobuf.text_format": 6}
    assert _owners("kfp.kubernetes") == {"kfp-kubernetes"}
    assert _owners("kfp.dsl") == {"kfp"}
    assert _owners("google.protobuf.text_format") == {"protobuf"}
    assert _owners("yaml") == {"pyyaml"}


def test_every_declared_range_admits_the_locked_version():
    locked = _locked_versions()
    problems = []
    for requirement in _declared_requirements():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{requirement}: not in requirements.lock")
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            problems.append(f"{requirement}: requirements.lock pins {locked[name]}")
    assert not problems, "setup.py and requirements.lock disagree:\n  " + "\n  ".join(problems)
