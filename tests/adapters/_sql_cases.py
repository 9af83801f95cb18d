"""Checks shared by the SQL adapters' own tests (``test_sqlite.py``, ``test_mysql.py``).

These cover what is specific to storing JSON-like values and user input in SQL: a
differential run of tricky queries against the memory reference (bools vs numbers,
``1`` vs ``1.0``, nested lists, trailing spaces, code-point order, missing values under
``Not``/``Xor``), hostile identifiers and values, remapped columns, and the batching
rules (grouped updates, all-or-nothing bulk inserts, cancelled pipelined inserts).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.errors import IntegrityError, QueryError

HOSTILE = "x'; DROP TABLE t; --"

ROWS: list[dict[str, Any]] = [
    {"id": "r01", "s": "a", "n": 1, "f": 1.0, "b": True, "tags": ["a", "b"], "o": {"k": 1},
     "a": 1, "d": datetime(2024, 1, 1, tzinfo=UTC)},
    {"id": "r02", "s": "a ", "n": 2, "f": 1.5, "b": False, "tags": [], "o": {"k": 1.0, "j": [1]},
     "a": True, "d": datetime(2024, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)},
    {"id": "r03", "s": "A", "n": None, "f": None, "b": None, "tags": ["A"], "o": None,
     "a": "1", "d": None},
    {"id": "r04", "s": "ä", "n": -5, "f": -0.5, "b": True, "tags": ["a b", "é"],
     "o": {"k": [True, 1]}, "a": [1, True, "x", [1, 2], {"z": 1}], "d": datetime(1999, 12, 31, tzinfo=UTC)},
    {"id": "r05", "s": "😀", "n": 10, "f": 2.0, "b": False, "tags": ["b"], "o": {},
     "a": 1.0, "d": datetime(2030, 6, 1, 12, tzinfo=UTC)},
    {"id": "r06", "s": "", "n": 0, "f": 0.0, "b": None, "tags": ["x'; DROP TABLE t; --"],
     "o": {"$gt": ""}, "a": {"k": "v"}, "d": None},
    {"id": "r07", "s": None, "n": 3, "f": 3.25, "b": True, "tags": ["a", "a"], "o": {"k": "1"},
     "a": [[1, 2]], "d": datetime(2024, 1, 2, tzinfo=UTC)},
    {"id": "r08", "s": "B", "n": 1, "f": None, "b": False, "tags": ["`q`", '"d"'], "o": {"k": True},
     "a": "xyz", "d": None},
    {"id": "r09", "s": "b", "n": None, "f": 1.0, "b": None, "tags": ["1"], "o": None,
     "a": None, "d": datetime(2024, 1, 1, tzinfo=UTC)},
    {"id": "r10", "s": "ab", "n": 7, "f": 7.0, "b": True, "tags": ["true"], "o": {"k": [1, 2]},
     "a": [1.0, 2], "d": None},
]  # fmt: skip

QUERIES: list[dict[str, Any]] = [
    {"s": "a"}, {"s": "a "}, {"s": {"!=": "a"}}, {"s": None}, {"s": {"~": True}},
    {"s": {"$in": ["a", "A", None]}}, {"s": {"$nin": ["a", "b"]}}, {"s": {"$contains": "a"}},
    {"s": {"$contains": ""}}, {"s": {"$contains": "A"}}, {"s": {"!": "a"}},
    {"n": 1}, {"n": {">": 1}}, {"n": {"<=": 1}}, {"n": {"!": {">": 1}}}, {"n": {"$nin": [1]}},
    {"f": 1}, {"f": {">=": 1, "<": 3}}, {"b": True}, {"b": False}, {"b": {"!=": True}},
    {"b": {"!": True}}, {"tags": ["a", "b"]}, {"tags": []}, {"tags": {"$contains": "a"}},
    {"tags": {"$contains": "1"}}, {"tags": {"$contains": "a b"}},
    {"tags": {"$contains": HOSTILE}}, {"tags": {"$contains": "`q`"}},
    {"tags": {"$contains": '"d"'}}, {"tags": {"!": {"$contains": "a"}}},
    {"o": {"k": 1}}, {"o": {"k": 1.0, "j": [1]}}, {"o": {"$equal": {"$gt": ""}}}, {"o": {}},
    {"o": {"k": [True, 1]}}, {"o": {"!=": {"k": 1}}},
    {"a": 1}, {"a": True}, {"a": "1"}, {"a": [[1, 2]]}, {"a": {"k": "v"}}, {"a": [1.0, 2]},
    {"a": {"$contains": 1}}, {"a": {"$contains": True}}, {"a": {"$contains": "x"}},
    {"a": {"$contains": [1, 2]}}, {"a": {"$contains": {"z": 1}}}, {"a": {">": 0}},
    {"a": {"<": 1.5}}, {"a": {"$in": [1, "xyz"]}}, {"a": {"!": 1}},
    {"d": {">": datetime(2024, 1, 1, tzinfo=UTC)}}, {"d": {"<=": datetime(2024, 1, 1, tzinfo=UTC)}},
    {"d": datetime(2024, 1, 1, tzinfo=UTC)},
    {"$not": {"s": "a"}}, {"$xor": [{"s": "a"}, {"n": 1}]}, {"$xor": [{"b": True}, {"f": None}, {"n": 1}]},
    {"$or": [{"s": {"$contains": "b"}}, {"$not": {"n": {">": 2}}}]},
    {"$and": [{"$not": {"tags": {"$contains": "a"}}}, {"$not": {"b": None}}]},
]  # fmt: skip

SORTS: list[Any] = ["s", "-s", "n", "-n", "f", "-b", "d", "-d", ["b", "-n"], ["-s", "d"]]


def declare(orm: da.Diaspora) -> type[Any]:
    """A model with one field of every kind, two of them remapped in ``main``."""

    class Kinds(orm.Model, sources={"main": {"n": "n col", "tags": "tag`s"}, "ref": True}):
        s: str | None = None
        n: int | None = None
        f: float | None = None
        b: bool | None = None
        d: datetime | None = None
        tags: list[str] = da.field(default_factory=list)
        o: dict[str, Any] | None = None
        a: Any = None
        slug: str | None = da.field(default=None, unique=True)
        rank: int | None = da.field(default=None, index=True)

    return Kinds


@asynccontextmanager
async def registry(label: str, config: dict[str, Any]) -> AsyncIterator[tuple[da.Diaspora, Any]]:
    """A connected registry with ``main`` on the adapter and ``ref`` on memory."""
    orm = da.Diaspora()
    orm.create_data_source("main", label, **config)
    orm.create_data_source("ref", "memory")
    model = declare(orm)
    await orm.connect()
    adapter = orm.data_sources["main"].adapter
    schema = model.__meta__.schema_for("main")
    await adapter.drop(schema)
    orm.data_sources["main"].forget_schema(model.__meta__.name)
    try:
        yield orm, model
    finally:
        try:
            await adapter.drop(schema)
        finally:
            await orm.close()


async def check_differential(label: str, config: dict[str, Any]) -> None:
    """Every query and sort gives the memory reference's ids, in its order."""
    async with registry(label, config) as (_, model):
        await model.insert_many(ROWS, source=da.ALL)
        for query in QUERIES:
            for sort in (None, "-n"):
                ours = await model.find_many(query, sort=sort, source="main")
                ref = await model.find_many(query, sort=sort, source="ref")
                assert [e.id for e in ours] == [e.id for e in ref], (query, sort)
            assert await model.count(query, source="main") == await model.count(query, source="ref")
        for sort in SORTS:
            ours = await model.find_many(sort=sort, skip=1, limit=8, source="main")
            ref = await model.find_many(sort=sort, skip=1, limit=8, source="ref")
            assert [e.id for e in ours] == [e.id for e in ref], sort
        stored = {e.id: e.to_dict() for e in await model.find_many(source="main")}
        expected = {e.id: e.to_dict() for e in await model.find_many(source="ref")}
        assert stored == expected
        for row in stored.values():
            for name in ("b", "n"):
                value = row[name]
                assert value is None or type(value) is type(ROWS[0][name]), (name, value)


