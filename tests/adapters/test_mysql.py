"""The mysql adapter on the real MariaDB/MySQL server: storage, drivers, pool guarantees.

Semantics shared with every adapter live in tests/conformance; the SQL-specific checks are
in ``_sql_cases.py``. The pool tests run their own registry on a dedicated database
(``<db>_pool``, dropped afterwards) so ``information_schema.PROCESSLIST`` can count exactly our connections,
watched from a separate raw aiomysql connection.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiomysql
import pytest

import diaspora_async as da
from diaspora_async.errors import ConfigError, ConnectionLost, PoolTimeout
from tests.targets.mysql import process_url

from . import _sql_cases as cases

pytestmark = pytest.mark.mysql


@pytest.fixture
async def url() -> str:
    return await process_url()


@pytest.fixture(params=["aiomysql", "asyncmy"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_differential_against_memory(url: str, driver: str) -> None:
    await cases.check_differential("mysql", {"url": url, "driver": driver})


async def test_hostile_input_stays_data(url: str, driver: str) -> None:
    await cases.check_hostile("mysql", {"url": url, "driver": driver})


async def test_batches(url: str, driver: str) -> None:
    # 3,000 rows of 1,000 characters exceed one statement's budget: several INSERTs, one
    # transaction, rolled back as a whole on the duplicate.
    await cases.check_batches("mysql", {"url": url, "driver": driver}, big=3000, text=1000)


async def test_cancelled_pipelined_insert_is_all_or_nothing(url: str, driver: str) -> None:
    await cases.check_cancelled_bulk("mysql", {"url": url, "driver": driver})


async def test_columns_are_typed_and_binary(url: str) -> None:
    async with cases.registry("mysql", {"url": url}) as (orm, model):
        adapter = orm.data_sources["main"].adapter
        await model.insert({"id": "t1", "s": "x", "n": 5})
        rows = await adapter._fetch(
            "SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'Kinds' ORDER BY ORDINAL_POSITION",
            (),
        )
        types = {name: (ctype.lower(), coll) for name, ctype, coll in rows}
        assert types["id"] == ("varchar(64)", "utf8mb4_nopad_bin")
        assert types["s"] == ("longtext", "utf8mb4_nopad_bin")
        assert types["slug"][0] == "varchar(768)"
        assert types["n col"][0] == "bigint(20)"
        assert types["d"][0] == "datetime(6)"
        assert types["b"][0] == "tinyint(1)"
        assert types["tag`s"][1] == "utf8mb4_bin"  # JSON: LONGTEXT + JSON_VALID in MariaDB
        ((zone,),) = await adapter._fetch("SELECT @@session.time_zone", ())
        assert zone == "+00:00"


def test_config_is_checked_without_io() -> None:
    orm = da.Diaspora()
    with pytest.raises(ConfigError):
        orm.create_data_source("a", "mysql", url="postgres://x/y")
    with pytest.raises(ConfigError):
        orm.create_data_source("b", "mysql", url="mysql://root@127.0.0.1:3306/")
    with pytest.raises(ConfigError):
        orm.create_data_source("c", "mysql", url="mysql://h/db", driver="mysqlclient")
    with pytest.raises(ConfigError):
        orm.create_data_source("d", "mysql", url="mysql://h/db", max_size=0)
    with pytest.raises(ConfigError):
        orm.create_data_source("e", "mysql", url="mysql://h/db", colour="red")
    source = orm.create_data_source("f", "mysql", host="h", port="3307", db="x", user="u")
    assert source.adapter._pool._settings["port"] == 3307  # type: ignore[attr-defined]


# -- pool guarantees on the real server ------------------------------------------------


class Server:
    """A raw connection watching the server, and the pool test's own database."""

    def __init__(self, conn: Any, url: str, db: str) -> None:
        self.conn = conn
        self.url = url
        self.db = db

    async def sql(self, query: str, args: Any = None) -> list[Any]:
        async with self.conn.cursor() as cur:
            await cur.execute(query, args)
            return list(await cur.fetchall())

    async def count(self) -> int:
        rows = await self.sql(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s", (self.db,)
        )
        return int(rows[0][0])

    async def settle(self, expected: Callable[[], int], seconds: float = 10.0) -> int:
        """Poll PROCESSLIST until it shows ``expected()`` connections (server closes lag)."""
        deadline = time.monotonic() + seconds
        while True:
            n = await self.count()
            if n == expected() or time.monotonic() > deadline:
                return n
            await asyncio.sleep(0.02)


