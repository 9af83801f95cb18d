"""A hung store fails its part with ``OperationTimeout`` in time, and the source recovers.

Every networked adapter (MySQL through both drivers, Redis, Mongo, HTTP to a real uvicorn
server) sits behind a loopback ``FaultProxy`` that is switched to black-hole mode: it
keeps accepting and reading, answers nothing, closes nothing (a frozen server, a dropped
route). Each data source has ``timeout=0.5``; reads and writes must fail within the
timeout plus a margin (a bound on the elapsed time, never a sleep), the stuck connections
must be discarded, and after ``heal()`` the same data source must work again. A fan-out
under ``on_error="queue"`` must queue the hung source's part and deliver it on replay.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import diaspora_async as da
from diaspora_async.server import create_app
from tests.faults.proxy import FaultProxy
from tests.targets import mongo as mongo_target
from tests.targets import mysql as mysql_target
from tests.targets import redis as redis_target
from tests.targets.http_uvicorn import serve

T = 0.5  # every data source's timeout here
MARGIN = 1.5  # generous: a loaded CI machine, not the expected delay
FAST = {"connect_timeout": 5, "close_timeout": 1, "timeout": T}


def via(url: str, port: int) -> str:
    """``url`` pointed at a proxy on 127.0.0.1:``port``."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{auth + '@' if auth else ''}127.0.0.1:{port}"))


@contextmanager
def bounded(limit: float = T + MARGIN) -> Iterator[None]:
    """Assert the block took less than ``limit`` seconds (whatever it raised)."""
    start = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - start
        assert took < limit, f"took {took:.2f} s, bound {limit:.2f} s"


