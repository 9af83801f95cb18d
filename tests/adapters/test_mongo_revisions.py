"""MongoDB specifics of revisions (DESIGN.md 6.1), on the wire-protocol test server.

The contract itself is ``tests/conformance/test_write_contract.py``; this file pins what
only the ``mongo`` adapter does to meet it: every compiled query, whether it carries a
``_del`` condition or relies on needing a field a tombstone lacks, matches what the
memory reference matches over rows and tombstones; the common path of ``write`` is one
command; a refused row whose insert attempt hits a unique index is refused, not an
error; tombstones are three keys; reads, updates and deletes leave tombstones alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

import diaspora_async as da
from diaspora_async.adapters.base import DELETED, REV, Adapter, CollectionSchema
from diaspora_async.adapters.mongo.filter import MongoFilterCompiler, requires_a_field
from diaspora_async.errors import IntegrityError, QueryError
from diaspora_async.query.ast import Query
from diaspora_async.revisions import next_revision
from tests.adapters.test_mongo import Commands
from tests.compile.test_mongo import CASES, WHEN
from tests.targets.mongo import scratch_database, with_database

pytestmark = pytest.mark.mongo

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


class Env:
    """``main`` on Mongo (scratch database), ``mem`` on memory, the model ``T`` on both."""

    def __init__(self, orm: da.Diaspora, raw: Any, commands: Commands) -> None:
        self.orm, self.raw, self.commands = orm, raw, commands
        self.T: Any = orm.models["T"]

    async def on(self, source: str) -> tuple[Adapter, CollectionSchema]:
        target: tuple[Adapter, CollectionSchema] = await self.T.__meta__.target(source)
        return target


def declare(orm: da.Diaspora) -> None:
    # the fields of the compiler snapshots' model, so their queries run here unchanged
    class T(orm.Model, sources={"main": {"n": "ncol"}, "mem": {}}, collection="t"):
        s: str | None = None
        n: int | None = None
        f: float | None = None
        b: bool | None = None
        d: datetime | None = None
        tags: list[str] = da.field(default_factory=list)
        la: list[Any] = da.field(default_factory=list)
        ld: list[dict[str, Any]] = da.field(default_factory=list)
        o: dict[str, Any] | None = None
        a: Any = None
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
                await orm.models["T"].count()  # ensure the schema before counting commands
                commands.names.clear()
                yield Env(orm, raw[database], commands)
        finally:
            await raw.close()


FIELDS = ("s", "n", "f", "b", "d", "tags", "la", "ld", "o", "a", "slug")


def full(entity_id: str, rev: str, **values: Any) -> dict[str, Any]:
    """A full row: every declared field, None (or an empty list) unless given."""
    base: dict[str, Any] = dict.fromkeys(FIELDS)
    base.update(tags=[], la=[], ld=[])
    return {"id": entity_id, REV: rev, **base, **values}


# Rows with values for the snapshot queries to find, some fields missing; and tombstones,
# which hold none of them: no query on declared fields may ever return one.
VALUES: list[dict[str, Any]] = [
    {"s": "x", "n": 3, "f": 1.5, "b": True, "d": WHEN, "tags": ["x", "y"], "o": {"k": 2}},
    {"s": "a.b*", "n": 1, "f": 0.0, "b": False, "tags": ["x"], "la": [[1]], "a": 3},
    {"s": "y", "n": 9, "ld": [{"a": 2, "b": 1}], "o": {"a": 1, "b": {"c": 2, "d": 3}}},
    {"a": "s", "la": [1, [1, 2]], "o": {"$where": "sleep(1000)"}},
    {"a": [1, 2], "d": WHEN + timedelta(days=1)},
    {"a": {"$gt": ""}, "tags": []},
    {},
]


async def store_rows_and_tombstones(env: Env) -> list[str]:
    """The same rows and tombstones on both sources; returns the tombstones' ids."""
    rev = next_revision()
    rows = [full(f"r{i}", rev, **v) for i, v in enumerate(VALUES)]
    tombs = [{"id": f"t{i}", REV: rev, DELETED: NOW} for i in range(3)]
    for source in ("main", "mem"):
        adapter, schema = await env.on(source)
        assert await adapter.write(schema, rows + tombs) == []
    return [t["id"] for t in tombs]


