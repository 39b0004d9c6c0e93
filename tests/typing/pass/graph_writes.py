"""Creating and deleting through the unit of work, and at once: user-style code that must
type-check under mypy --strict."""

from __future__ import annotations

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
    session.commit()
    # A created object's server fields are typed as for any object: ``id`` is an int (reading
    # it before the commit raises NotLoaded).
    workspace_id: int = ws.id
    return workspace_id, project.id


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
    return new.id
