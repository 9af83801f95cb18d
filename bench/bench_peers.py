"""Peers: diaspora_async against Tortoise ORM and SQLAlchemy 2 (asyncio ORM) on MariaDB.

Every side runs on asyncmy with a pool of 10 against its own table of the same layout
and content (id, name, n indexed, score, tags JSON, created), and each line alternates
ours and the peer call by call (``bench/_common.py``). The workloads are the public,
idiomatic call of each library:

* insert one: ``Model.insert`` / ``TItem.create`` / ``session.add`` + commit;
* get by id: ``Model.find(id)`` / ``TItem.get_or_none(id=)`` / ``session.get``;
* update by id: ``Model.update(id, {"n": k})`` (returns the entity) /
  ``TItem.filter(id=).update(n=)`` / ``session.execute(update(...))`` (neither returns it);
* query 100 rows: ``find_many({"n": {">=": k}}, sort="id", limit=100)`` and the same
  filter, order and limit in each peer, giving model objects;
* 200 concurrent gets;
* bulk insert 10k: ``insert_many`` / ``bulk_create`` / ``session.execute(insert(), rows)``.

The "ours ops/s" column is ours, the "raw ops/s" column the peer's. Needs the ``bench``
extra (``pip install -e .[all,bench]``); run: ``python bench/run.py --only peers``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import diaspora_async as da
from bench._common import Result, interleaved
from diaspora_async.ids import new_id

URL = os.environ.get("DIASPORA_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
OPS = 600
BULK = 10_000
CONCURRENT = 200
Call = Callable[[int], Awaitable[object]]


def _doc(i: int) -> dict[str, Any]:
    return {
        "name": f"item {i}",
        "n": i % 1000,
        "score": i / 7,
        "tags": ["a", "b"],
        "created": datetime(2024, 1, 1, tzinfo=UTC),
    }


def _ours(orm: da.Diaspora) -> Any:
    class PeerOurs(orm.Model, sources=["main"]):
        name: str
        n: int = da.field(default=0, index=True)
        score: float = 0.0
        tags: list[str] = da.field(default_factory=list)
        created: datetime | None = None

    return PeerOurs


async def _ours_calls(ids: list[str]) -> tuple[da.Diaspora, Any, dict[str, Call]]:
    orm = da.Diaspora()
    orm.create_data_source("main", "mysql", url=URL, driver="asyncmy", min_size=10, max_size=10)
    model = _ours(orm)
    await orm.connect()
    adapter, schema = await model.__meta__.target("main")
    await adapter.drop(schema)
    await adapter.ensure_schema(schema)
    await model.insert_many([{"id": i, **_doc(k)} for k, i in enumerate(ids)])

    async def concurrent(k: int) -> None:
        await asyncio.gather(*(model.find(ids[(k + j) % len(ids)]) for j in range(CONCURRENT)))

    calls: dict[str, Call] = {
        "insert one": lambda k: model.insert(_doc(k)),
        "get by id": lambda k: model.find(ids[k % len(ids)]),
        "update by id": lambda k: model.update(ids[k % len(ids)], {"n": k % 1000}),
        "query 100 rows": lambda k: model.find_many({"n": {">=": k % 500}}, sort="id", limit=100),
        "200 concurrent gets": concurrent,
        "bulk insert 10k": lambda k: model.insert_many([_doc(i) for i in range(BULK)]),
    }
    return orm, model, calls


async def _tortoise_calls(ids: list[str]) -> tuple[Callable[[], Awaitable[None]], dict[str, Call]]:
    from tortoise import Tortoise

    from bench._peer_tortoise import TItem

    parts = urlsplit(URL)
    await Tortoise.init(
        config={
            "connections": {
                "default": {
                    "engine": "tortoise.backends.mysql",
                    "credentials": {
                        "host": parts.hostname or "127.0.0.1",
                        "port": parts.port or 3306,
                        "user": parts.username or "root",
                        "password": parts.password or "",
                        "database": parts.path.lstrip("/") or "test",
                        "minsize": 10,
                        "maxsize": 10,
                        "charset": "utf8mb4",
                    },
                }
            },
            "apps": {
                "bench": {"models": ["bench._peer_tortoise"], "default_connection": "default"}
            },
            "use_tz": True,
        },
        _create_db=False,
    )
    conn = Tortoise.get_connection("default")
    await conn.execute_script("DROP TABLE IF EXISTS peer_tortoise")
    await Tortoise.generate_schemas()
    await TItem.bulk_create([TItem(id=i, **_doc(k)) for k, i in enumerate(ids)])

    async def concurrent(k: int) -> None:
        await asyncio.gather(
            *(TItem.get_or_none(id=ids[(k + j) % len(ids)]) for j in range(CONCURRENT))
        )

    async def query(k: int) -> list[Any]:
        return await TItem.filter(n__gte=k % 500).order_by("id").limit(100)

    async def close() -> None:
        await conn.execute_script("DROP TABLE IF EXISTS peer_tortoise")
        await Tortoise.close_connections()

    calls: dict[str, Call] = {
        "insert one": lambda k: TItem.create(id=new_id(), **_doc(k)),
        "get by id": lambda k: TItem.get_or_none(id=ids[k % len(ids)]),
        "update by id": lambda k: TItem.filter(id=ids[k % len(ids)]).update(n=k % 1000),
        "query 100 rows": query,
        "200 concurrent gets": concurrent,
        "bulk insert 10k": lambda k: TItem.bulk_create(
            [TItem(id=new_id(), **_doc(i)) for i in range(BULK)], batch_size=1000
        ),
    }
    return close, calls


async def _sqlalchemy_calls(
    ids: list[str],
) -> tuple[Callable[[], Awaitable[None]], dict[str, Call]]:
    from sqlalchemy import insert, select, update
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from bench._peer_sqlalchemy import Base, SItem

    url = URL.replace("mysql://", "mysql+asyncmy://", 1) + "?charset=utf8mb4"
    engine = create_async_engine(url, pool_size=10, max_overflow=0)
    session = async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    async with session() as s, s.begin():
        await s.execute(insert(SItem), [{"id": i, **_doc(k)} for k, i in enumerate(ids)])

    async def insert_one(k: int) -> None:
        async with session() as s, s.begin():
            s.add(SItem(id=new_id(), **_doc(k)))

    async def get(k: int) -> Any:
        async with session() as s:
            return await s.get(SItem, ids[k % len(ids)])

    async def change(k: int) -> None:
        async with session() as s, s.begin():
            await s.execute(update(SItem).where(SItem.id == ids[k % len(ids)]).values(n=k % 1000))

    async def query(k: int) -> list[Any]:
        async with session() as s:
            stmt = select(SItem).where(SItem.n >= k % 500).order_by(SItem.id).limit(100)
            return list((await s.scalars(stmt)).all())

    async def concurrent(k: int) -> None:
        await asyncio.gather(*(get(k + j) for j in range(CONCURRENT)))

    async def bulk(k: int) -> None:
        async with session() as s, s.begin():
            await s.execute(insert(SItem), [{"id": new_id(), **_doc(i)} for i in range(BULK)])

    async def close() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await engine.dispose()

    calls: dict[str, Call] = {
        "insert one": insert_one,
        "get by id": get,
        "update by id": change,
        "query 100 rows": query,
        "200 concurrent gets": concurrent,
        "bulk insert 10k": bulk,
    }
    return close, calls


# The bounds against Tortoise (asyncmy): >= 1.0x on single-row operations,
# >= 1.3x on bulk insert, 100-row reads and concurrent gets.
_TORTOISE_TARGETS = {
    "insert one": 1.0,
    "get by id": 1.0,
    "update by id": 1.0,
    "query 100 rows": 1.3,
    "200 concurrent gets": 1.3,
    "bulk insert 10k": 1.3,
}


async def _lines(
    group: str, ours: dict[str, Call], peer: dict[str, Call], rounds: int
) -> list[Result]:
    per_call = {"200 concurrent gets": CONCURRENT, "bulk insert 10k": BULK}
    calls = {"200 concurrent gets": 5 * rounds, "bulk insert 10k": 2 * rounds}
    out = []
    for name, fn in ours.items():
        target = _TORTOISE_TARGETS[name] if group == "tortoise" else None
        out.append(
            await interleaved(
                group,
                name,
                fn,
                peer[name],
                calls.get(name, OPS * rounds // 3),
                per_call.get(name, 1),
                target,
            )
        )
    return out


async def main(rounds: int = 3) -> list[Result]:
    """Ours against each peer that is installed (the ``bench`` extra)."""
    ids = [new_id() for _ in range(1000)]
    orm, model, ours = await _ours_calls(ids)
    results: list[Result] = []
    try:
        for group, make in (("tortoise", _tortoise_calls), ("sqlalchemy", _sqlalchemy_calls)):
            try:
                close, peer = await make(ids)
            except ImportError as exc:
                print(f"  {group} skipped: {exc} (pip install -e .[bench])")
                continue
            try:
                results += await _lines(group, ours, peer, rounds)
            finally:
                await close()
    finally:
        adapter, schema = await model.__meta__.target("main")
        await adapter.drop(schema)
        await orm.close()
    return results
