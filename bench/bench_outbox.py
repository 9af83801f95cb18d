"""The outbox (DESIGN.md 6.2): what "nothing is lost" costs, against the same calls without it.

Stores: SQLite (a temp file, also holding the outbox), MariaDB (``DIASPORA_TEST_MYSQL_URL``)
and Redis (``DIASPORA_TEST_REDIS_URL``). Lines, each "ours" against its baseline in the
same run, interleaved call by call:

* fan-out to 3 stores under ``on_error="queue"`` (intents written ahead, removed after)
  against the same fan-out under ``"raise"``; the issue's bound is <= 1.3x the cost,
  i.e. a ratio >= 0.77;
* ``persist("db", defer=["cache"])`` (write-behind: MariaDB written, the Redis write left
  as a durable intent in the local outbox) against ``persist("db")`` alone; bound <= 1.2x,
  ratio >= 0.83;
* ``replay_outbox()`` of 10,000 intents to MariaDB (rows/s) against ``insert_many`` of
  10,000 new rows into it; bound >= 50% of the bulk rate.

Run: ``python bench/run.py --only outbox``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import diaspora_async as da
from bench._common import Result, interleaved

MYSQL = os.environ.get("DIASPORA_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS = os.environ.get("DIASPORA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
OPS = 400
BACKLOG = 10_000
_FAR = datetime.max.replace(tzinfo=UTC)  # purge every tombstone


def _models(orm: da.Diaspora) -> tuple[Any, Any]:
    class BenchFanItem(orm.Model, sources=["local", "db", "cache"]):
        name: str
        n: int = 0
        tags: list[str] = da.field(default_factory=list)

    class BenchReplayItem(orm.Model, sources=["local", "db"]):
        name: str
        n: int = 0
        tags: list[str] = da.field(default_factory=list)

    return BenchFanItem, BenchReplayItem


async def main(rounds: int = 3) -> list[Result]:
    # The outbox in the local SQLite file (the usual layout for a service with a local
    # store), then in the primary database, MariaDB (the transactional outbox: a write
    # to it carries the other sources' intents in its own transaction).
    return [
        *await _layout("local", rounds, ("queue", "replay")),
        *await _layout("db", rounds, ("queue", "defer")),
    ]


async def _layout(host: str, rounds: int, lines: tuple[str, ...]) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="diaspora-bench-outbox-") as tmp:
        orm = da.Diaspora()
        orm.create_data_source("local", "sqlite", path=str(Path(tmp) / "local.db"))
        orm.create_data_source("db", "mysql", url=MYSQL, min_size=4, max_size=10)
        orm.create_data_source("cache", "redis", url=REDIS, prefix=f"bench-{uuid.uuid4().hex[:8]}")
        orm.use_outbox(host, collection="bench_outbox")
        Fan, Replay = _models(orm)
        async with orm:
            await _drop(orm, Fan, Replay)
            await orm.outbox.ready()
            adapter, schema = orm.data_sources[host].adapter, orm.outbox.schema
            await adapter.drop(schema)
            orm.data_sources[host].forget_schema("Outbox")
            try:
                return await _suite(orm, Fan, Replay, rounds, f"outbox@{host}", lines)
            finally:
                await _drop(orm, Fan, Replay)
                await adapter.drop(schema)


async def _drop(orm: da.Diaspora, *models: Any) -> None:
    for model in models:
        for source in model.__meta__.source_names:
            adapter, schema = await model.__meta__.target(source)
            await adapter.drop(schema)
            orm.data_sources[source].forget_schema(model.__name__)


async def _suite(
    orm: da.Diaspora, Fan: Any, Replay: Any, rounds: int, group: str, lines: tuple[str, ...]
) -> list[Result]:
    n = OPS * rounds
    outbox = orm.outbox

    async def queued(k: int) -> None:
        await Fan.spawn(name=f"q{k}", tags=["a"]).persist(da.ALL, on_error="queue")

    async def raised(k: int) -> None:
        await Fan.spawn(name=f"r{k}", tags=["a"]).persist(da.ALL, on_error="raise")

    async def deferred(k: int) -> None:
        await Fan.spawn(name=f"d{k}", tags=["a"]).persist("db", defer=["cache"])

    async def direct(k: int) -> None:
        await Fan.spawn(name=f"p{k}", tags=["a"]).persist("db")

    docs = [{"name": f"b{i}", "n": i, "tags": ["x", "y"]} for i in range(BACKLOG)]
    db_adapter, db_schema = await Replay.__meta__.target("db")

    async def backlog() -> None:  # untimed before every call: db empty, 10k intents due
        await db_adapter.delete_where(db_schema, None)
        await db_adapter.purge(db_schema, _FAR)
        await outbox.ack([r["id"] for r in await outbox.pending()])
        await Replay.spawn_many(docs).persist("local", defer=["db"])

    async def replay(k: int) -> None:
        done = await orm.replay_outbox()
        assert done["replayed"] == BACKLOG, done

    async def bulk(k: int) -> None:
        await Replay.insert_many(docs, source="db")

    results = []
    if "queue" in lines:
        results.append(
            await interleaved(group, "fan-out 3, queue vs raise", queued, raised, n, 1, 0.77)
        )
    if "defer" in lines:
        results.append(
            await interleaved(group, "defer cache vs db alone", deferred, direct, n, 1, 0.83)
        )
        await outbox.ack([r["id"] for r in await outbox.pending()])  # the deferred intents go
    if "replay" in lines:
        results.append(
            await interleaved(
                group, "replay 10k vs bulk insert", replay, bulk, 2 * rounds, BACKLOG, 0.5, backlog
            )
        )
    return results
