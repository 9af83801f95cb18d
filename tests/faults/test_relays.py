"""Two relay processes over one backlog: each intent delivered, every store converged.

The test process writes a backlog with ``persist(..., defer=["db", "cache"])``
(write-behind: only SQLite written, the intents for MariaDB and Redis recorded in the
SQLite outbox), then starts two ``python -m diaspora_async relay --until-empty`` workers
at once on the same configuration. They share the backlog by leases: both deliver, both
exit 0, nothing is left, and every store holds every entity with the same revision. An
intent may be delivered twice (a lease that ran out): harmless, the writes are
revision-guarded, so the stores are asserted, not exact per-relay counts.

A start gate makes "both delivered" a property, not a race on start-up times (imports
alone take about a second on a loaded machine, the whole backlog goes in a fraction of
that): the test holds ``LOCK TABLES ... WRITE`` on the MariaDB table, each relay's
connect blocks on it in ``CREATE TABLE IF NOT EXISTS``, the test waits until the server
lists both as waiting for the lock, and unlocks: they start within milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomysql
import pytest

import diaspora_async as da
from tests.procs import PYTHON, ROOT, child_env
from tests.targets import mysql as mysql_target
from tests.targets import redis as redis_target

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.sqlite, pytest.mark.slow]

BACKLOG = 2000
STORES = ("local", "db", "cache")
SUMMARY = re.compile(r"^relay: delivered=(\d+) failed=(\d+) dead=(\d+) passes=(\d+)$")


def relay_config(tmp: Path, mysql_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "data_sources": {
            "local": {"adapter": "sqlite", "path": str(tmp / "local.db")},
            "db": {"adapter": "mysql", "url": mysql_url, "max_size": 5},
            "cache": {"adapter": "redis", "url": redis_url, "prefix": prefix, "max_size": 5},
        },
        "models": {
            "RelayItem": {
                "sources": list(STORES),
                "collection": "relay_items",
                "attributes": {"name": {"type": "string", "required": True}, "n": "integer"},
            }
        },
        "outbox": {"source": "local", "lease": 10},
    }


async def write_backlog(config: Path) -> dict[str, str]:
    orm = da.Diaspora.from_config(config)
    Item = orm.models["RelayItem"]
    async with orm:
        for source in ("db", "cache"):  # a clean table, whatever an earlier run left
            adapter, schema = await Item.__meta__.target(source)
            await adapter.drop(schema)
            orm.data_sources[source].forget_schema("RelayItem")
        items = Item.spawn_many([{"name": f"r{i}", "n": i} for i in range(BACKLOG)])
        await items.persist(defer=["db", "cache"])
        stats = {s["source"]: s["pending"] for s in await orm.outbox_stats()}
        assert stats == {"db": BACKLOG, "cache": BACKLOG}
        assert await Item.count(source="db") == 0
        return {e.id: e.revision for e in items}


@asynccontextmanager
async def gate(mysql_url: str, table: str) -> AsyncIterator[Any]:
    """Hold a write lock on ``table`` of the URL's database; yields a cursor of that
    session, for ``wait_for_waiters``. The lock goes when the block ends."""
    parts = urlsplit(mysql_url)
    conn = await aiomysql.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
        user=parts.username or "root", password=parts.password or "",
        db=parts.path.lstrip("/"), autocommit=True,
    )  # fmt: skip
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"LOCK TABLES `{table}` WRITE")
            try:
                yield cur
            finally:
                await cur.execute("UNLOCK TABLES")
    finally:
        conn.close()


async def wait_for_waiters(
    cur: Any, mysql_url: str, procs: Sequence[asyncio.subprocess.Process]
) -> None:
    """Until every relay's connect waits for the gate's lock (a condition, polled)."""
    db = urlsplit(mysql_url).path.lstrip("/")
    deadline = time.monotonic() + 30
    while True:
        await cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND STATE LIKE %s",
            (db, "%metadata lock%"),
        )
        (waiting,) = await cur.fetchone()
        if waiting >= len(procs):
            return
        for proc in procs:
            assert proc.returncode is None, "a relay exited before the gate opened"
        assert time.monotonic() < deadline, f"{waiting} of {len(procs)} relays at the gate"
        await asyncio.sleep(0.01)


async def check_stores(config: Path, revisions: dict[str, str]) -> None:
    orm = da.Diaspora.from_config(config)
    Item = orm.models["RelayItem"]
    async with orm:
        try:
            assert await orm.outbox.pending() == []
            for source in STORES:
                stored = {e.id: e.revision for e in await Item.find_many(source=source)}
                assert stored == revisions, source
        finally:
            for source in ("db", "cache"):
                adapter, schema = await Item.__meta__.target(source)
                await adapter.drop(schema)


async def start(args: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON, *args, cwd=ROOT, env=child_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_two_relay_processes_share_one_backlog(tmp_path: Path) -> None:
    mysql_url = await mysql_target.process_url()
    redis_url = redis_target.redis_url()
    prefix = redis_target.unique_prefix()
    config = tmp_path / "app.json"
    config.write_text(json.dumps(relay_config(tmp_path, mysql_url, redis_url, prefix)))
    try:
        revisions = await write_backlog(config)
        args = ["-m", "diaspora_async", "relay", "--config", str(config), "--until-empty",
                "--batch-size", "100", "--interval", "0.2"]  # fmt: skip
        async with gate(mysql_url, "relay_items") as cur:
            procs = [await start(args) for _ in range(2)]
            await wait_for_waiters(cur, mysql_url, procs)
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
        summaries = []
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err.decode()[-2000:]
            match = SUMMARY.match(out.decode().strip())
            assert match, out
            summaries.append([int(g) for g in match.groups()])
        print(summaries)  # for the record (pytest -s): how the backlog was shared
        delivered = [s[0] for s in summaries]
        assert all(d > 0 for d in delivered), summaries  # both relays took a share
        assert sum(delivered) >= 2 * BACKLOG  # two intents (db, cache) per entity
        assert [s[1:3] for s in summaries] == [[0, 0], [0, 0]]  # nothing failed
        await check_stores(config, revisions)
    finally:
        await redis_target.sweep(redis_url, prefix)


def outbox_rows(path: Path) -> tuple[int, int]:
    """(intents, intents under a lease) in the SQLite outbox, read beside the writers."""
    with sqlite3.connect(path) as conn:  # a WAL reader: never blocks the writer
        total, leased = conn.execute(
            "SELECT count(*), count(lease) FROM diaspora_outbox"
        ).fetchone()
    return int(total), int(leased)


async def test_a_relay_killed_mid_delivery_leaves_its_claims_to_the_next(tmp_path: Path) -> None:
    mysql_url = await mysql_target.process_url()
    redis_url = redis_target.redis_url()
    prefix = redis_target.unique_prefix()
    cfg = relay_config(tmp_path, mysql_url, redis_url, prefix)
    cfg["outbox"]["lease"] = 1  # the killed relay's claims free up quickly
    config = tmp_path / "app.json"
    config.write_text(json.dumps(cfg))
    outbox = tmp_path / "local.db"
    try:
        revisions = await write_backlog(config)
        base = ["-m", "diaspora_async", "relay", "--config", str(config), "--batch-size", "10"]
        first = await start([*base, "--interval", "0.05"])
        deadline = time.monotonic() + 30
        # Kill it once it is well into the backlog and holds a claim (a condition,
        # polled): between a claim and its ack, leases nobody will release.
        while (rows := outbox_rows(outbox))[0] > BACKLOG or not rows[1]:
            assert first.returncode is None, await first.communicate()
            assert time.monotonic() < deadline, "the first relay delivered nothing"
            await asyncio.sleep(0.005)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        left, leased = outbox_rows(outbox)
        second = await start([*base, "--until-empty", "--interval", "0.1"])
        out, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 0, err.decode()[-2000:]
        match = SUMMARY.match(out.decode().strip())
        assert match and int(match.group(1)) >= left, out
        print(f"killed with {left} intents left, {leased} leased; then {out.decode().strip()}")
        await check_stores(config, revisions)
    finally:
        await redis_target.sweep(redis_url, prefix)
