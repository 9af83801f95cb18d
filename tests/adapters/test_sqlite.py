"""The sqlite adapter's own behaviour: in-memory vs file databases, storage, batching.

Semantics shared with every adapter live in tests/conformance; the SQL-specific checks
(JSON equality, hostile input, batching) are in ``_sql_cases.py`` and run here on a file
database and on ``:memory:``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.errors import ConfigError

from . import _sql_cases as cases

pytestmark = pytest.mark.sqlite


@pytest.fixture(params=["file", "memory"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "memory":
        return {"path": ":memory:"}
    return {"path": str(tmp_path / "t.db"), "max_size": 3}


async def test_differential_against_memory(config: dict[str, Any]) -> None:
    await cases.check_differential("sqlite", config)


async def test_hostile_input_stays_data(config: dict[str, Any]) -> None:
    await cases.check_hostile("sqlite", config)


async def test_batches(config: dict[str, Any]) -> None:
    # 3,500 rows x 11 columns > 32,766 variables: the insert spans several statements.
    await cases.check_batches("sqlite", config, big=3500)


async def test_cancelled_pipelined_insert_is_all_or_nothing(config: dict[str, Any]) -> None:
    await cases.check_cancelled_bulk("sqlite", config)


async def test_memory_database_is_one_shared_connection() -> None:
    async with cases.registry("sqlite", {"path": ":memory:", "max_size": 5}) as (orm, model):
        await asyncio.gather(*(model.insert({"n": i}) for i in range(20)))
        assert await model.count() == 20
        stats = orm.data_sources["main"].stats()
        assert stats["size"] == 1 and stats["max_size"] == 1 and stats["opened"] == 1


async def test_cancelled_batch_leaves_memory_database_consistent() -> None:
    async with cases.registry("sqlite", {"path": ":memory:"}) as (orm, model):
        rows = [{"n": i} for i in range(20000)]
        task = asyncio.create_task(model.insert_many(rows))
        # Yield until the insert holds the connection (its job is then on the thread).
        while orm.data_sources["main"].stats()["in_use"] == 0:  # noqa: ASYNC110
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The job finished (or not) as a whole on the worker thread; the database lives on.
        assert await model.count() in (0, 20000)
        assert orm.data_sources["main"].stats()["discarded"] == 0
        await model.insert({"id": "after"})
        assert await model.find("after") is not None


async def test_connection_closed_under_the_pool_is_replaced(tmp_path: Path) -> None:
    config = {"path": str(tmp_path / "t.db"), "max_size": 1}
    async with cases.registry("sqlite", config) as (orm, model):
        await model.insert({"id": "a", "n": 1})
        source = orm.data_sources["main"]
        before = source.stats()
        # Close the idle connection behind the pool's back (as a crashed thread would).
        conn = source.adapter._pool._idle[-1].conn
        await conn.close()
        found = await model.find("a")  # checkout notices, discards it, opens another
        assert found is not None and found.n == 1
        after = source.stats()
        assert after["discarded"] == before["discarded"] + 1
        assert after["opened"] == before["opened"] + 1
        assert after["size"] == 1 and after["in_use"] == 0


async def test_connection_dying_undetected_fails_once_then_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"path": str(tmp_path / "t.db"), "max_size": 1}
    async with cases.registry("sqlite", config) as (orm, model):
        await model.insert({"id": "a", "n": 1})
        source = orm.data_sources["main"]
        pool = source.adapter._pool
        monkeypatch.setattr(type(pool), "_alive", lambda self, conn: True)  # checkout misses it
        await pool._idle[-1].conn.close()
        with pytest.raises(da.errors.ConnectionLost) as caught:
            await model.find("a")
        assert caught.value.source == "main"
        assert source.stats()["discarded"] == 1  # not put back for the next caller
        found = await model.find("a")
        assert found is not None and found.n == 1


async def test_driver_errors_are_ours_and_keep_the_connection(tmp_path: Path) -> None:
    async with cases.registry("sqlite", {"path": str(tmp_path / "t.db")}) as (orm, model):
        await model.insert({"id": "a", "n": 1})
        source = orm.data_sources["main"]
        adapter, schema = await model.__meta__.target("main")
        (row,) = await adapter.get(schema, ["a"])
        with pytest.raises(da.errors.IntegrityError) as caught:
            await adapter.insert(schema, [row])  # the unconditional insert of a taken id
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
        assert caught.value.source == "main"
        # The engine answered: the connection is in a known state and goes back to idle.
        stats = source.stats()
        assert stats["discarded"] == 0 and stats["in_use"] == 0 and stats["idle"] >= 1
        assert (await model.find("a")).n == 1


async def test_file_storage_is_typed_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "typed.db"
    async with cases.registry("sqlite", {"path": str(path)}) as (_, model):
        when = cases.ROWS[0]["d"]
        await model.insert(
            {"id": "t1", "s": "x", "n": 5, "b": True, "d": when, "o": {"b": 1, "a": 2.0}}
        )
        db = sqlite3.connect(path)
        try:
            row = db.execute('SELECT s, "n col", b, d, o FROM Kinds').fetchone()
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            db.close()
        assert row == ("x", 5, 1, "2024-01-01 00:00:00.000000", '{"a":2,"b":1}')
        assert mode == "wal"


def test_config_is_checked_without_io() -> None:
    orm = da.Diaspora()
    with pytest.raises(ConfigError):
        orm.create_data_source("a", "sqlite", path="")
    with pytest.raises(ConfigError):
        orm.create_data_source("b", "sqlite", path=":memory:", bogus=1)
    with pytest.raises(ConfigError):
        orm.create_data_source("c", "sqlite", busy_timeout=-1)
