"""The public surface: a small, sorted, complete ``__all__``; short paths in reprs."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import detorm
import detorm.errors
import detorm.local


def test_all_is_sorted_and_complete() -> None:
    names = [n for n in detorm.__all__ if n != "__version__"]
    assert names == sorted(names, key=lambda n: (n[0].islower(), n))
    public = {
        n
        for n, v in vars(detorm).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert public <= set(detorm.__all__)
    for module in (detorm.errors, detorm.local):
        assert sorted(module.__all__) == module.__all__
        assert all(hasattr(module, n) for n in module.__all__)


def test_public_classes_report_the_short_module() -> None:
    assert detorm.Session.__module__ == "detorm"
    assert detorm.Q.__module__ == "detorm"
    assert repr(detorm.Session).startswith("<class 'detorm.Session'")


def test_importing_opens_no_connection() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network used at import')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import detorm, detorm.local\n"
        "detorm.Session  # the first public name imports the whole SDK\n"
        "assert detorm._api._sync._defaults.current is None\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_alone_loads_neither_the_sdk_nor_its_dependencies() -> None:
    # `import detorm` is cheap (benchmarks/imports.py): the SDK, pydantic and httpx are
    # imported on the first use of a public name.
    code = (
        "import sys, detorm\n"
        "heavy = ('detorm._api._sync', 'detorm._wire', 'pydantic', 'httpx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from detorm import Experiment\n"
        "print(sorted(m for m in heavy if m in sys.modules), Experiment.__name__)\n"
    )
    before, after = _run(code).splitlines()
    assert before == "[]"
    assert after == "['detorm._api._sync', 'detorm._wire', 'httpx', 'pydantic'] Experiment"


def test_every_public_name_resolves_and_is_listed_for_type_checkers() -> None:
    import ast
    from pathlib import Path

    for name in detorm.__all__:
        assert getattr(detorm, name) is not None, name
    assert set(dir(detorm)) >= set(detorm.__all__)

    # The names type checkers see (imported under TYPE_CHECKING in __init__) are the names
    # handed out at run time (imported by _surface): the two import lists agree.
    def imported(path: Path, *, under_type_checking: bool) -> set[str]:
        tree = ast.parse(path.read_text())
        nodes: list[ast.stmt] = tree.body
        if under_type_checking:
            nodes = [n for n in tree.body if isinstance(n, ast.If)][0].body
        return {
            alias.asname or alias.name
            for node in nodes
            if isinstance(node, ast.ImportFrom) and node.level == 1
            for alias in node.names
        }

    package = Path(detorm.__file__).parent
    checked = imported(package / "__init__.py", under_type_checking=True)
    loaded = imported(package / "_surface.py", under_type_checking=False)
    assert checked == loaded
    assert checked == set(detorm.__all__) - {"errors", "__version__"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Experimnt'"):
        detorm.Experimnt  # type: ignore[attr-defined]  # noqa: B018
