"""``Relay.drain`` (what ``relay --until-empty`` runs): it waits out other relays' leases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import diaspora_async as da


async def test_drain_waits_for_a_lease_held_elsewhere_then_delivers() -> None:
    orm = da.Diaspora()
    for name in ("a", "b", "box"):
        orm.create_data_source(name, "memory")
    orm.use_outbox("box", lease=0.2)

    class Item(orm.Model, sources=["a", "b"]):
        name: str

    async with orm:
        item = Item.spawn(name="x")
        await item.persist("a", defer=["b"])
        # Another relay claimed the intent and died: its lease has to run out first.
        (row,) = await orm.outbox._find(None)
        assert len(await orm.outbox._claim([row], datetime.now(UTC))) == 1
        relay = orm.relay(interval=0.05, batch_size=10)
        assert await relay.live() == 1
        await asyncio.wait_for(relay.drain(), 5)
        assert relay.delivered.replayed == 1 and relay.passes >= 2
        assert await relay.live() == 0
        found = await Item.find(item.id, source="b")
        assert found is not None and found.revision == item.revision
