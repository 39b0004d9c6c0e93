"""The README's examples run, in order, against ``detorm serve --demo`` as alice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import detorm
from detorm.local import LocalMaster
from tests.conftest import ROOT, copy_database

BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_readme_examples_run(
    demo_database: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 7
    db_path = copy_database(demo_database, tmp_path / "master")  # as seeded by demo=True
    with LocalMaster(db_path=db_path, demo=True, process=False) as master:
        for name, value in {
            "DET_MASTER": master.url, "DET_USER": "alice", "DET_PASS": "alice-pw",
            "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "DETORM_CACHE_DIR": str(tmp_path / "cache"),
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        detorm.set_default_session(None)
        namespace: dict[str, object] = {}
        try:
            for index, block in enumerate(blocks):
                exec(compile(block, f"README.md block {index + 1}", "exec"), namespace)
        finally:
            session = namespace.get("session")
            if isinstance(session, detorm.Session):
                session.close()
            detorm.set_default_session(None)
    printed = capsys.readouterr().out
    # ACTIVE also asks for the stored RUNNING: both are reported as active states.
    assert (
        "GET /api/v1/experiments?states=STATE_ACTIVE&states=STATE_PAUSED&states=STATE_RUNNING"
        "&labels=baseline" in printed
    )
    assert "2 requests" in printed
