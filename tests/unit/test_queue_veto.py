"""A write a hook vetoed (or a call being compensated) leaves no intent behind.

The intents are recorded before the write (write-ahead); a failure a delivery would only
repeat, or one that is no store's failure at all (a ``before_*`` hook raising), must take
its intents with it, or a later replay would perform the very write the hook refused.
Checked under ``on_error="queue"`` for one source (the part's error propagates as is) and
for several (the ``FanOutError`` path), for persist and for destroy; and for the
deferred (``defer=``, write-behind) sources' intents under every policy.
"""

from __future__ import annotations

from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import CollectionSchema, Row
from diaspora_async.adapters.memory import MemoryAdapter


class DownAdapter(MemoryAdapter):
    """A memory store whose writes fail as a store's do (a lost connection)."""

    label = "down"

    async def write(
        self, schema: CollectionSchema, rows: Any, expect: Any = None, **kw: Any
    ) -> list[str]:
        raise da.ConnectionLost(self.name, "down")

    async def insert(self, schema: CollectionSchema, rows: list[Row]) -> None:
        raise da.ConnectionLost(self.name, "down")


def make(sources: list[str]) -> tuple[da.Diaspora, Any]:
    orm = da.Diaspora()
    for name in ("a", "b", "box"):
        orm.create_data_source(name, "memory")
    orm.use_outbox("box")

    class Item(orm.Model, sources=sources, on_error="queue"):
        name: str

    def refuse(entity: Any, source: str) -> None:
        if entity.name == "forbidden":
            raise PermissionError("no")

    Item.on("before_persist", refuse)
    Item.on("before_destroy", refuse)
    return orm, Item


@pytest.mark.parametrize("sources", [["a"], ["a", "b"]])
async def test_a_vetoed_persist_is_not_replayed(sources: list[str]) -> None:
    orm, Item = make(sources)
    async with orm:
        with pytest.raises((PermissionError, da.FanOutError)):
            await Item.spawn(name="forbidden").persist(da.ALL)
        assert await orm.outbox.pending() == []
        await orm.replay_outbox()
        for source in sources:
            assert await Item.count(source=source) == 0


@pytest.mark.parametrize("sources", [["a"], ["a", "b"]])
async def test_a_vetoed_destroy_is_not_replayed(sources: list[str]) -> None:
    orm, Item = make(sources)
    async with orm:
        item = Item.spawn(name="fine")
        await item.persist(da.ALL)
        item.name = "forbidden"
        await item.persist(da.ALL, skip_events=True)
        with pytest.raises((PermissionError, da.FanOutError)):
            await item.destroy(da.ALL)
        assert await orm.outbox.pending() == []
        await orm.replay_outbox()
        for source in sources:
            assert await Item.count(source=source) == 1


def make_deferred(policy: str, a: str = "memory") -> tuple[da.Diaspora, Any]:
    orm = da.Diaspora()
    orm.register_adapter("down", DownAdapter)
    orm.create_data_source("a", a)
    orm.create_data_source("b", "memory")
    orm.create_data_source("box", "memory")
    orm.use_outbox("box")

    class Item(orm.Model, sources=["a", "b"], on_error=policy):
        name: str

    def refuse(entity: Any, source: str) -> None:
        if entity.name == "forbidden":
            raise PermissionError("no")

    Item.on("before_persist", refuse)
    return orm, Item


@pytest.mark.parametrize("policy", ["raise", "queue", "compensate"])
async def test_a_vetoed_write_behind_is_not_delivered(policy: str) -> None:
    orm, Item = make_deferred(policy)
    async with orm:
        with pytest.raises(PermissionError):
            await Item.spawn(name="forbidden").persist("a", defer=["b"])
        assert await orm.outbox.pending() == []
        await orm.replay_outbox()
        assert await Item.count(source="b") == 0


async def test_a_compensated_call_takes_its_write_behind_back() -> None:
    orm, Item = make_deferred("compensate", a="down")
    async with orm:
        with pytest.raises(da.ConnectionLost):
            await Item.spawn(name="x").persist("a", defer=["b"])
        assert await orm.outbox.pending() == []
        await orm.replay_outbox()
        assert await Item.count(source="b") == 0


@pytest.mark.parametrize("policy", ["raise", "queue"])
async def test_a_store_failure_keeps_the_write_behind(policy: str) -> None:
    orm, Item = make_deferred(policy, a="down")
    async with orm:
        with pytest.raises(da.ConnectionLost):
            await Item.spawn(name="x").persist("a", defer=["b"])
        pending = {p["source"] for p in await orm.outbox.pending()}
        assert pending == ({"a", "b"} if policy == "queue" else {"b"})
        await orm.replay_outbox()
        assert await Item.count(source="b") == 1
