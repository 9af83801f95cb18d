"""SQL: diaspora_async (public Model API) against the raw drivers in the same run.

MySQL/MariaDB (``DIASPORA_TEST_MYSQL_URL``): ours on a pool of 10 vs raw aiomysql's own
pool of 10, same connection settings, same tables (declared by two identical models) and
the same SQL text. SQLite: ours (default pool of 2) vs raw aiosqlite (its one connection
and worker thread, with the same PRAGMAs: WAL, synchronous=NORMAL), on a temp file, the
event loop on one CPU and every worker thread on another (see ``_placement``), with an
A/A line (raw against raw on a second connection) checking that the setup is fair.
Operations: insert one (``Model.insert``), bulk insert of 10k (``insert_many`` vs one
``executemany``), get by id (``Model.find(id)``), a filtered 100-row query
(``find_many(..., limit=100)``), update by id (``entity.persist()`` after a change) and 200
concurrent gets. The raw side encodes its values (JSON, naive UTC datetimes) but returns
plain tuples; ours returns entities. Two extra lines call the adapter directly
(``adapter.find`` / ``adapter.insert``, rows as dicts) to separate the SQL layer's cost from
the entity layer's. Three more call ``adapter.write`` (the revision-guarded upsert entity
writes go through): a new row and a newer copy of a stored one against the raw insert and
update, and a bulk write of 10k new rows against the raw bulk insert. The bulk inserts
run last, each into emptied tables (emptying is not timed). Run:
``python bench/run.py --only sql``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomysql
import aiosqlite

import diaspora_async as da
from bench._common import Result, interleaved
from diaspora_async.adapters.base import REV
from diaspora_async.ids import new_id
from diaspora_async.query.ast import Query
from diaspora_async.query.parse import parse_where
from diaspora_async.revisions import next_revision

URL = os.environ.get("DIASPORA_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
OPS = 1000
BULK = 10_000
CONCURRENT = 200
COLS = ("id", "name", "n", "score", "tags", "created")
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
)


def _models(orm: da.Diaspora, source: str) -> tuple[Any, Any]:
    class BenchOurs(orm.Model, sources=[source]):
        name: str
        n: int = da.field(default=0, index=True)
        score: float = 0.0
        tags: list[str] = da.field(default_factory=list)
        created: datetime | None = None

    class BenchRaw(orm.Model, sources=[source]):  # same DDL: the raw side's table
        name: str
        n: int = da.field(default=0, index=True)
        score: float = 0.0
        tags: list[str] = da.field(default_factory=list)
        created: datetime | None = None

    return BenchOurs, BenchRaw


def _doc(i: int) -> dict[str, Any]:
    return {
        "name": f"item {i}",
        "n": i % 1000,
        "score": i / 7,
        "tags": ["a", "b"],
        "created": datetime(2024, 1, 1, tzinfo=UTC),
    }


class Raw:
    """The raw driver's side: ``fetch(sql, args)``, ``execute``, ``executemany``."""

    def __init__(self, param: str, quote: str, encode_dt: Callable[[datetime], Any]) -> None:
        q = quote
        cols = ", ".join(f"{q}{c}{q}" for c in COLS)
        marks = ", ".join([param] * len(COLS))
        self.insert = f"INSERT INTO {q}BenchRaw{q} ({cols}) VALUES ({marks})"
        self.get = f"SELECT {cols} FROM {q}BenchRaw{q} WHERE {q}id{q} = {param}"
        self.query = (
            f"SELECT {cols} FROM {q}BenchRaw{q} WHERE {q}n{q} >= {param} "
            f"ORDER BY {q}id{q} ASC LIMIT {param} OFFSET {param}"
        )
        self.update = f"UPDATE {q}BenchRaw{q} SET {q}n{q} = {param} WHERE {q}id{q} = {param}"
        empty = "TRUNCATE TABLE" if q == "`" else "DELETE FROM"
        self.empty_raw = f"{empty} {q}BenchRaw{q}"
        self.empty_ours = f"{empty} {q}BenchOurs{q}"
        self.encode_dt = encode_dt

    def row(self, i: int) -> tuple[Any, ...]:
        d = _doc(i)
        return (
            new_id(), d["name"], d["n"], d["score"], json.dumps(d["tags"]),
            self.encode_dt(d["created"]),
        )  # fmt: skip

    fetch: Callable[[str, Any], Awaitable[Any]]
    execute: Callable[[str, Any], Awaitable[Any]]
    executemany: Callable[[str, Any], Awaitable[Any]]
    # ``execute`` on another raw connection: an A/A line (raw against raw) shows what
    # the harness itself reads as a difference (it should be 1.00).
    twin_execute: Callable[[str, Any], Awaitable[Any]] | None = None