@pytest.fixture
async def server(url: str) -> AsyncIterator[Server]:
    parts = urlsplit(url)
    db = (parts.path.lstrip("/") or "test") + "_pool"
    conn = await aiomysql.connect(
        host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
        password=parts.password or "", autocommit=True, init_command="SET sql_notes = 0",
    )  # fmt: skip
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{db}`")  # every test starts empty
            await cur.execute(f"CREATE DATABASE `{db}`")
        yield Server(conn, urlunsplit(parts._replace(path="/" + db)), db)
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    finally:
        conn.close()


@pytest.fixture
def pool_registry(server: Server) -> Callable[..., Any]:
    def make(**options: Any) -> tuple[da.Diaspora, Any]:
        orm = da.Diaspora()
        orm.create_data_source("main", "mysql", url=server.url, **options)

        class Item(orm.Model, sources=["main"]):
            n: int = 0

        return orm, Item

    return make


async def test_random_cancellations_leak_nothing(
    server: Server, pool_registry: Callable[..., Any]
) -> None:
    orm, item = pool_registry(max_size=10, acquire_timeout=30)
    rng = random.Random(20240501)
    async with orm:
        ds = orm.data_sources["main"]
        await item.insert_many([{"id": f"i{k}", "n": k} for k in range(50)])

        async def work(k: int) -> None:
            op = k % 4
            if op == 0:
                await item.find_many({"n": {">": k % 50}}, limit=20)
            elif op == 1:
                await item.insert({"n": k})
            elif op == 2:
                await item.update_many({"n": k % 50}, {"n": k % 50})
            else:
                await ds.adapter._fetch("SELECT SLEEP(0.01)", ())

        tasks = [asyncio.create_task(work(k)) for k in range(200)]
        for _ in range(80):  # cancel tasks still running, at random points
            await asyncio.sleep(rng.random() * 0.002)
            running = [t for t in tasks if not t.done()]
            if running:
                rng.choice(running).cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = sum(isinstance(o, asyncio.CancelledError) for o in outcomes)
        others = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(others) == cancelled and cancelled > 0
        stats = ds.stats()
        assert stats["discarded"] > 0  # some cancellations landed mid-query
        assert stats["in_use"] == 0 and stats["waiting"] == 0 and stats["opening"] == 0
        assert 0 < stats["size"] <= 10
        assert await server.settle(lambda: ds.stats()["size"]) == ds.stats()["size"]
        assert await item.count() >= 50  # still works
    assert await server.settle(lambda: 0) == 0


async def test_killed_connection_is_replaced(
    server: Server, pool_registry: Callable[..., Any], driver: str
) -> None:
    orm, item = pool_registry(max_size=1, health_check_interval=None, driver=driver)
    async with orm:
        ds = orm.data_sources["main"]
        await item.insert({"id": "k1"})
        ((victim,),) = await ds.adapter._fetch("SELECT CONNECTION_ID()", ())
        await server.sql(f"KILL CONNECTION {int(victim)}")
        assert await server.settle(lambda: 0) == 0
        await item.insert({"id": "k2"})  # a write: the dead connection is never used
        ((fresh,),) = await ds.adapter._fetch("SELECT CONNECTION_ID()", ())
        assert fresh != victim and ds.stats()["discarded"] == 1
        await server.sql(f"KILL CONNECTION {int(fresh)}")
        assert await server.settle(lambda: 0) == 0
        assert await item.count() == 2  # a read, too
        assert ds.stats()["size"] == 1


async def test_mid_query_kill_is_connection_lost(
    server: Server, pool_registry: Callable[..., Any]
) -> None:
    orm, item = pool_registry(max_size=2)
    async with orm:
        ds = orm.data_sources["main"]
        await item.insert({"id": "x"})
        ((victim,),) = await ds.adapter._fetch("SELECT CONNECTION_ID()", ())
        sleeper = asyncio.create_task(
            ds.adapter._run([("UPDATE Item SET n = SLEEP(5) WHERE id = %s", ["x"])])
        )
        deadline = time.monotonic() + 5
        while not await server.sql(
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = %s AND INFO LIKE 'UPDATE%%'",
            (victim,),
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await server.sql(f"KILL CONNECTION {int(victim)}")
        with pytest.raises(ConnectionLost) as info:
            await sleeper
        assert info.value.__cause__ is not None and info.value.source == "main"
        assert ds.stats()["in_use"] == 0
        assert await item.count() == 1


async def test_acquire_timeout(server: Server, pool_registry: Callable[..., Any]) -> None:
    orm, item = pool_registry(max_size=2, acquire_timeout=0.3)
    async with orm:
        ds = orm.data_sources["main"]
        pool = ds.adapter._pool
        async with pool.acquire(), pool.acquire():
            start = time.monotonic()
            with pytest.raises(PoolTimeout):
                await item.count()
            assert 0.25 <= time.monotonic() - start < 2.0
        assert await item.count() == 0
        assert ds.stats()["in_use"] == 0 and ds.stats()["timeouts"] == 1


async def test_close_returns_every_connection(
    server: Server, pool_registry: Callable[..., Any]
) -> None:
    orm, item = pool_registry(min_size=4, max_size=6)
    await orm.connect()
    ds = orm.data_sources["main"]
    await asyncio.gather(*(item.count() for _ in range(12)))
    assert await server.settle(lambda: ds.stats()["size"]) == ds.stats()["size"] >= 4
    await orm.close()
    assert ds.stats()["size"] == 0
    assert await server.settle(lambda: 0) == 0
