"""Creating and deleting through the unit of work, and at once: user-style code that must
type-check under mypy --strict."""

from __future__ import annotations

from typing import Any

import detorm
import detorm.aio
from detorm import Model, ModelVersion, Project, Workspace


def from_scratch(session: detorm.Session) -> tuple[int, int]:
    ws = Workspace(name="registry")
    project = Project(name="detection", workspace=ws, key="DTC")
    model = Model(name="detector", workspace=ws, labels=["cv"], metadata={"f": 1})
    session.add(project)
    session.add(model)
    for exp in detorm.Experiment.query(session).filter(project_id=3):
        exp.project = project  # moved once the project is created
    session.delete(session.get(Project, 3))
    new: bool = ws.is_new
    assert new
    maybe: int | None = ws.id  # a new object's server fields are unset (None) until created
    session.commit()
    # The type of ``ws`` says it was made new: its id is narrowed once the commit created it.
    assert ws.id is not None and project.id is not None
    workspace_id: int = ws.id
    return workspace_id, project.id


def saved_objects_have_their_ids(session: detorm.Session, ws: Workspace) -> int:
    project = session.get(Project, 3)
    found = Workspace.query(session).first()
    total: int = project.id + ws.id + (found.num_projects if found else 0)
    return total


def either(ws: Workspace[Any]) -> Project[Any]:
    """A new or saved workspace: ``Workspace[Any]`` (``Project(workspace=...)`` takes both)."""
    return Project(name="p", workspace=ws)


def at_once(session: detorm.Session) -> ModelVersion:
    ws = Workspace.create("w", session=session)
    Project.create(ws, "p", description="d", key="PKEY")
    model = Model.create("m", workspace=ws, labels={"a"}, session=session)
    version = model.register_version("3f1c0b6e-0000-4000-8000-000000000000", name="v1")
    version.delete()
    model.delete()
    ws.delete()
    return version


async def at_once_async(session: detorm.aio.AsyncSession) -> int:
    ws = await detorm.aio.Workspace.create("w", session=session)
    project = await detorm.aio.Project.create(ws, "p")
    await project.delete()
    new = detorm.aio.Workspace(name="later")
    session.add(new)
    await session.commit()
    assert new.id is not None
    return new.id