async def check_hostile(label: str, config: dict[str, Any]) -> None:
    """Hostile names are refused before I/O; hostile values stay data."""
    async with registry(label, config) as (orm, model):
        ds = orm.data_sources["main"]
        with pytest.raises(QueryError):
            await model.find_many({HOSTILE: 1})
        with pytest.raises(QueryError):
            await model.find_many(sort=HOSTILE)
        with pytest.raises(QueryError):
            await model.find_many(sort="-" + HOSTILE)
        with pytest.raises(QueryError):
            await model.count({"s": {HOSTILE: 1}})
        assert ds.stats()["in_use"] == 0
        values = [
            HOSTILE,
            "`; DROP TABLE t; --",
            '"; DROP TABLE t; --',
            "%s %(x)s %%",
            "\\'",
            "\x00?",
        ]
        for i, v in enumerate(values):
            await model.insert({"id": f"h{i}", "s": v, "o": {"$gt": "", v: v}, "tags": [v]})
        for i, v in enumerate(values):
            query = {"s": v, "o": {"$equal": {"$gt": "", v: v}}, "tags": {"$contains": v}}
            hits = await model.find_many(query)
            assert [e.id for e in hits] == [f"h{i}"]
            got = await model.find(f"h{i}")
            assert got is not None and got.s == v and got.o == {"$gt": "", v: v}
        with pytest.raises(QueryError):  # a dict that looks like operators must say $equal
            await model.count({"o": {"$gt": ""}})
        assert await model.count({"o": {"$equal": {"$gt": ""}}}) == 0
        assert await model.count() == len(values)  # the table is still there