async def test_every_query_matches_like_the_reference_and_never_a_tombstone(env: Env) -> None:
    tombs = await store_rows_and_tombstones(env)
    (mongo, ms), (memory, mm) = await env.on("main"), await env.on("mem")
    meta = env.T.__meta__
    queries = [q for _, q, _ in CASES] + [{}, {"id": {"$in": ["r1", "t1"]}}, {"id": "t0"}]
    for query in queries:
        where = meta.where(query)
        on_mongo = sorted(r["id"] for r in await mongo.find(ms, Query(where, (), 0, None)))
        on_memory = sorted(r["id"] for r in await memory.find(mm, Query(where, (), 0, None)))
        assert on_mongo == on_memory, query
        assert not set(on_mongo) & set(tombs), query
        assert await mongo.count(ms, where) == len(on_memory), query


def test_the_tombstone_condition_is_left_out_only_where_a_field_is_needed() -> None:
    assert not requires_a_field({})
    assert not requires_a_field({"_id": {"$eq": "a"}})
    assert not requires_a_field({"_rev": {"$gte": "a"}})
    assert not requires_a_field({"s": {"$eq": None}})
    assert not requires_a_field({"s": {"$gte": None}})
    assert not requires_a_field({"s": {"$in": ["a", None]}})
    assert not requires_a_field({"s": {"$nin": ["a"]}})
    assert not requires_a_field({"$nor": [{"s": {"$eq": None}}]})
    assert not requires_a_field({"s": {"$not": {"$type": "array"}}})
    assert not requires_a_field({"$or": [{"s": {"$eq": "x"}}, {"_id": {"$eq": "a"}}]})
    assert requires_a_field({"s": {"$eq": "x"}})
    assert requires_a_field({"_id": {"$eq": "a"}, "s": {"$ne": None}})
    assert requires_a_field({"s": {"$nin": ["a", None]}})
    assert requires_a_field({"$or": [{"s": {"$eq": "x"}}, {"n": {"$gt": 1}}]})
    assert requires_a_field({"$and": [{"_id": {"$eq": "a"}}, {"tags": {"$type": "array"}}]})


async def test_update_delete_where_and_get_leave_tombstones_alone(env: Env) -> None:
    tombs = await store_rows_and_tombstones(env)
    adapter, schema = await env.on("main")
    assert await adapter.update(schema, [(tombs[0], {"s": "back"}), ("r0", {"s": "z"})]) == 1
    assert await env.raw["t"].find_one({"_id": tombs[0]}, {"_id": 0, "s": 1}) == {}
    (got,) = await adapter.get(schema, [tombs[0], "r0"])
    assert got == full("r0", got[REV], **{**VALUES[0], "s": "z"})
    assert await adapter.delete_where(schema, None) == len(VALUES)
    held = await adapter.revisions(schema, tombs)
    assert sorted(held) == tombs and all(dead for _, dead in held.values())


async def test_delete_counts_live_rows_removes_tombstones_and_is_one_command_when_all_live(
    env: Env,
) -> None:
    adapter, schema = await env.on("main")
    r1, r2 = next_revision(), next_revision()
    await adapter.write(schema, [full("a", r1), full("b", r1), full("c", r1)])
    await adapter.write(schema, [{"id": "c", REV: r2, DELETED: NOW}])
    env.commands.names.clear()
    assert await adapter.delete(schema, ["a", "b"]) == 2
    assert env.commands.names == ["delete"]
    assert await adapter.delete(schema, ["c", "nobody"]) == 0
    assert await adapter.revisions(schema, ["a", "b", "c"]) == {}


async def test_the_common_path_of_write_is_one_command(env: Env) -> None:
    adapter, schema = await env.on("main")
    rev = next_revision()
    rows = [full(f"e{i}", rev, n=i) for i in range(50)]
    env.commands.names.clear()
    assert await adapter.write(schema, rows) == []
    newer = next_revision(rev)
    assert await adapter.write(schema, [{**r, REV: newer} for r in rows], [rev] * 50) == []
    assert env.commands.names == ["update", "update"]
    env.commands.names.clear()
    assert await adapter.write(schema, rows) == [r["id"] for r in rows]  # all stale
    assert env.commands.names == ["update", "find"]  # one look at the stored revisions


