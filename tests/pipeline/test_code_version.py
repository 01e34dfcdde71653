"""A component's code version covers every sluiceway module it imports, and nothing else."""

from __future__ import annotations

import os
import re
import shutil
import textwrap

import pytest

from pipeline.code_version import code_version, imported_modules, source_root
from tests.conftest import REPO

# A small source tree shaped like sluiceway's. components.alpha.core is a component's core module:
# it imports a sibling relatively, a name from a pipeline module, and (inside a function) a module
# of another package, which imports a third package relatively.
FAKE_TREE = {
    "pipeline/__init__.py": "",
    "pipeline/helpers.py": "X = 1\n",
    "pipeline/unused.py": "Y = 2\n",
    "components/__init__.py": "",
    "components/alpha/__init__.py": "",
    "components/alpha/core.py": """\
        from __future__ import annotations

        import json

        from pipeline.helpers import X

        from . import util


        def run():
            from components.beta.shared import value

            return json.dumps([X, util.deep.Z, value()])
        """,
    "components/alpha/util.py": "from ..gamma import deep\n",
    "components/alpha/component.py": "import kfp  # third-party: not followed\n",
    "components/beta/__init__.py": "",
    "components/beta/shared.py": "def value():\n    return 3\n",
    "components/beta/other.py": "W = 4\n",
    "components/gamma/__init__.py": "",
    "components/gamma/deep.py": "Z = 5\n",
    "components/delta/__init__.py": "",
    "components/delta/core.py": "import pipeline.unused\n",
}
ALPHA_CLOSURE = ["components", "components.alpha", "components.alpha.component", "components.alpha.core",
                 "components.alpha.util", "components.beta", "components.beta.shared", "components.gamma",
                 "components.gamma.deep", "pipeline", "pipeline.helpers"]


@pytest.fixture
def fake_root(tmp_path) -> str:
    for relative, text in FAKE_TREE.items():
        path = tmp_path.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return str(tmp_path)


def _edit(root: str, relative: str, text: str = "\n# edited\n") -> None:
    with open(f"{root}/{relative}", "a", encoding="utf-8") as handle:
        handle.write(text)


def test_the_closure_follows_absolute_relative_and_function_level_imports(fake_root):
    assert imported_modules("components.alpha.core", root=fake_root) == ALPHA_CLOSURE
    # a module's own package folder is not pulled in whole: beta/other.py stays out
    assert imported_modules("components.beta.shared", root=fake_root) == [
        "components", "components.beta", "components.beta.other", "components.beta.shared"]


def test_a_change_to_an_imported_module_changes_the_importers_version_not_the_reverse(fake_root):
    alpha, beta = (code_version(m, root=fake_root) for m in ("components.alpha.core", "components.beta.shared"))
    assert re.fullmatch(r"[0-9a-f]{64}", alpha) and alpha != beta

    _edit(fake_root, "components/beta/shared.py")  # imported by alpha (inside a function)
    assert code_version("components.alpha.core", root=fake_root) != alpha
    assert code_version("components.beta.shared", root=fake_root) != beta
    alpha, beta = (code_version(m, root=fake_root) for m in ("components.alpha.core", "components.beta.shared"))

    _edit(fake_root, "components/alpha/core.py")  # beta does not import alpha
    assert code_version("components.alpha.core", root=fake_root) != alpha
    assert code_version("components.beta.shared", root=fake_root) == beta

    alpha = code_version("components.alpha.core", root=fake_root)
    _edit(fake_root, "components/gamma/deep.py")  # two imports away, through a relative one
    assert code_version("components.alpha.core", root=fake_root) != alpha


def test_modules_outside_the_closure_do_not_change_the_version(fake_root):
    alpha = code_version("components.alpha.core", root=fake_root)
    for outside in ("components/beta/other.py", "pipeline/unused.py", "components/delta/core.py"):
        _edit(fake_root, outside)
    shutil.copytree(f"{fake_root}/components/gamma", f"{fake_root}/components/epsilon")  # a package nobody imports
    assert code_version("components.alpha.core", root=fake_root) == alpha


def test_a_new_import_brings_its_module_in(fake_root):
    alpha = code_version("components.alpha.core", root=fake_root)
    _edit(fake_root, "components/alpha/util.py", "from components.beta import other\n")
    assert "components.beta.other" in imported_modules("components.alpha.core", root=fake_root)
    assert code_version("components.alpha.core", root=fake_root) != alpha


def test_the_version_does_not_depend_on_where_the_tree_is(fake_root, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "checkout"
    shutil.copytree(fake_root, elsewhere)
    assert code_version("components.alpha.core", root=str(elsewhere)) == code_version("components.alpha.core",
                                                                                          root=fake_root)


def test_a_name_that_is_not_a_sluiceway_module_is_an_error(fake_root):
    for name in ("components.alpha.nope", "kfp.dsl", "json"):
        with pytest.raises(ModuleNotFoundError, match=re.escape(name)):
            code_version(name, root=fake_root)


def test_the_evaluator_covers_the_model_code_it_imports():
    closure = imported_modules("components.evaluator.core")
    assert {"components.common.tasks", "components.common.tree_model"} <= set(closure)
    assert "components.common.tree_model" in imported_modules("components.trainer.core")  # inside a function
    assert {"components.evaluator.core", "components.evaluator.report", "pipeline.config"} <= set(closure)
    assert "components.example_gen.core" not in closure and "pipeline.cli" not in closure
    assert source_root() == REPO  # without root=, the installation's own sources


def test_a_change_to_the_model_code_invalidates_the_evaluator_but_not_example_gen(tmp_path):
    ignore = shutil.ignore_patterns("__pycache__")
    for top in ("pipeline", "components"):
        shutil.copytree(f"{REPO}/{top}", tmp_path / top, ignore=ignore)
    root = str(tmp_path)
    evaluator = code_version("components.evaluator.core", root=root)
    example_gen = code_version("components.example_gen.core", root=root)
    _edit(root, "components/common/tree_model.py")
    assert code_version("components.evaluator.core", root=root) != evaluator
    assert code_version("components.example_gen.core", root=root) == example_gen


def test_the_fast_import_scan_finds_what_a_full_parse_finds_in_every_sluiceway_module():
    """code_version parses only the import statements (a cached rerun computes it for every
    component); on sluiceway's own code that must find exactly what parsing whole modules finds."""
    import ast

    from pipeline.code_version import _import_statements, _parse_imports, source_root

    root = source_root()
    checked = 0
    for top in ("pipeline", "components"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                source = open(path, encoding="utf-8").read()
                package = os.path.relpath(folder, root).replace(os.sep, ".")
                full = sorted(_parse_imports(package, ast.parse(source)))
                fast = sorted(n for statement in _import_statements(source)
                              for n in _parse_imports(package, ast.parse(statement)))
                assert fast == full, path
                checked += 1
    assert checked > 40
