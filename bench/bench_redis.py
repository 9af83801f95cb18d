"""Redis: diaspora_async (Model API) against raw ``redis.asyncio`` in the same run.

persist: ``Model.insert`` of one entity vs one raw ``SET`` of the same JSON document;
get: ``Model.find(id)`` vs one raw ``GET``; bulk: ``Model.insert_many`` of 1000 vs one
raw pipeline of 1000 ``SET``. Each side uses its own key prefix, deleted at the end.
Run with ``python bench/run.py --only redis`` (server: ``DIASPORA_TEST_REDIS_URL``).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import redis.asyncio as aioredis

import diaspora_async as da
from bench._common import Result, interleaved

URL = os.environ.get("DIASPORA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
OPS = 2000  # single-entity operations per round
BULK = 1000


async def _sweep(client: aioredis.Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"{prefix}/*"):
        keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i : i + 1000])


async def main() -> list[Result]:
    """Run the three comparisons and return their results."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    raw = aioredis.from_url(URL)
    await raw.ping()  # raises ConnectionError if the server is absent: run.py skips us
    orm = da.Diaspora()
    orm.create_data_source("r", "redis", url=URL, prefix=prefix, max_size=10)

    class Article(orm.Model, sources=["r"]):
        title: str
        views: int = 0
        draft: bool = True

    doc = {"title": "hello", "views": 3, "draft": True}
    counter = iter(range(10**9))
    try:
        async with orm:
            ids = [a.id for a in await Article.insert_many([doc] * OPS)]
            raw_keys = [f"{prefix}-raw:{i}" for i in range(OPS)]
            await raw.mset({k: json.dumps({"id": k, **doc}) for k in raw_keys})

            async def ours_persist(k: int) -> None:
                await Article.insert(doc)

            async def raw_persist(k: int) -> None:
                key = f"{prefix}-raw:p{next(counter)}"
                await raw.set(key, json.dumps({"id": key, **doc}))

            async def ours_get(k: int) -> None:
                await Article.find(ids[k % OPS])

            async def raw_get(k: int) -> None:
                json.loads(await raw.get(raw_keys[k % OPS]))  # type: ignore[arg-type]

            many: list[dict[str, Any]] = [doc] * BULK

            async def ours_bulk(k: int) -> None:
                await Article.insert_many(many)

            async def raw_bulk(k: int) -> None:
                base = next(counter)
                async with raw.pipeline(transaction=False) as pipe:
                    for j in range(BULK):
                        key = f"{prefix}-raw:b{base}-{j}"
                        pipe.set(key, json.dumps({"id": key, **doc}))
                    await pipe.execute()

            return [
                await interleaved("redis", "persist (insert one)", ours_persist, raw_persist,
                                  3 * OPS, target=0.8),
                await interleaved("redis", "get (find by id)", ours_get, raw_get, 3 * OPS,
                                  target=0.9),
                await interleaved("redis", f"bulk (insert_many {BULK})", ours_bulk, raw_bulk,
                                  10, BULK, target=0.8),
            ]  # fmt: skip
    finally:
        await _sweep(raw, prefix)
        await _sweep(raw, f"{prefix}-raw")
        await raw.aclose()