async def check_batches(label: str, config: dict[str, Any], big: int, text: int = 50) -> None:
    """Grouped updates count matched rows; a bulk insert with a duplicate writes nothing."""
    async with registry(label, config) as (orm, model):
        ds = orm.data_sources["main"]
        adapter, schema = ds.adapter, model.__meta__.schema_for("main")
        await model.insert_many([{"id": f"u{i}", "n": i} for i in range(5)])
        same = {"n": 7}  # unchanged values still count as matched (FOUND_ROWS)
        assert (
            await adapter.update(schema, [(f"u{i}", same) for i in range(5)] + [("nope", same)])
            == 5
        )
        assert await adapter.update(schema, [("u0", same), ("u1", {"n": None, "s": "x"})]) == 2
        assert (await model.find("u1")).n is None  # type: ignore[union-attr]
        assert await model.update_many({"n": 7}, {"s": "y"}) is not None
        assert await model.count({"s": "y"}) == 4
        assert await adapter.delete(schema, ["u0", "u0", "nope"]) == 1
        assert await model.delete_many({"s": "y"}) == 3
        assert await adapter.delete_where(schema, None) == 1  # u1 was left
        rows = [{"id": f"b{i:06d}", "s": "x" * text, "tags": ["t"], "n": i} for i in range(big)]
        rows.append({"id": "b000003", "s": "dup"})
        before = ds.stats()["discarded"]
        with pytest.raises(IntegrityError) as info:
            await adapter.insert(schema, rows)
        assert info.value.__cause__ is not None and info.value.source == "main"
        assert await model.count() == 0  # all or nothing
        assert ds.stats()["discarded"] == before  # the connection was kept
        await adapter.insert(schema, rows[:-1])
        assert await model.count() == big
        await model.insert({"id": "s1", "slug": "one"})
        with pytest.raises(IntegrityError):
            await model.insert({"id": "s2", "slug": "one"})
        assert ds.stats()["discarded"] == before


async def check_cancelled_bulk(label: str, config: dict[str, Any]) -> None:
    """A pipelined bulk insert cancelled at any point writes all or nothing and leaks nothing.

    With ``chunk_rows`` at 50, 600 rows go as 12 INSERTs in one transaction, the next
    encoded while the engine writes the previous. Cancelling after a growing number of
    event-loop turns lands before, during and after the pipeline.
    """
    async with registry(label, config) as (orm, model):
        ds = orm.data_sources["main"]
        ds.adapter.chunk_rows = 50
        landed_mid_pipeline = 0
        for turns in range(0, 120, 6):
            before = await model.count()
            task = asyncio.create_task(model.insert_many([{"n": i} for i in range(600)]))
            for _ in range(turns):
                await asyncio.sleep(0)  # one event-loop turn: the pipeline advances a step
            landed_mid_pipeline += ds.stats()["in_use"] > 0
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            written = await model.count() - before
            assert written in (0, 600), f"cancelled after {turns} turns: {written} rows"
            assert ds.stats()["in_use"] == 0
        assert landed_mid_pipeline > 0
        await model.insert_many([{"n": i} for i in range(120)])  # the pool still works
        assert await model.count({"n": {">=": 0}}) >= 120
