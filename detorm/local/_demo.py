"""Deterministic demo data for ``detorm serve --demo`` (grown by later work)."""

from __future__ import annotations

from ._db import Database
from ._seed import Seeder


def seed_demo(database: Database, *, seed: int = 0) -> None:
    """Seed a small cluster once; a database that already has experiments is left alone."""
    from sqlmodel import select

    from . import _tables as t

    with database.transaction(write=False) as db:
        if db.exec(select(t.ExperimentRow).limit(1)).first() is not None:
            return
    with Seeder(database) as s:
        ws = s.workspace("research")
        project = s.project("vision", workspace=ws)
        exp = s.experiment(project=project, name="resnet", labels=["demo"], hyperparameters={"lr": 0.01})
        trial = s.trial(exp)
        s.metrics(trial, "validation", [(100, {"validation_loss": 0.5}), (200, {"validation_loss": 0.4})])
