"""The ``motor`` target: the ``mongo`` adapter on a motor ``AsyncIOMotorClient``.

Existing services hand their motor client to the adapter (``client=``, ``database=``);
this target does the same, on the server and with the scratch database of the ``mongo``
target. The client belongs to the target, which closes it after the registry is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient

from . import Target
from .mongo import scratch_database


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    async with scratch_database() as (url, database):
        client: Any = AsyncIOMotorClient(url, maxPoolSize=10)
        try:
            yield {"client": client, "database": database, "max_size": 10}
        finally:
            client.close()


TARGET = Target(id="motor", label="mongo", open=_open)
