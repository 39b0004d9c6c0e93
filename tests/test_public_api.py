"""The public surface: a small, sorted, complete ``__all__``; short paths in reprs."""

from __future__ import annotations

import subprocess
import sys
import types

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
        "assert detorm._api._sync._default is None\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr
