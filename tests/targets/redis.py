"""The Redis target: the ``redis`` adapter on a real server (``DIASPORA_TEST_REDIS_URL``).

Each opening gets its own key prefix, so concurrent or interrupted runs never see each
other's keys; on exit every key under that prefix is deleted (the adapter's ``drop``
removes what it knows of, this sweeps up anything else, e.g. after a crash mid-test).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis

from . import Target, service_url

ENV = "DIASPORA_TEST_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    """The test server's URL (skips, or fails under CI, when it does not answer)."""
    return service_url(ENV, DEFAULT_URL)


def unique_prefix() -> str:
    """A key prefix no other run uses."""
    return f"dat-{uuid.uuid4().hex[:12]}"


async def sweep(url: str, prefix: str) -> None:
    """Delete every key of ``prefix`` (entity keys ``p:*`` and collection keys ``p/*``)."""
    client = aioredis.from_url(url)
    try:
        for pattern in (f"{prefix}:*", f"{prefix}/*"):  # the prefix is ours: no wildcards
            batch = [k async for k in client.scan_iter(match=pattern, count=1000)]
            if batch:
                await client.delete(*batch)
    finally:
        await client.aclose()


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    url = redis_url()
    prefix = unique_prefix()
    try:
        yield {"url": url, "prefix": prefix, "max_size": 10}
    finally:
        await sweep(url, prefix)


TARGET = Target(id="redis", label="redis", open=_open)
