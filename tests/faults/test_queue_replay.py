"""Nothing lost, nothing stale, nothing resurrected: a fault run under ``on_error="queue"``.

Three stores: SQLite (also the outbox), MariaDB and Redis, the last two behind loopback
fault proxies that reset connections at random, both before a request reaches the server
(the write did not happen) and after (the write happened, its reply was lost). Workers
run a few thousand creates, updates (half of them on an entity freshly loaded from one
store) and destroys, each under ``"queue"``; a reference model records what every call
asked for. Then the faults stop, the outbox is replayed, and every store must equal the
reference exactly, with the same revision everywhere and a tombstone for every delete.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import diaspora_async as da
from tests.faults.proxy import FaultProxy
from tests.targets import mysql as mysql_target
from tests.targets import redis as redis_target

pytestmark = [pytest.mark.mysql, pytest.mark.redis]

WORKERS = 12
OPS_PER_WORKER = 250  # 3,000 operations in all
GONE = None  # the reference's mark of a deleted entity


def via(url: str, port: int) -> str:
    """``url`` pointed at a proxy on 127.0.0.1:``port``."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{auth + '@' if auth else ''}127.0.0.1:{port}"))


async def workload(
    Item: Any, seed: int, reference: dict[str, Any], held: dict[str, Any], unqueued: list[str]
) -> int:
    """One worker's operations on its own entities; returns how many calls raised (and
    adds to ``unqueued`` every failed part that was not queued: there must be none)."""
    rng = random.Random(seed)
    live: list[str] = []
    raised = 0
    for step in range(OPS_PER_WORKER):
        draw = rng.random()
        try:
            if len(live) < 4 or draw < 0.35:
                e = Item.spawn(name=f"w{seed}-{step}", tags=[f"s{step}"])
                held[e.id] = e
                live.append(e.id)
                reference[e.id] = e.attributes  # the call's intent, before any await
                await e.persist(da.ALL)
            elif draw < 0.8:
                entity_id = rng.choice(live)
                if rng.random() < 0.5:  # load-from-one-store, then persist to all
                    fresh = await Item.find(entity_id, source="local")
                    assert fresh is not None, "local (no faults) always holds the entity"
                    held[entity_id] = fresh
                e = held[entity_id]
                e.n += 1
                e.name = f"w{seed}-{step}"
                reference[entity_id] = e.attributes
                await e.persist(da.ALL)
            else:
                entity_id = live.pop(rng.randrange(len(live)))
                reference[entity_id] = GONE
                await held[entity_id].destroy(da.ALL)
        except da.FanOutError as exc:
            raised += 1
            # every failed part was a store failure, and every one of them was queued
            unqueued.extend(s for s in exc.failed if s not in exc.queued or s == "local")
    return raised


async def test_resets_on_two_of_three_stores_end_identical_after_replay() -> None:
    mysql_url = mysql_target.mysql_url()
    redis_url = redis_target.redis_url()
    my = urlsplit(mysql_url)
    rd = urlsplit(redis_url)
    my_proxy = FaultProxy(
        my.hostname or "", my.port or 3306, seed=1, reset_before=0.01, reset_after=0.01
    )
    rd_proxy = FaultProxy(
        rd.hostname or "", rd.port or 6379, seed=2, reset_before=0.01, reset_after=0.01
    )
    with tempfile.TemporaryDirectory(prefix="diaspora-faults-") as tmp:
        async with (
            mysql_target.TARGET.open() as my_config,
            redis_target.TARGET.open() as rd_config,
            my_proxy.running() as my_port,
            rd_proxy.running() as rd_port,
        ):
            orm = da.Diaspora()
            orm.create_data_source("local", "sqlite", path=str(Path(tmp) / "local.db"))
            orm.create_data_source(
                "db", "mysql", **{**my_config, "url": via(my_config["url"], my_port)}
            )
            orm.create_data_source(
                "cache", "redis", **{**rd_config, "url": via(rd_config["url"], rd_port)}
            )
            orm.use_outbox("local")

            class FaultItem(orm.Model, sources=["local", "db", "cache"], on_error="queue"):
                name: str
                n: int = 0
                tags: list[str] = da.field(default_factory=list)

            reference: dict[str, Any] = {}
            held: dict[str, Any] = {}
            unqueued: list[str] = []
            await orm.connect()
            try:
                adapter, schema = await FaultItem.__meta__.target("db")
                await adapter.drop(schema)  # a clean table, whatever an earlier run left
                orm.data_sources["db"].forget_schema("FaultItem")
                raised = await asyncio.gather(
                    *(workload(FaultItem, s, reference, held, unqueued) for s in range(WORKERS))
                )
                assert unqueued == []
                queued = len(await orm.outbox.pending())
                my_proxy.heal()
                rd_proxy.heal()
                for _ in range(5):  # the first round may meet connections the faults broke
                    await orm.replay_outbox()
                    if not await orm.outbox.pending():
                        break
                assert await orm.outbox.pending() == []
                # the faults really happened, on both stores, both kinds
                assert my_proxy.resets > 10 and rd_proxy.resets > 10
                assert sum(raised) > 20 and queued > 20

                live = {i: attrs for i, attrs in reference.items() if attrs is not GONE}
                gone = {i for i, attrs in reference.items() if attrs is GONE}
                print(  # for the record (pytest -s): how hard the run was
                    f"resets mysql={my_proxy.resets} redis={rd_proxy.resets}; calls raised "
                    f"{sum(raised)}; intents queued {queued}; live {len(live)}, gone {len(gone)}"
                )
                assert len(live) > 300 and len(gone) > 200
                for source in ("local", "db", "cache"):
                    rows = {e.id: e for e in await FaultItem.find_many(source=source)}
                    lost = [i for i in live if i not in rows]
                    stale = [i for i in live if i in rows and rows[i].attributes != live[i]]
                    back = [i for i in gone if i in rows]
                    assert (len(lost), len(stale), len(back)) == (0, 0, 0), (
                        source,
                        lost,
                        stale,
                        back,
                    )
                    wrong_rev = [i for i, e in rows.items() if e.revision != held[i].revision]
                    assert wrong_rev == [], (source, wrong_rev[:5])
                    adapter, schema = await FaultItem.__meta__.target(source)
                    tombs = await adapter.revisions(schema, sorted(gone))
                    assert all(tombs[i] == (held[i].revision, True) for i in gone), source
                # a second replay of nothing changes nothing
                assert await orm.replay_outbox() == {"replayed": 0, "failed": 0, "dead": 0}
            finally:
                for source in ("db", "cache"):
                    adapter, schema = await FaultItem.__meta__.target(source)
                    await adapter.drop(schema)
                await orm.close()
