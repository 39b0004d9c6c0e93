"""The package type-checks under ``mypy --strict`` (config: mypy.ini)."""

from __future__ import annotations

from mypy import api

from tests.conftest import ROOT


def test_package_is_mypy_strict_clean() -> None:
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "mypy.ini"), "--no-incremental"])
    assert status == 0, stdout + stderr
