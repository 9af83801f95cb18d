"""Under ``on_error="queue"``, a write a hook vetoed leaves no intent behind.

The intents are recorded before the write (write-ahead); a failure a delivery would only
repeat, or one that is no store's failure at all (a ``before_*`` hook raising), must take
its intents with it, or a later replay would perform the very write the hook refused.
Checked for one source (the part's error propagates as is) and for several (the
``FanOutError`` path), for persist and for destroy.
"""

from __future__ import annotations

from typing import Any

import pytest

import diaspora_async as da


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
