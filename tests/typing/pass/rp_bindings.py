"""A workspace's resource-pool bindings, read and changed at once: user-style code that must
type-check under mypy --strict."""

from __future__ import annotations

import detorm
import detorm.aio


def pools(session: detorm.Session) -> list[str]:
    ws = session.get(detorm.Workspace, 2)
    ws.bind_resource_pools("gpu", "cpu")
    ws.unbind_resource_pools("cpu")
    available: list[str] = ws.resource_pools()
    return available


async def pools_async(session: detorm.aio.AsyncSession) -> list[str]:
    ws = await session.get(detorm.aio.Workspace, 2)
    await ws.bind_resource_pools("gpu")
    await ws.unbind_resource_pools("gpu")
    return await ws.resource_pools()