async def recovered(read: Callable[[], Awaitable[Any]], within: float = 5.0) -> Any:
    """``read()`` once the store answers again, retried (reads are repeatable) for up to
    ``within`` seconds: PyMongo, whose monitor socket the heal reset, re-discovers the
    server before it selects it again (its heartbeat runs every 0.5 s when asked), and
    that can take longer than one ``timeout``. Every other store answers the first try."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        try:
            return await read()
        except (da.OperationTimeout, da.ConnectionLost):
            if loop.time() >= end:
                raise


@asynccontextmanager
async def _http_server() -> AsyncIterator[str]:
    """A real uvicorn server (its own registry, on memory) serving ``Hung``."""
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")

    class Hung(orm.Model, sources=["main"]):
        name: str
        n: int = 0

    async with orm, serve(create_app(orm, ["Hung"], prefix="/api", allow_empty_query=True)) as url:
        yield url


@asynccontextmanager
async def behind_proxy(kind: str) -> AsyncIterator[tuple[str, dict[str, Any], FaultProxy]]:
    """Yield ``(adapter label, config through the proxy, proxy)`` for one store kind."""
    if kind.startswith("mysql"):
        parts = urlsplit(mysql_target.mysql_url())
        async with mysql_target.TARGET.open() as config:
            proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 3306)
            async with proxy.running() as port:
                driver = kind.partition("-")[2]
                yield "mysql", {**config, "url": via(config["url"], port), "driver": driver}, proxy
    elif kind == "redis":
        parts = urlsplit(redis_target.redis_url())
        async with redis_target.TARGET.open() as config:
            proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
            async with proxy.running() as port:
                yield "redis", {**config, "url": via(config["url"], port)}, proxy
    elif kind == "mongo":
        parts = urlsplit(mongo_target.mongo_url())
        async with mongo_target.TARGET.open() as config:
            proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 27017)
            async with proxy.running() as port:
                url = via(config["url"], port)
                yield (
                    "mongo",
                    {**config, "url": url, "client_options": {"directConnection": True}},
                    proxy,
                )
    else:
        async with _http_server() as url:
            parts = urlsplit(url)
            proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80)
            async with proxy.running() as port:
                yield "http", {"base_url": via(url, port) + "/api", "retries": 0}, proxy


KINDS = [
    pytest.param("mysql-aiomysql", marks=pytest.mark.mysql),
    pytest.param("mysql-asyncmy", marks=pytest.mark.mysql),
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("mongo", marks=pytest.mark.mongo),
    pytest.param("http", marks=pytest.mark.http),
]


def declare(orm: da.Diaspora) -> Any:
    class Hung(orm.Model, sources=["s"]):
        name: str
        n: int = 0

    return Hung


async def _drop(model: Any, source: str) -> None:
    adapter, schema = await model.__meta__.target(source)
    await adapter.drop(schema)


async def _fresh(orm: da.Diaspora, model: Any, source: str) -> None:
    """An empty collection, whatever an earlier run left (then created again)."""
    await _drop(model, source)
    orm.data_sources[source].forget_schema(model.__meta__.name)
    await model.__meta__.target(source)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_hung_store_times_out_and_the_source_recovers(kind: str) -> None:
    async with behind_proxy(kind) as (label, config, proxy):
        orm = da.Diaspora()
        orm.create_data_source("s", label, **config, **FAST)
        Hung = declare(orm)
        await orm.connect()
        try:
            await _fresh(orm, Hung, "s")
            await Hung.insert({"id": "a", "name": "before"})
            assert (await Hung.find("a")).name == "before"  # a pooled, warm connection
            ds = orm.data_sources["s"]
            discarded = ds.adapter.stats()["discarded"]

            proxy.blackhole = True
            with bounded(), pytest.raises(da.OperationTimeout) as read:
                await Hung.find("a")
            e = Hung.spawn(id="b", name="during")
            with bounded(), pytest.raises(da.OperationTimeout) as write:
                await e.persist()
            for err in (read.value, write.value):
                assert isinstance(err, da.DataSourceError)
                assert err.source == "s" and err.timeout == T
                assert "timeout=0.5" in str(err)
            stats = ds.adapter.stats()
            # the warm connection the read hung on (the write's new one never finished opening)
            assert stats["in_use"] == 0 and stats["discarded"] >= discarded + 1
            assert proxy.swallowed > 0  # the requests did reach the black hole

            proxy.heal()
            assert (await recovered(lambda: Hung.find("a"))).name == "before"
            # The timed-out write's outcome was unknown; persisting again is safe either way.
            await Hung.spawn(id="c", name="after").persist()
            assert {x.id for x in await Hung.find_many()} >= {"a", "c"}
            assert ds.adapter.stats()["in_use"] == 0
            await _drop(Hung, "s")
        finally:
            proxy.heal()
            await orm.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_connect_to_a_hung_server_fails_within_the_timeout(kind: str) -> None:
    async with behind_proxy(kind) as (label, config, proxy):
        orm = da.Diaspora()
        orm.create_data_source("s", label, **config, **FAST)
        declare(orm)
        proxy.blackhole = True
        try:
            with bounded(), pytest.raises(da.OperationTimeout) as info:
                await orm.connect()
            assert info.value.source == "s"
        finally:
            proxy.heal()
            await orm.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_caller_cancellation_during_a_hung_operation_stays_cancelled(kind: str) -> None:
    async with behind_proxy(kind) as (label, config, proxy):
        orm = da.Diaspora()
        orm.create_data_source("s", label, **{**config, **FAST, "timeout": 5})
        Hung = declare(orm)
        await orm.connect()
        try:
            await _fresh(orm, Hung, "s")
            await Hung.insert({"id": "a", "name": "x"})
            proxy.blackhole = True
            task = asyncio.create_task(Hung.find("a"))
            # Poll until the request is stuck in the black hole (the proxy's counter is the
            # only signal: nothing in the adapter says "sent, waiting").
            while proxy.swallowed == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            with bounded(1.0):
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            stats = orm.data_sources["s"].adapter.stats()
            assert stats["in_use"] == 0 and stats["waiting"] == 0
            proxy.heal()
            assert (await recovered(lambda: Hung.find("a"))).name == "x"
            await _drop(Hung, "s")
        finally:
            proxy.heal()
            await orm.close()


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["aiomysql", "asyncmy"])
async def test_fan_out_queues_the_hung_source_and_replay_delivers(driver: str) -> None:
    async with behind_proxy(f"mysql-{driver}") as (_, config, proxy):
        with tempfile.TemporaryDirectory(prefix="diaspora-timeouts-") as tmp:
            orm = da.Diaspora()
            orm.create_data_source("local", "sqlite", path=str(Path(tmp) / "local.db"))
            orm.create_data_source("box", "sqlite", path=str(Path(tmp) / "box.db"))
            orm.create_data_source("db", "mysql", **config, **FAST)
            orm.use_outbox("box")

            class Fanned(orm.Model, sources=["local", "db"], on_error="queue"):
                name: str
                n: int = 0

            await orm.connect()
            try:
                await _fresh(orm, Fanned, "db")
                proxy.blackhole = True
                e = Fanned.spawn(name="one", n=1)
                with bounded(), pytest.raises(da.FanOutError) as info:
                    await e.persist(da.ALL)
                err = info.value
                assert list(err.failed) == ["db"]
                assert isinstance(err.failed["db"], da.OperationTimeout)
                assert err.queued == ["db"] and err.succeeded == ["local"]
                assert (await Fanned.find(e.id, source="local")).name == "one"

                proxy.heal()
                await orm.replay_outbox()
                assert await orm.outbox.pending() == []
                here = await Fanned.find(e.id, source="local")
                there = await Fanned.find(e.id, source="db")
                assert there is not None and here is not None
                assert there.attributes == here.attributes
                assert there.revision == here.revision == e.revision
                await _drop(Fanned, "db")
            finally:
                proxy.heal()
                await orm.close()
