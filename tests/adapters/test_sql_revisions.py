"""Revisions in the SQL adapters, beyond the shared contract (``test_write_contract.py``).

Tables created before revisions existed are upgraded by ``ensure_schema``; batches larger
than one statement (pipelined chunks) report exactly the refused rows; MySQL's refusal
flag (the upsert's insert id) starts clear in every statement, so a refusal does not
send later writes down the slow path; a unique conflict inside a batch undoes the whole
batch. Runs on SQLite (file and ``:memory:``) and MariaDB/MySQL with both drivers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import DELETED, REV, Adapter, CollectionSchema
from diaspora_async.revisions import next_revision
from tests.targets.mysql import process_url

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# The DDL the adapters used before revisions (commit 84996ee), for a model ``Legacy``
# with ``name: str`` (indexed) and ``n: int``.
OLD_DDL = {
    "sqlite": [
        'CREATE TABLE "Legacy" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT, "n" INTEGER) '
        "WITHOUT ROWID",
        'CREATE INDEX "ix_Legacy_name" ON "Legacy" ("name")',
    ],
    "mysql": [
        "CREATE TABLE `Legacy` (`id` VARCHAR(64) NOT NULL PRIMARY KEY, `name` VARCHAR(768), "
        "`n` BIGINT, KEY `ix_Legacy_name` (`name`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
        "COLLATE=utf8mb4_nopad_bin",
    ],
}


@pytest.fixture(
    params=[
        pytest.param(("sqlite", "file"), marks=pytest.mark.sqlite, id="sqlite-file"),
        pytest.param(("sqlite", "memory"), marks=pytest.mark.sqlite, id="sqlite-memory"),
        pytest.param(("mysql", "aiomysql"), marks=pytest.mark.mysql, id="mysql-aiomysql"),
        pytest.param(("mysql", "asyncmy"), marks=pytest.mark.mysql, id="mysql-asyncmy"),
    ]
)
async def source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    label, variant = request.param
    if label == "sqlite":
        path = ":memory:" if variant == "memory" else str(tmp_path / "t.db")
        return label, {"path": path}
    return label, {"url": await process_url(), "driver": variant}


@asynccontextmanager
async def opened(
    label: str, config: dict[str, Any], old: bool = False
) -> AsyncIterator[tuple[Adapter, CollectionSchema, Any]]:
    """A registry with model ``Legacy`` on ``main``; ``old``: its table is first created
    by hand with the pre-revision DDL and holds one row, ``("old", "before", 1)``."""
    orm = da.Diaspora()
    orm.create_data_source("main", label, **config)

    class Legacy(orm.Model, sources=["main"]):
        name: str = da.field(index=True)
        n: int = 0

    class Unique(orm.Model, sources=["main"]):
        slug: str | None = da.field(default=None, unique=True)

    await orm.connect()
    adapter: Adapter = orm.data_sources["main"].adapter
    schemas = [m.__meta__.schema_for("main") for m in (Legacy, Unique)]
    try:
        for model in (Legacy, Unique):
            await adapter.drop(model.__meta__.schema_for("main"))
            orm.data_sources["main"].forget_schema(model.__meta__.name)
        if old:
            await adapter._script(OLD_DDL[label])  # type: ignore[attr-defined]
            p = adapter.dialect.param  # type: ignore[attr-defined]
            await adapter._run(  # type: ignore[attr-defined]
                [(f"INSERT INTO Legacy (id, name, n) VALUES ({p}, {p}, {p})", ["old", "before", 1])]
            )
        adapter_, schema = await Legacy.__meta__.target("main")
        yield adapter_, schema, Unique
    finally:
        try:
            for schema in schemas:
                await adapter.drop(schema)
        finally:
            await orm.close()


def legacy(entity_id: str, rev: str, **values: Any) -> dict[str, Any]:
    return {"id": entity_id, REV: rev, "name": "x", "n": 0, **values}


async def test_a_table_from_before_revisions_is_upgraded(
    source: tuple[str, dict[str, Any]],
) -> None:
    label, config = source
    async with opened(label, config, old=True) as (adapter, schema, _):
        (got,) = await adapter.get(schema, ["old"])
        assert got == {"id": "old", REV: None, "name": "before", "n": 1}
        assert await adapter.count(schema, None) == 1
        assert await adapter.revisions(schema, ["old"]) == {"old": (None, False)}
        r1, r2 = next_revision(), next_revision()
        assert await adapter.write(schema, [legacy("old", r1, name="after", n=2)]) == []
        (got,) = await adapter.get(schema, ["old"])
        assert got == {"id": "old", REV: r1, "name": "after", "n": 2}
        assert await adapter.write(schema, [{"id": "old", REV: r2, DELETED: NOW}]) == []
        assert await adapter.get(schema, ["old"]) == []
        # ensuring again (another registry, a restart) finds the columns there
        await adapter.ensure_schema(schema)
        assert await adapter.revisions(schema, ["old"]) == {"old": (r2, True)}


async def test_pipelined_batches_report_exactly_the_refused_rows(
    source: tuple[str, dict[str, Any]],
) -> None:
    label, config = source
    async with opened(label, config) as (adapter, schema, _):
        n = 2500  # three chunks of at most 1,000 rows, pipelined
        old, mid, new = next_revision(), next_revision(), next_revision()
        rows = [legacy(f"e{i:05d}", old, n=i) for i in range(n)]
        assert await adapter.write(schema, rows) == []
        # newer copies (and tombstones) for every 7th row, most of them in the last chunk
        ahead = {f"e{i:05d}" for i in range(0, n, 7)} | {f"e{i:05d}" for i in range(2100, 2200)}
        newer = [
            {"id": i, REV: new, DELETED: NOW} if k % 2 else legacy(i, new, n=-1)
            for k, i in enumerate(sorted(ahead))
        ]
        assert await adapter.write(schema, newer) == []
        batch = [legacy(f"e{i:05d}", mid, n=i + 1) for i in range(n)]
        assert sorted(await adapter.write(schema, batch)) == sorted(ahead)
        live = await adapter.count(schema, None)
        assert live == n - len([r for r in newer if DELETED in r])


async def test_a_refusal_does_not_slow_the_next_write(source: tuple[str, dict[str, Any]]) -> None:
    label, config = source
    async with opened(label, config) as (adapter, schema, _):
        r1, r2, r3 = next_revision(), next_revision(), next_revision()
        await adapter.write(schema, [legacy("a", r2), legacy("b", r1)])
        slow_paths = 0
        read = adapter.revisions

        async def counting(*args: Any) -> Any:
            nonlocal slow_paths
            slow_paths += 1
            return await read(*args)

        adapter.revisions = counting  # type: ignore[method-assign]
        assert await adapter.write(schema, [legacy("a", r1), legacy("b", r2)]) == ["a"]
        assert slow_paths == 1
        # every row applies: an update, an insert; no slow path, whatever came before
        assert await adapter.write(schema, [legacy("b", r3), legacy("c", r3)]) == []
        assert await adapter.write(schema, [legacy("a", r3)]) == []
        assert slow_paths == 1


async def test_a_unique_conflict_undoes_the_whole_batch(
    source: tuple[str, dict[str, Any]],
) -> None:
    label, config = source
    async with opened(label, config) as (adapter, _, unique):
        adapter, schema = await unique.__meta__.target("main")
        r1, r2 = next_revision(), next_revision()
        await adapter.write(schema, [{"id": "a", REV: r1, "slug": "taken"}])
        batch = [{"id": "b", REV: r2, "slug": "free"}, {"id": "c", REV: r2, "slug": "taken"}]
        with pytest.raises(da.IntegrityError):
            await adapter.write(schema, batch)
        assert await adapter.revisions(schema, ["a", "b", "c"]) == {"a": (r1, False)}
        (got,) = await adapter.get(schema, ["a"])
        assert got["slug"] == "taken"
        # the owner itself may write its value again, and give it up
        assert await adapter.write(schema, [{"id": "a", REV: r2, "slug": "taken"}]) == []
        assert await adapter.write(schema, [{"id": "a", REV: next_revision(), DELETED: NOW}]) == []
        assert await adapter.write(schema, batch) == []


async def test_expectations_mix_in_one_batch_with_tombstones(
    source: tuple[str, dict[str, Any]],
) -> None:
    label, config = source
    async with opened(label, config) as (adapter, schema, _):
        r1, r2, r3 = next_revision(), next_revision(), next_revision()
        await adapter.write(schema, [legacy("live", r1), legacy("gone", r1)])
        await adapter.write(schema, [{"id": "gone", REV: r2, DELETED: NOW}])
        rows = [
            {"id": "live", REV: r3, DELETED: NOW},  # a checked delete
            legacy("gone", r3, name="again"),  # re-created over its tombstone
            legacy("fresh", r3),  # created
            legacy("stale", r3),  # expects a copy that is not there
        ]
        assert await adapter.write(schema, rows, expect=[r1, None, None, r1]) == ["stale"]
        assert await adapter.revisions(schema, ["live", "gone", "fresh", "stale"]) == {
            "live": (r3, True),
            "gone": (r3, False),
            "fresh": (r3, False),
        }
        (got,) = await adapter.get(schema, ["gone"])
        assert got["name"] == "again"


async def test_unconditional_calls_see_live_rows_only(source: tuple[str, dict[str, Any]]) -> None:
    label, config = source
    async with opened(label, config) as (adapter, schema, _):
        r1, r2 = next_revision(), next_revision()
        await adapter.write(schema, [legacy("a", r1), legacy("b", r1), legacy("c", r1)])
        await adapter.write(schema, [{"id": "b", REV: r2, DELETED: NOW}])
        assert await adapter.update(schema, [("b", {"n": 5}), ("a", {"n": 6, REV: r2})]) == 1
        assert await adapter.revisions(schema, ["a", "b"]) == {"a": (r2, False), "b": (r2, True)}
        assert await adapter.delete_where(schema, None) == 2  # a and c; b stays a tombstone
        assert await adapter.revisions(schema, ["a", "b", "c"]) == {"b": (r2, True)}
        await adapter.insert(schema, [legacy("d", r1)])
        with pytest.raises(da.IntegrityError):  # a tombstone holds its id
            await adapter.insert(schema, [legacy("b", r1)])
        # delete counts live rows only, and takes tombstones with it
        assert await adapter.delete(schema, ["b", "d", "absent"]) == 1
        assert await adapter.revisions(schema, ["b", "d"]) == {}
