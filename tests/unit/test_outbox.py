"""The write-ahead outbox and its relays (DESIGN.md 6.2), on memory stores that can be held
or failed (``ControlledStore``), so every claim is shown by state, not by timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import CollectionSchema, Row
from diaspora_async.adapters.memory import MemoryAdapter


class ControlledStore(MemoryAdapter):
    """Memory whose writes can be held (``hold``), failed (``down``) and counted."""

    label = "controlled"

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, {})
        self.down = False
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.writes = 0

    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        self.writes += 1
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.down:
            raise da.ConnectionLost(self.name, "connection reset by peer")
        return await super().write(schema, rows, expect, fresh=fresh)


def make(**outbox: Any) -> tuple[da.Diaspora, Any]:
    orm = da.Diaspora()
    orm.register_adapter("controlled", ControlledStore)
    orm.create_data_source("a", "controlled")
    orm.create_data_source("b", "controlled")
    orm.create_data_source("box", "memory")
    orm.use_outbox("box", **outbox)

    class Item(orm.Model, sources=["a", "b"], on_error="queue"):
        name: str
        n: int = 0

    return orm, Item


def store(orm: da.Diaspora, name: str) -> ControlledStore:
    adapter = orm.data_sources[name].adapter
    assert isinstance(adapter, ControlledStore)
    return adapter


async def queue_while_down(Item: Any, b: ControlledStore, n: int) -> None:
    """``n`` creates while ``b`` is down: each queued for b; b is up again after."""
    b.down = True
    for i in range(n):
        with pytest.raises(da.FanOutError):
            await Item.insert({"name": f"n{i}"}, source=da.ALL)
    b.down = False


async def names(Item: Any, source: str) -> dict[str, str]:
    return {e.id: e.name for e in await Item.find_many(source=source)}


async def test_intents_are_written_before_the_writes_and_removed_after() -> None:
    orm, Item = make()
    async with orm:
        b = store(orm, "b")
        b.hold = asyncio.Event()
        item = Item.spawn(name="x")
        task = asyncio.create_task(item.persist(da.ALL))
        await b.entered.wait()  # b's write is in flight: both intents are durable
        pending = await Item.pending()
        assert sorted((p["source"], p["operation"]) for p in pending) == [
            ("a", "persist"),
            ("b", "persist"),
        ]
        assert {p["revision"] for p in pending} == {item.revision}
        b.hold.set()
        await task
        assert await Item.pending() == []


async def test_a_write_cut_off_mid_flight_is_delivered_by_replay() -> None:
    orm, Item = make()
    async with orm:
        b = store(orm, "b")
        b.hold = asyncio.Event()
        item = Item.spawn(name="x")
        task = asyncio.create_task(item.persist(da.ALL))
        await b.entered.wait()
        task.cancel()  # the process "dies" while b's write is in flight
        with pytest.raises(asyncio.CancelledError):
            await task
        b.hold = None
        # the cancelled call never got to remove any intent, a's included
        assert sorted(p["source"] for p in await Item.pending()) == ["a", "b"]
        await orm.replay_outbox()
        assert await Item.pending() == []
        assert await names(Item, "a") == await names(Item, "b") == {item.id: "x"}


async def test_a_failed_source_stays_queued_with_its_error_and_the_relay_delivers() -> None:
    orm, Item = make()
    async with orm:
        store(orm, "b").down = True
        item = Item.spawn(name="x")
        with pytest.raises(da.FanOutError) as info:
            await item.persist(da.ALL)
        assert info.value.queued == ["b"]
        (entry,) = await Item.pending(source="b")
        assert entry["entity_id"] == item.id and "connection reset" in entry["last_error"]
        store(orm, "b").down = False
        async with orm.relay(interval=30) as relay:  # idle() wakes it: no waiting on time
            await relay.idle()
        assert relay.delivered.replayed == 1
        assert await Item.pending() == []
        assert await names(Item, "b") == {item.id: "x"}


async def test_replay_is_one_write_per_model_and_source() -> None:
    orm, Item = make()
    async with orm:
        b = store(orm, "b")
        await queue_while_down(Item, b, 50)
        b.writes = 0
        assert await orm.replay_outbox() == {"replayed": 50, "failed": 0, "dead": 0}
        assert b.writes == 1
        assert len(await names(Item, "b")) == 50


async def test_replay_sends_the_newest_intent_of_an_entity() -> None:
    orm, Item = make()
    async with orm:
        b = store(orm, "b")
        b.down = True
        item = Item.spawn(name="v1")
        for name in ("v1", "v2", "v3"):
            item.name = name
            with pytest.raises(da.FanOutError):
                await item.persist(da.ALL)
        assert len(await Item.pending(source="b")) == 3
        b.down = False
        assert (await orm.replay_outbox())["replayed"] == 3
        assert await names(Item, "b") == {item.id: "v3"}


async def test_failures_back_off_and_die_after_max_attempts() -> None:
    orm, Item = make(max_attempts=2)
    async with orm:
        store(orm, "b").down = True
        with pytest.raises(da.FanOutError):
            await Item.insert({"name": "x"}, source=da.ALL)
        assert await orm.replay_outbox() == {"replayed": 0, "failed": 1, "dead": 0}
        (entry,) = await Item.pending()
        assert entry["attempts"] == 1 and not entry["dead"]
        # the relay respects the backoff: nothing is due right after a failure
        assert await orm.relay().run_once() == 0
        assert await orm.replay_outbox() == {"replayed": 0, "failed": 1, "dead": 1}
        (entry,) = await Item.pending()
        assert entry["dead"] and entry["attempts"] == 2 and "ConnectionLost" in entry["last_error"]
        assert await orm.replay_outbox() == {
            "replayed": 0,
            "failed": 0,
            "dead": 0,
        }  # kept, not retried
        stats = await orm.outbox_stats()
        assert stats == [
            {"model": "Item", "source": "b", "pending": 0, "dead": 1, "oldest_age": None}
        ]
        store(orm, "b").down = False
        assert await orm.outbox.revive() == 1
        assert (await orm.replay_outbox())["replayed"] == 1
        assert await orm.outbox_stats() == []


async def test_two_relays_share_a_backlog() -> None:
    orm, Item = make()
    async with orm:
        b = store(orm, "b")
        await queue_while_down(Item, b, 40)
        one, two = orm.relay(batch_size=10), orm.relay(batch_size=10)
        # Their passes alternate; each claims what the other has not (the exclusion of
        # a claim in flight is the next test's).
        for _ in range(4):
            await asyncio.gather(one.run_once(), two.run_once())
        total = one.delivered.replayed + two.delivered.replayed
        assert total == 40 and one.delivered.replayed > 0 and two.delivered.replayed > 0
        assert await Item.pending() == []


async def test_a_claimed_intent_is_left_to_its_relay_until_the_lease_ends() -> None:
    orm, Item = make(lease=30.0)
    async with orm:
        b = store(orm, "b")
        await queue_while_down(Item, b, 1)
        b.hold = asyncio.Event()
        b.entered.clear()
        first = asyncio.create_task(orm.relay().run_once())
        await b.entered.wait()  # the first relay claimed it and is delivering
        assert await orm.relay().run_once() == 0  # nothing for a second one
        b.hold.set()
        assert await first == 1
        assert await Item.pending() == []


async def test_defer_writes_the_others_and_leaves_the_deferred_to_the_relay() -> None:
    orm, Item = make()
    async with orm:
        b = store(orm, "b")
        item = Item.spawn(name="x")
        await item.persist("a", defer=["b"], on_error="raise")
        assert b.writes == 0 and item.state_in("b") is da.EntityState.ORPHAN
        assert [p["source"] for p in await Item.pending()] == ["b"]
        async with orm.relay(interval=30) as relay:
            await relay.idle()
        assert await names(Item, "b") == {item.id: "x"}
        found = await Item.find(item.id, source="b")
        assert found is not None and found.revision == item.revision


async def test_defer_and_queue_need_an_outbox_before_any_write() -> None:
    orm = da.Diaspora()
    orm.create_data_source("a", "memory")
    orm.create_data_source("b", "memory")

    class Item(orm.Model, sources=["a", "b"]):
        name: str

    async with orm:
        with pytest.raises(da.ConfigError, match="use_outbox"):
            await Item.spawn(name="x").persist("a", defer=["b"])
        assert await Item.count(source="a") == 0
        with pytest.raises(da.ConfigError, match="use_outbox"):
            await Item.pending()


def make_sqlite(path: str) -> tuple[da.Diaspora, Any]:
    """The outbox inside one of the targets (SQLite): the transactional outbox."""
    orm = da.Diaspora()
    orm.register_adapter("controlled", ControlledStore)
    orm.create_data_source("local", "sqlite", path=path)
    orm.create_data_source("b", "controlled")
    orm.use_outbox("local")

    class Item(orm.Model, sources=["local", "b"], on_error="queue"):
        name: str
        slug: str | None = da.field(default=None, unique=True)

    return orm, Item


async def test_the_outbox_host_commits_its_write_with_the_others_intents(tmp_path: Any) -> None:
    orm, Item = make_sqlite(str(tmp_path / "local.db"))
    async with orm:
        b = store(orm, "b")
        b.hold = asyncio.Event()
        item = Item.spawn(name="x")
        task = asyncio.create_task(item.persist(da.ALL))
        await b.entered.wait()
        # local was written first, in one transaction with b's intent: it needs none
        assert [p["source"] for p in await Item.pending()] == ["b"]
        assert await names(Item, "local") == {item.id: "x"}
        task.cancel()  # the process dies before b answers
        with pytest.raises(asyncio.CancelledError):
            await task
        b.hold = None
        assert (await orm.replay_outbox())["replayed"] == 1
        assert await names(Item, "b") == {item.id: "x"}


async def test_a_refused_host_write_commits_no_intent(tmp_path: Any) -> None:
    orm, Item = make_sqlite(str(tmp_path / "local.db"))
    async with orm:
        await Item.insert({"name": "first", "slug": "taken"}, source="local")
        item = Item.spawn(name="second", slug="taken")
        with pytest.raises(da.FanOutError) as info:
            await item.persist(da.ALL)
        # local refused (a unique value): its transaction, intents included, rolled back;
        # b took the write; nothing is left to deliver (a replay would only fail again)
        assert isinstance(info.value.failed["local"], da.IntegrityError)
        assert info.value.succeeded == ["b"] and info.value.queued == []
        assert await Item.pending() == []
        assert await names(Item, "b") == {item.id: "second"}


def test_bad_outbox_and_relay_options_are_config_errors() -> None:
    orm = da.Diaspora()
    orm.create_data_source("box", "memory")
    for bad in ({"max_attempts": 0}, {"max_attempts": True}, {"lease": 0}, {"backoff": (2, 1)}):
        with pytest.raises(da.ConfigError):
            orm.use_outbox("box", **bad)  # type: ignore[arg-type]
    orm.use_outbox("box")
    for interval, batch in ((0, 10), (1.0, 0), (1.0, True)):
        with pytest.raises(da.ConfigError):
            orm.relay(interval=interval, batch_size=batch)


async def test_a_relay_outlives_its_outbox_store_failing(caplog: pytest.LogCaptureFixture) -> None:
    orm = da.Diaspora()
    orm.register_adapter("controlled", ControlledStore)
    orm.create_data_source("a", "memory")
    orm.create_data_source("box", "controlled")  # the outbox's own store
    orm.use_outbox("box")

    class Item(orm.Model, sources=["a"]):
        name: str

    async with orm:
        item = Item.spawn(name="y")
        box = store(orm, "box")
        box.down = True  # claims are conditional writes on the outbox's store: they fail
        await item.persist("a")
        await orm.outbox.record(
            "Item", "persist", [(item.id, item.attributes, item.revision)], ["a"]
        )
        async with orm.relay(interval=30) as relay:
            await relay.idle()  # a pass ran and failed on the outbox's store: logged, alive
            assert "relay pass failed" in caplog.text
            box.down = False
            await relay.idle()
        assert relay.delivered.replayed == 1
        assert await orm.outbox.pending() == []


async def test_an_intent_for_a_model_this_process_lacks_backs_off() -> None:
    orm, _ = make()
    async with orm:
        await orm.outbox.record("Gone", "persist", [("x", {"name": "x"}, "0" * 24)], ["a"])
        assert await orm.replay_outbox() == {"replayed": 0, "failed": 1, "dead": 0}
        (entry,) = await orm.outbox.pending()
        assert "no model 'Gone'" in entry["last_error"]
