"""A workspace's resource pools, loaded and changed through the unit of work: user-style code
that must type-check under mypy --strict."""

from __future__ import annotations

import detorm
import detorm.aio


def pools(session: detorm.Session) -> set[str]:
    ws = session.get(detorm.Workspace, 2)
    session.load(ws, "resource_pools")
    ws.resource_pools.add("gpu")
    ws.resource_pools.discard("cpu")
    ws.resource_pools |= {"a100"}
    session.commit()
    return set(ws.resource_pools)


async def pools_async(session: detorm.aio.AsyncSession) -> set[str]:
    ws = await session.get(detorm.aio.Workspace, 2)
    await session.load(ws, "resource_pools")
    ws.resource_pools.add("gpu")
    await ws.save()
    return set(ws.resource_pools)
