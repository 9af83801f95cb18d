"""MongoDB adapter specifics, on the wire-protocol test server.

The conformance suite covers the public behaviour (on both the PyMongo and the motor
target); this file covers what only the ``mongo`` adapter has: hostile dict values and
``$`` keys staying data (checked against the memory reference on the same rows), the
stored document shape, one driver command per batch (seen through PyMongo's command
monitoring), the all-or-nothing insert, the indexes, error translation, the permit pool,
and a motor client handed in with ``client=``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, monitoring
from pymongo import errors as perr

import diaspora_async as da
from diaspora_async.adapters.mongo.adapter import MongoAdapter
from diaspora_async.errors import (
    ConfigError,
    ConnectionLost,
    DataSourceError,
    IntegrityError,
    PoolTimeout,
    QueryError,
)
from tests.targets.mongo import scratch_database, with_database

pytestmark = pytest.mark.mongo

T0 = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


class Commands(monitoring.CommandListener):
    """Records the name of every command the client sends."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("endSessions", "ping", "hello", "isMaster"):
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class Env:
    """A registry with ``main`` on Mongo (scratch database) and ``mem`` on memory."""

    def __init__(self, orm: da.Diaspora, raw: Any, commands: Commands) -> None:
        self.orm, self.raw, self.commands = orm, raw, commands
        self.adapter: MongoAdapter = orm.data_sources["main"].adapter  # type: ignore[assignment]
        self.H: Any = orm.models["H"]

    async def stored(self, entity_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.raw["H"].find_one({"_id": entity_id})
        return doc


def declare(orm: da.Diaspora) -> None:
    class H(orm.Model, sources=["main", "mem"]):
        name: str
        data: Any = None
        meta: dict[str, Any] | None = None
        items: list[Any] = da.field(default_factory=list)
        at: datetime | None = None
        status: str = da.field(default="draft", index=True)
        slug: str | None = da.field(default=None, unique=True)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with scratch_database() as (url, database):
        commands = Commands()
        orm = da.Diaspora()
        orm.create_data_source(
            "main", "mongo", url=with_database(url, database), max_size=4,
            client_options={"event_listeners": [commands]},
        )  # fmt: skip
        orm.create_data_source("mem", "memory")
        declare(orm)
        raw: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
        try:
            async with orm:
                await orm.models["H"].count()  # ensure the schema before tests count commands
                commands.names.clear()
                yield Env(orm, raw[database], commands)
        finally:
            await raw.close()


# -- user values are data -------------------------------------------------------------

HOSTILE: list[tuple[str, Any]] = [
    ("where", {"$where": "sleep(1000)"}), ("gt", {"$gt": ""}), ("ne", {"$ne": None}),
    ("plain", {"a": 1}), ("dotted", {"a.b": 1}), ("nested", {"x": {"$in": [1]}}),
    ("expr", {"$expr": {"$eq": [1, 1]}}), ("list", [{"$gt": ""}, 1]), ("str", ""),
    ("num", 5), ("none", None), ("lists", [[1, 2], 3]), ("truelist", [True]),
    ("onelist", [1]), ("order", {"b": 1, "a": 2}), ("regex", ".*"),
]  # fmt: skip

HOSTILE_QUERIES: list[tuple[dict[str, Any], set[str] | None]] = [
    ({"data": {"$equal": {"$where": "sleep(1000)"}}}, {"where"}),
    ({"data": {"$equal": {"$gt": ""}}}, {"gt"}),
    ({"data": {"$equal": {"$ne": None}}}, {"ne"}),
    ({"data": {"$equal": {"$expr": {"$eq": [1, 1]}}}}, {"expr"}),
    ({"data": {"$equal": {"a.b": 1}}}, {"dotted"}),
    ({"data": {"$equal": {"x": {"$in": [1]}}}}, {"nested"}),
    ({"data": {"$equal": {"a": 2, "b": 1}}}, {"order"}),
    ({"data": {"$diff": {"$gt": ""}}}, None),
    ({"data": {"$in": [{"$gt": ""}, {"$ne": None}]}}, {"gt", "ne"}),
    ({"data": {"$nin": [{"$gt": ""}, {"$ne": None}]}}, None),
    ({"data": {"$contains": {"$gt": ""}}}, {"list"}),
    ({"data": {"$contains": [1, 2]}}, {"lists"}),
    ({"data": {"$contains": 1}}, {"list", "onelist"}),
    ({"data": {"$contains": ".*"}}, {"regex"}),
    ({"data": {"$contains": ""}}, {"str", "regex"}),
    ({"data": [1, 2]}, set()),
    ({"data": [1]}, {"onelist"}),
    ({"data": [True]}, {"truelist"}),
    ({"data": 1}, set()),
    ({"data": {">": 1}}, {"num"}),
    ({"data": {"~": True}}, None),
    ({"data": None}, {"none"}),
    ({"$not": {"data": {"$equal": {"$gt": ""}}}}, None),
    ({"$xor": [{"data": {"$contains": 1}}, {"data": [1]}]}, {"list"}),
    ({"name": {"$contains": ".*"}}, set()),
    ({"name": {"$in": ["$where", "gt"]}}, {"gt"}),
    ({"meta": {"$equal": {"$gt": ""}}}, {"gt"}),
    ({"meta": {"$in": [{"$gt": ""}, {"a": 1}]}}, {"gt", "plain"}),
    ({"meta": {"$nin": [{"$where": "sleep(1000)"}]}}, None),
    ({"meta": {"!=": {"$ne": None}}}, None),
    ({"items": {"$contains": {"$ne": None}}}, {"ne"}),
]


async def test_hostile_values_match_literally_like_the_reference(env: Env) -> None:
    rows = [
        {"name": n, "data": v, "meta": v if isinstance(v, dict) else None,
         "items": [v] if isinstance(v, dict) else []}
        for n, v in HOSTILE
    ]  # fmt: skip
    await env.H.insert_many(rows, source=["main", "mem"])
    for query, expected in HOSTILE_QUERIES:
        on_mongo = {e.name for e in await env.H.find_many(query, source="main")}
        on_memory = {e.name for e in await env.H.find_many(query, source="mem")}
        assert on_mongo == on_memory, query
        if expected is not None:
            assert on_mongo == expected, query
        assert await env.H.count(query, source="main") == len(on_memory), query
    hostile = {"data": {"$equal": {"$where": "sleep(1000)"}}}
    assert await env.H.delete_many(hostile, source=["main", "mem"]) == 1
    assert await env.H.count(source="main") == len(HOSTILE) - 1


async def test_operator_keys_in_a_condition_are_refused_before_io(env: Env) -> None:
    for query in ({"data": {"$where": "sleep(1000)"}}, {"$where": "1"}, {"data": {"$gt": ""}}):
        with pytest.raises(QueryError):
            await env.H.find_many(query)
    assert env.commands.names == []


async def test_dollar_and_dotted_keys_round_trip_through_insert_and_update(env: Env) -> None:
    value = {"$set": {"x": 1}, "a.b": [{"$gt": ""}], "plain": None}
    e = await env.H.insert({"name": "k", "data": value, "meta": {"$where": "x"}})
    assert (await env.H.find(e.id)).data == value  # type: ignore[union-attr]
    await env.H.update(e.id, {"meta": {"$unset": {"a": ""}, "z.z": 2}})
    found = await env.H.find(e.id)
    assert found is not None and found.meta == {"$unset": {"a": ""}, "z.z": 2}
    assert found.data == value


# -- stored shape ---------------------------------------------------------------------


async def test_document_shape_none_is_absent_dicts_sorted_nested_none_kept(env: Env) -> None:
    e = await env.H.insert(
        {"name": "n", "data": [1, None, {"b": None, "a": 1}], "meta": {"z": 1, "y": {"d": 2, "c": 1}},
         "at": T0}
    )  # fmt: skip
    doc = await env.stored(e.id)
    assert doc is not None
    assert doc["_id"] == e.id and "id" not in doc
    assert "slug" not in doc and "status" in doc  # None is never stored
    assert list(doc["meta"]) == ["y", "z"] and list(doc["meta"]["y"]) == ["c", "d"]
    assert doc["data"] == [1, None, {"a": 1, "b": None}]
    assert doc["at"] == T0
    found = await env.H.find(e.id)
    assert found is not None and found.at == T0 and found.at.tzinfo is UTC
    assert found.data == [1, None, {"b": None, "a": 1}]
    await env.H.update(e.id, {"meta": None, "slug": "s"})
    doc = await env.stored(e.id)
    assert doc is not None and "meta" not in doc and doc["slug"] == "s"


# -- one command per batch, all or nothing --------------------------------------------


async def test_each_batch_is_one_command(env: Env) -> None:
    made = await env.H.insert_many([{"name": f"n{i}", "data": i} for i in range(30)])
    assert env.commands.names == ["insert"]  # new entities: plain inserts (the fresh hint)
    for i, e in enumerate(made[:5]):
        e.data = 100 + i  # five different entities: one bulk_write, one command
    env.commands.names.clear()
    await made[:5].persist()
    assert env.commands.names == ["update"]
    assert await env.H.count({"data": {">=": 100}}) == 5
    env.commands.names.clear()
    await env.H.update_many({"data": {"<": 10}}, {"status": "live"})
    assert env.commands.names == ["find", "update"]  # the read, then one guarded write
    env.commands.names.clear()
    assert await env.H.delete_many({"status": "live"}) == 5
    assert env.commands.names == ["find", "update"]  # tombstones are guarded writes too


async def test_batch_with_a_unique_clash_writes_nothing(env: Env) -> None:
    await env.H.insert({"name": "a", "slug": "taken"})
    with pytest.raises(IntegrityError) as info:
        await env.H.insert_many([{"name": "b"}, {"name": "c"}, {"name": "d", "slug": "taken"}])
    assert isinstance(info.value.__cause__, perr.BulkWriteError)
    assert [e.name for e in await env.H.find_many()] == ["a"]


async def test_update_into_a_unique_clash_is_an_integrity_error(env: Env) -> None:
    await env.H.insert({"name": "a", "slug": "x"})
    b = await env.H.insert({"name": "b", "slug": "y"})
    with pytest.raises(IntegrityError) as info:
        await env.H.update(b.id, {"slug": "x"})
    assert isinstance(info.value.__cause__, perr.PyMongoError)


async def test_indexes_are_built_idempotently_and_dropped_with_the_collection(env: Env) -> None:
    schema = env.H.__meta__.schema_for("main")
    await env.adapter.ensure_schema(schema)  # again: no error
    info = await env.raw["H"].index_information()
    assert info["status_1"]["key"] == [("status", 1)]
    assert info["slug_1"]["unique"] is True
    assert info["slug_1"]["partialFilterExpression"] == {"slug": {"$exists": True}}
    await env.adapter.drop(schema)
    assert "H" not in await env.raw.list_collection_names()


# -- errors -----------------------------------------------------------------------------


async def test_unreachable_server_is_connection_lost() -> None:
    adapter = MongoAdapter("gone", {"url": "mongodb://127.0.0.1:9/x", "connect_timeout": 0.3})
    with pytest.raises(ConnectionLost) as info:
        await adapter.connect()
    assert info.value.source == "gone"
    assert isinstance(info.value.__cause__, perr.ServerSelectionTimeoutError)
    await adapter.close()


@pytest.mark.parametrize("value", [2**70, {1: "a", "b": 2}], ids=["int-too-big", "int-key"])
async def test_values_the_server_cannot_hold_are_data_source_errors(env: Env, value: Any) -> None:
    with pytest.raises(DataSourceError) as info:
        await env.H.insert({"name": "big", "data": value}, source="main")
    assert not isinstance(info.value, IntegrityError | ConnectionLost)
    assert info.value.__cause__ is not None
    assert await env.H.count() == 0


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"url": "mongodb://h/db", "client": object()},
        {"url": "mongodb://127.0.0.1:27018"},
        {"url": "postgres://h/db"},
        {"url": "mongodb://h:99999/db"},
        {"url": "mongodb://h/db", "client_options": 5},
        {"url": "mongodb://h/db", "colour": "blue"},
        {"url": "mongodb://h/db", "max_size": 0},
    ],
)
def test_bad_config_is_a_config_error_without_io(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MongoAdapter("m", config)


async def test_bad_client_options_are_a_config_error_at_connect() -> None:
    adapter = MongoAdapter("m", {"url": "mongodb://127.0.0.1:9/x", "client_options": {"bogus": 1}})
    with pytest.raises(ConfigError, match="bogus"):
        await adapter.connect()
    await adapter.close()


# -- the permit pool --------------------------------------------------------------------


async def test_pool_limits_concurrency_and_times_out(env: Env) -> None:
    client = env.adapter._client
    assert client.options.pool_options.max_pool_size == 4
    stats = env.orm.data_sources["main"].stats()
    assert {"size", "in_use", "idle", "waiting"} <= stats.keys()
    tight = MongoAdapter(
        "tight", {"url": with_database("mongodb://127.0.0.1:27018", "unused"),
                  "max_size": 1, "acquire_timeout": 0.2},
    )  # fmt: skip
    tight._client = client  # share the env's client: no new sockets needed
    tight._own_client = False
    await tight.connect()
    try:
        async with tight._pool.acquire():  # the only permit is out
            assert tight.stats()["in_use"] == 1
            with pytest.raises(PoolTimeout):
                await tight.ping()
        await tight.ping()
        assert tight.stats()["in_use"] == 0 and tight.stats()["timeouts"] == 1
    finally:
        await tight.close()


async def test_cancelled_operations_leave_the_pool_clean(env: Env) -> None:
    made = await env.H.insert_many([{"name": f"c{i}", "data": i} for i in range(20)])
    rng = random.Random(7)

    async def read(i: int) -> int:
        found = await env.H.find(made[i].id)
        assert found is not None
        return int(found.data)

    for _ in range(3):
        tasks = [asyncio.create_task(read(i)) for i in range(20)]
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)  # let some tasks reach the driver before cancelling
        for t in tasks:
            if rng.random() < 0.5:
                t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(r == i for i, r in enumerate(results) if not isinstance(r, BaseException))
        stats = env.orm.data_sources["main"].stats()
        assert stats["in_use"] == 0 and stats["waiting"] == 0
    assert [await read(i) for i in range(20)] == list(range(20))


# -- motor -----------------------------------------------------------------------------


async def test_motor_client_is_used_not_closed_and_gives_the_default_database() -> None:
    async with scratch_database() as (url, database):
        client: Any = AsyncIOMotorClient(with_database(url, database))
        try:
            orm = da.Diaspora()
            orm.create_data_source("main", "mongo", client=client)  # database from the URL
            orm.create_data_source("mem", "memory")
            declare(orm)
            H: Any = orm.models["H"]
            async with orm:
                assert orm.data_sources["main"].adapter.database == database  # type: ignore[attr-defined]
                e = await H.insert({"name": "m", "at": T0, "meta": {"b": 1, "a": 2}})
                found = await H.find(e.id)
                assert (
                    found is not None and found.at.tzinfo is UTC and found.meta == {"a": 2, "b": 1}
                )
            assert await client[database]["H"].count_documents({}) == 1  # still open
        finally:
            client.close()