async def test_a_refused_row_whose_insert_hits_a_unique_index_is_refused(env: Env) -> None:
    # SecantusDB checks the unique index before _id when the upsert tries to insert
    adapter, schema = await env.on("main")
    r1, r2, r3 = next_revision(), next_revision(), next_revision()
    await adapter.write(schema, [full("a", r2, slug="x"), full("b", r2, slug="y")])
    assert await adapter.write(schema, [full("a", r1, slug="y")]) == ["a"]
    assert await adapter.write(schema, [full("a", r2, slug="y")]) == []  # a replay
    with pytest.raises(IntegrityError):
        await adapter.write(schema, [full("a", r3, slug="y")])  # a newer one does clash
    assert (await adapter.get(schema, ["a"]))[0]["slug"] == "x"


async def test_plain_replaces_that_miss_are_found_by_their_stored_revisions(env: Env) -> None:
    adapter, schema = await env.on("main")
    r1, r2 = next_revision(), next_revision()
    await adapter.write(schema, [full("a", r1), full("b", r1), full("c", r1)])
    batch = [full("a", r2, n=1), full("b", r2, n=2), full("c", r2, n=3), full("d", r2)]
    assert await adapter.write(schema, batch, [r1, "other", None, None]) == ["b", "c"]
    # a replay of the rows that landed is not reported, whatever they expected
    assert await adapter.write(schema, [batch[0], batch[3]], [r1, None]) == []
    got = {r["id"]: r["n"] for r in await adapter.get(schema, ["a", "b", "c", "d"])}
    assert got == {"a": 1, "b": None, "c": None, "d": None}


async def test_a_tombstone_is_three_keys_and_a_null_revision_is_the_oldest(env: Env) -> None:
    adapter, schema = await env.on("main")
    r1, r2 = next_revision(), next_revision()
    await adapter.write(schema, [full("a", r1, s="x", slug="s")])
    await adapter.write(schema, [{"id": "a", REV: r2, DELETED: NOW}])
    assert await env.raw["t"].find_one({"_id": "a"}) == {"_id": "a", REV: r2, DELETED: NOW}
    await env.raw["t"].insert_one({"_id": "old", REV: None, "s": "legacy"})
    assert await adapter.revisions(schema, ["old"]) == {"old": (None, False)}
    assert await adapter.write(schema, [full("old", r1, s="new")], [""]) == []
    assert (await adapter.get(schema, ["old"]))[0]["s"] == "new"


def test_stored_names_the_adapter_uses_are_refused() -> None:
    for name in ("_rev", "_del", "_id"):
        with pytest.raises(QueryError):
            MongoFilterCompiler("T", {}, {"id": "id", "title": name})
    assert MongoFilterCompiler("T", {}, {"id": "id", REV: REV}).paths[REV] == REV


async def test_creates_are_inserts_and_an_older_tombstone_is_replaced(env: Env) -> None:
    adapter, schema = await env.on("main")
    r1, r2, r3, r4 = (next_revision() for _ in range(4))
    env.commands.names.clear()
    assert await adapter.write(schema, [full(f"n{i}", r1) for i in range(20)], [None] * 20) == []
    assert env.commands.names == ["insert"]  # no upsert on the common path of a create
    await adapter.write(schema, [{"id": "old", REV: r2, DELETED: NOW}])
    await adapter.write(schema, [{"id": "new", REV: r4, DELETED: NOW}])
    batch = [full("old", r3, s="again"), full("new", r3), full("n0", r3), full("fresh", r3)]
    env.commands.names.clear()
    assert await adapter.write(schema, batch, [None] * 4) == ["new", "n0"]
    assert env.commands.names == ["insert", "find", "update"]  # the tombstone replaced
    got = {r["id"]: r[REV] for r in await adapter.get(schema, ["old", "new", "n0", "fresh"])}
    assert got == {"old": r3, "n0": r1, "fresh": r3}


async def test_concurrent_writers_converge_on_the_newest_revision(env: Env) -> None:
    adapter, schema = await env.on("main")
    revs = [next_revision() for _ in range(12)]
    order = revs[::2] + revs[1::2]  # not in revision order

    async def one(rev: str) -> list[str]:
        return await adapter.write(schema, [full(f"k{j}", rev, s=rev) for j in range(5)])

    results = await asyncio.gather(*(one(rev) for rev in order))
    newest = max(revs)
    assert results[order.index(newest)] == []  # the newest write is never refused
    for got in await adapter.get(schema, [f"k{j}" for j in range(5)]):
        assert got[REV] == newest and got["s"] == newest
