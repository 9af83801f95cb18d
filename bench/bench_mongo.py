"""MongoDB: diaspora_async (Model API) against raw PyMongo ``AsyncMongoClient``, same run.

insert one (``Model.insert`` vs ``insert_one``), find by id (``Model.find(id)`` vs
``find_one``), bulk (``insert_many`` of 1000 both ways) and a 1000-row filtered query.
Uses a throwaway database, dropped at the end. Server: ``DIASPORA_TEST_MONGO_URL``
(default: the SecantusDB test server started by ``scripts/mongo-server.sh start``), whose
own speed dominates these numbers: they show our overhead, not MongoDB's throughput.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC

import diaspora_async as da
from bench._common import Result, interleaved

URL = os.environ.get("DIASPORA_TEST_MONGO_URL", "mongodb://127.0.0.1:27018").rsplit("/", 1)[0]
if not URL.startswith("mongodb://"):
    URL = "mongodb://127.0.0.1:27018"
OPS = 500
BULK = 1000


async def main() -> list[Result]:
    """Run the four comparisons and return their results."""
    from pymongo import AsyncMongoClient

    name = f"bench_{uuid.uuid4().hex[:8]}"
    raw = AsyncMongoClient(
        URL, tz_aware=True, tzinfo=UTC, maxPoolSize=10, serverSelectionTimeoutMS=2000
    )
    try:
        await raw.admin.command("ping")
    except Exception as exc:
        await raw.close()
        raise ConnectionError(f"no MongoDB server at {URL}: {exc}") from exc
    coll = raw[name]["raw"]
    orm = da.Diaspora()
    orm.create_data_source("m", "mongo", url=f"{URL}/{name}", max_size=10)

    class Article(orm.Model, sources=["m"]):
        title: str
        views: int = 0
        draft: bool = True

    doc = {"title": "hello", "views": 3, "draft": True}
    counter = iter(range(10**9))
    results: list[Result] = []
    try:
        async with orm:
            ids = [a.id for a in await Article.insert_many([doc] * OPS)]
            await coll.insert_many([{"_id": f"r{i}", **doc} for i in range(OPS)])

            async def ours_insert(k: int) -> None:
                await Article.insert(doc)

            async def raw_insert(k: int) -> None:
                await coll.insert_one({"_id": f"x{next(counter)}", **doc})

            async def ours_get(k: int) -> None:
                await Article.find(ids[k % OPS])

            async def raw_get(k: int) -> None:
                await coll.find_one({"_id": f"r{k % OPS}"})

            async def ours_bulk(k: int) -> None:
                await Article.insert_many([doc] * BULK)

            async def raw_bulk(k: int) -> None:
                await coll.insert_many([{"_id": f"b{next(counter)}", **doc} for _ in range(BULK)])

            async def ours_find(k: int) -> None:
                await Article.find_many({"views": 3}, limit=1000)

            async def raw_find(k: int) -> None:
                await coll.find({"views": {"$eq": 3}}, sort=[("_id", 1)], limit=1000).to_list(None)

            results += [
                await interleaved("mongo", "insert one", ours_insert, raw_insert, 3 * OPS),
                await interleaved("mongo", "find by id", ours_get, raw_get, 3 * OPS),
                await interleaved("mongo", f"insert_many {BULK}", ours_bulk, raw_bulk, 10, BULK),
                await interleaved("mongo", "find_many 1000 rows", ours_find, raw_find, 10, 1000),
            ]
    finally:
        await raw.drop_database(name)
        await raw.close()
    return results
