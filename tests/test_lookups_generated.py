"""``detorm/_plan/_lookups.py`` is generated from ``_plan/_columns.py`` and must be up to date."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def test_generated_lookups_are_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_lookups", ROOT / "scripts" / "gen_lookups.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (ROOT / "detorm" / "_plan" / "_lookups.py").read_text() == generator.render(), (
        "run: python scripts/gen_lookups.py"
    )
