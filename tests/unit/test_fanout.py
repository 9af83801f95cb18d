"""Fan-out mechanics that need a controllable store: concurrency, SYNCING, policies.

``GatedAdapter`` is the memory adapter with an asyncio gate in front of each write; it is
registered the way a third-party adapter would be (``register_adapter``). Gates, not
timings, prove that writes run concurrently: each source's insert waits until the other
source's write has started, which only finishes if both run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import CollectionSchema, Row
from diaspora_async.adapters.memory import MemoryAdapter


class GatedAdapter(MemoryAdapter):
    label = "gated"

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        config = dict(config)
        self.started: asyncio.Event = config.pop("started")
        self.wait_for: asyncio.Event | None = config.pop("wait_for", None)
        self.fail: BaseException | None = config.pop("fail", None)
        super().__init__(name, config)

    async def _gate(self) -> None:
        self.started.set()
        if self.wait_for is not None:
            await self.wait_for.wait()
        if self.fail is not None:
            raise self.fail

    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        await self._gate()
        return await super().write(schema, rows, expect, fresh=fresh)


def make(**gates: dict[str, Any]) -> tuple[da.Diaspora, Any]:
    orm = da.Diaspora()
    orm.register_adapter("gated", GatedAdapter)
    for name, cfg in gates.items():
        orm.create_data_source(name, "gated", **cfg)
    orm.create_data_source("outbox", "memory")

    class Item(orm.Model, sources=list(gates)):
        name: str

    return orm, Item


async def test_writes_run_concurrently() -> None:
    a_started, b_started = asyncio.Event(), asyncio.Event()
    orm, Item = make(a={"started": a_started, "wait_for": b_started},
                     b={"started": b_started, "wait_for": a_started})  # fmt: skip
    async with orm:
        item = Item.spawn(name="x")
        # Sequential writes would wait forever for each other; the timeout turns that into a failure.
        await asyncio.wait_for(item.persist(da.ALL), timeout=5)
        assert item.state is da.EntityState.SYNC


async def test_syncing_is_visible_while_a_write_is_in_flight() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    orm, Item = make(a={"started": started, "wait_for": release})
    async with orm:
        item = Item.spawn(name="x")
        task = asyncio.create_task(item.persist())
        await started.wait()
        assert item.state is da.EntityState.SYNCING and item.state_in("a") is da.EntityState.SYNCING
        release.set()
        await task
        assert item.state is da.EntityState.SYNC


async def test_all_sources_are_attempted_and_reported() -> None:
    boom = da.ConnectionLost("b", "connection reset")
    orm, Item = make(a={"started": asyncio.Event()}, b={"started": asyncio.Event(), "fail": boom},
                     c={"started": asyncio.Event()})  # fmt: skip
    async with orm:
        item = Item.spawn(name="x")
        with pytest.raises(da.FanOutError) as info:
            await item.persist(da.ALL)
        assert info.value.succeeded == ["a", "c"] and info.value.failed == {"b": boom}
        assert [item.state_in(s) for s in "abc"] == [
            da.EntityState.SYNC,
            da.EntityState.ORPHAN,
            da.EntityState.SYNC,
        ]
        assert "b: ConnectionLost" in str(info.value)
        caught = False
        try:
            await Item.spawn(name="y").persist(da.ALL)
        except* da.ConnectionLost as group:
            caught = isinstance(group, da.FanOutError) and list(group.failed) == ["b"]
        assert caught


async def test_single_source_raises_its_own_error() -> None:
    orm, Item = make(a={"started": asyncio.Event(), "fail": da.ConnectionLost("a", "down")})
    async with orm:
        with pytest.raises(da.ConnectionLost):
            await Item.insert({"name": "x"})


async def test_queue_policy_records_and_replays_nothing_lost() -> None:
    gate = asyncio.Event()
    orm, Item = make(
        a={"started": asyncio.Event()}, b={"started": gate, "fail": da.ConnectionLost("b", "down")}
    )
    orm.use_outbox("outbox")
    async with orm:
        item = Item.spawn(name="x")
        with pytest.raises(da.FanOutError) as info:
            await item.persist(da.ALL, on_error="queue")
        assert info.value.queued == ["b"]
        pending = await orm.outbox.pending()
        assert [(p["source"], p["op"], p["entity_id"]) for p in pending] == [
            ("b", "persist", item.id)
        ]
        assert await orm.replay_outbox() == {
            "replayed": 0,
            "failed": 1,
            "dead": 0,
        }  # b is still down
        orm.data_sources["b"].adapter.fail = None  # type: ignore[attr-defined]
        assert await orm.replay_outbox() == {"replayed": 1, "failed": 0, "dead": 0}
        assert await orm.outbox.pending() == []
        found = await Item.find(item.id, source="b")
        assert found is not None and found.name == "x"


async def test_queue_policy_needs_an_outbox() -> None:
    orm, Item = make(
        a={"started": asyncio.Event()},
        b={"started": asyncio.Event(), "fail": da.ConnectionLost("b", "x")},
    )
    async with orm:
        with pytest.raises(da.ConfigError, match="use_outbox"):
            await Item.spawn(name="x").persist(da.ALL, on_error="queue")
        with pytest.raises(da.ConfigError, match="on_error"):
            await Item.spawn(name="x").persist(da.ALL, on_error="ignore")


async def test_compensate_restores_deleted_rows() -> None:
    fail = da.ConnectionLost("b", "down")
    orm, Item = make(a={"started": asyncio.Event()}, b={"started": asyncio.Event()})
    async with orm:
        item = await Item.insert({"name": "x"}, source=da.ALL)
        orm.data_sources["b"].adapter.fail = fail  # type: ignore[attr-defined]
        with pytest.raises(da.FanOutError) as info:
            await item.destroy(da.ALL, on_error="compensate")
        assert info.value.compensated == ["a"]
        assert item.state_in("a") is da.EntityState.SYNC
        assert (await Item.find(item.id, source="a")) is not None


def test_gc_pause_is_local_and_restored() -> None:
    import gc

    from diaspora_async.rows import building

    assert gc.isenabled()
    with building(10):
        assert gc.isenabled()  # small batches: untouched
    with building(10_000):
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), building(10_000):
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with building(10_000):
            pass
        assert not gc.isenabled()  # a collector the application turned off stays off
    finally:
        gc.enable()