async def _suite(group: str, ours: Any, raw: Raw, rounds: int) -> list[Result]:
    """The comparisons on one store; both tables are seeded alike first."""
    meta = ours.__meta__
    seed = list(await ours.insert_many([_doc(i) for i in range(2000)]))
    raw_rows = [raw.row(i) for i in range(2000)]
    await raw.executemany(raw.insert, raw_rows)
    raw_ids = [r[0] for r in raw_rows]
    adapter, schema = await meta.target(meta.source_names[0])
    counter = iter(range(10**9))
    docs = [_doc(i) for i in range(BULK)]
    n = OPS * rounds

    async def ours_insert(k: int) -> None:
        await ours.insert(docs[k % BULK])

    async def raw_insert(k: int) -> None:
        await raw.execute(raw.insert, raw.row(k))

    async def ours_bulk(k: int) -> None:
        await ours.insert_many(docs)

    async def raw_bulk(k: int) -> None:
        await raw.executemany(raw.insert, [raw.row(i) for i in range(BULK)])

    async def adapter_bulk(k: int) -> None:
        await adapter.insert(schema, [{"id": new_id(), **d} for d in docs])

    async def adapter_write(k: int) -> None:
        await adapter.write(schema, [{"id": new_id(), REV: next_revision(), **docs[k % BULK]}])

    async def adapter_rewrite(k: int) -> None:
        row = {"id": seed[k % 2000].id, REV: next_revision(), **docs[k % BULK]}
        await adapter.write(schema, [row])

    async def adapter_bulk_write(k: int) -> None:
        rev = next_revision()
        await adapter.write(schema, [{"id": new_id(), REV: rev, **d} for d in docs])

    async def ours_get(k: int) -> None:
        await ours.find(seed[k % 2000].id)

    async def raw_get(k: int) -> None:
        await raw.fetch(raw.get, (raw_ids[k % 2000],))

    async def ours_query(k: int) -> None:
        await ours.find_many({"n": {">=": k % 900}}, limit=100)

    async def raw_query(k: int) -> None:
        await raw.fetch(raw.query, (k % 900, 100, 0))

    parsed = [
        Query(parse_where({"n": {">=": k}}, meta.fields), meta.default_sort, 0, 100)
        for k in range(900)
    ]

    async def adapter_query(k: int) -> None:
        await adapter.find(schema, parsed[k % 900])

    async def ours_update(k: int) -> None:
        e = seed[k % 2000]
        e.n = next(counter)
        await e.persist()

    async def raw_update(k: int) -> None:
        await raw.execute(raw.update, (next(counter), raw_ids[k % 2000]))

    async def ours_concurrent(k: int) -> None:
        await asyncio.gather(*(ours.find(e.id) for e in seed[:CONCURRENT]))

    async def raw_concurrent(k: int) -> None:
        await asyncio.gather(*(raw.fetch(raw.get, (i,)) for i in raw_ids[:CONCURRENT]))

    async def empty() -> None:
        await raw.execute(raw.empty_ours, ())
        await raw.execute(raw.empty_raw, ())

    async def twin_insert(k: int) -> None:
        assert raw.twin_execute is not None
        await raw.twin_execute(raw.insert, raw.row(k))

    check = []
    if raw.twin_execute is not None:
        check = [await interleaved(group, "A/A: raw vs raw (insert)", twin_insert, raw_insert, n)]
    bulk_calls = 4 * rounds
    return [
        *check,
        await interleaved(group, "insert one", ours_insert, raw_insert, n, 1, 0.90),
        await interleaved(group, "get by id", ours_get, raw_get, n, 1, 0.90),
        await interleaved(group, "query 100 rows", ours_query, raw_query, n // 5, 1),
        await interleaved(group, "query 100 rows (adapter)", adapter_query, raw_query, n // 5),
        await interleaved(group, "update by id", ours_update, raw_update, n, 1, 0.90),
        await interleaved(group, "write one new (adapter)", adapter_write, raw_insert, n),
        await interleaved(group, "write newer copy (adapter)", adapter_rewrite, raw_update, n),
        await interleaved(
            group,
            "200 concurrent gets",
            ours_concurrent,
            raw_concurrent,
            5 * rounds,
            CONCURRENT,
            0.90,
        ),
        # Last: each bulk insert starts from empty tables (the seed rows go too).
        await interleaved(
            group, "bulk insert 10k (rows/s)", ours_bulk, raw_bulk, bulk_calls, BULK, 0.95, empty
        ),
        await interleaved(
            group,
            "bulk insert 10k (adapter)",
            adapter_bulk,
            raw_bulk,
            bulk_calls,
            BULK,
            None,
            empty,
        ),
        await interleaved(
            group,
            "bulk write 10k (adapter)",
            adapter_bulk_write,
            raw_bulk,
            bulk_calls,
            BULK,
            None,
            empty,
        ),
    ]


async def _mysql(rounds: int) -> list[Result]:
    parts = urlsplit(URL)
    settings: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
        "user": parts.username or "root", "password": parts.password or "",
        "db": parts.path.lstrip("/") or "test",
    }  # fmt: skip
    pool = await aiomysql.create_pool(
        minsize=10, maxsize=10, autocommit=True, charset="utf8mb4", client_flag=2,
        init_command="SET time_zone = '+00:00', sql_notes = 0", **settings,
    )  # fmt: skip
    orm = da.Diaspora()
    orm.create_data_source("main", "mysql", url=URL, min_size=10, max_size=10)
    ours, raw_model = _models(orm, "main")
    raw = Raw("%s", "`", lambda d: d.astimezone(UTC).replace(tzinfo=None))

    async def fetch(sql: str, args: Any) -> Any:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return await cur.fetchall()

    async def execute(sql: str, args: Any) -> Any:
        async with pool.acquire() as conn, conn.cursor() as cur:
            return await cur.execute(sql, args)

    async def executemany(sql: str, args: Any) -> Any:
        # The raw bulk path: the driver batches rows into multi-row INSERTs; one
        # transaction, like ours.
        async with pool.acquire() as conn, conn.cursor() as cur:
            await conn.begin()
            await cur.executemany(sql, args)
            await conn.commit()

    raw.fetch, raw.execute, raw.executemany = fetch, execute, executemany
    try:
        async with orm:
            adapter = orm.data_sources["main"].adapter
            for model in (ours, raw_model):
                await adapter.drop(model.__meta__.schema_for("main"))
                await adapter.ensure_schema(model.__meta__.schema_for("main"))
            try:
                return await _suite("mysql", ours, raw, rounds)
            finally:
                for model in (ours, raw_model):
                    await adapter.drop(model.__meta__.schema_for("main"))
    finally:
        pool.close()
        await pool.wait_closed()


async def _raw_sqlite(path: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # the settings our pool's connections use
        await db.execute(pragma)
    return db


@contextlib.contextmanager
def _on_cpu(cpus: set[int] | None) -> Iterator[None]:
    """Run this thread (and the threads it starts meanwhile) on ``cpus``; None: as is."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _placement() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for the event loop and for every SQLite worker thread (both sides alike).

    Left to the scheduler, where each connection's worker thread lands decides the
    result: two identical raw aiosqlite connections, alternated, measured 50 and 80 µs
    per insert on this 2-vCPU VM, in either order. Fixed placement (the loop on one CPU,
    all worker threads on another, as on a multi-core server) makes both sides alike.
    ``DIASPORA_BENCH_PIN=0`` leaves placement to the scheduler (watch the A/A line).
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2 or os.environ.get("DIASPORA_BENCH_PIN") == "0":  # 0: see the lottery
        return None, None
    return {cpus[0]}, {cpus[1]}


async def _sqlite(rounds: int) -> list[Result]:
    loop_cpu, worker_cpu = _placement()
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp, _on_cpu(loop_cpu):
        path = str(Path(tmp) / "bench.db")
        orm = da.Diaspora()
        # The default pool (2 connections), both opened at connect: see _placement.
        orm.create_data_source("local", "sqlite", path=path, min_size=2)
        ours, _ = _models(orm, "local")
        raw = Raw("?", '"', lambda d: d.astimezone(UTC).replace(tzinfo=None).isoformat(" "))
        with _on_cpu(worker_cpu):  # the connections' worker threads start here
            await orm.connect()
            db = await _raw_sqlite(path)
            twin = await _raw_sqlite(path)
        try:

            async def fetch(sql: str, args: Any) -> Any:
                async with db.execute(sql, args) as cur:
                    return await cur.fetchall()

            async def execute(sql: str, args: Any) -> Any:
                await db.execute(sql, args)

            async def executemany(sql: str, args: Any) -> Any:
                await db.execute("BEGIN")
                await db.executemany(sql, args)
                await db.execute("COMMIT")

            async def twin_execute(sql: str, args: Any) -> Any:
                await twin.execute(sql, args)

            raw.fetch, raw.execute, raw.executemany = fetch, execute, executemany
            raw.twin_execute = twin_execute
            return await _suite("sqlite", ours, raw, rounds)
        finally:
            await db.close()
            await twin.close()
            await orm.close()


async def main(rounds: int = 3) -> list[Result]:
    """MySQL (if reachable) and SQLite comparisons."""
    results: list[Result] = []
    try:
        results += await _mysql(rounds)
    except (ConnectionError, OSError, da.errors.ConnectionLost) as exc:
        print(f"  mysql skipped: {exc}")
    results += await _sqlite(rounds)
    return results


if __name__ == "__main__":
    from bench._common import print_table

    print_table(asyncio.run(main()))
