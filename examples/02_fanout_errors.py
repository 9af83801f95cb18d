"""When one store of a fan-out write fails: what you are told, and the three policies.

``main`` is a SQLite file; ``search`` stands in for a search service that can go down
(a small third-party adapter, registered with ``register_adapter``, whose ``online`` flag
simulates the outage). Run: ``python examples/02_fanout_errors.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import diaspora_async as da
from diaspora_async.adapters.memory import MemoryAdapter


class FlakySearch(MemoryAdapter):
    """An in-memory "search index" that refuses writes while ``online`` is False."""

    label = "flaky-search"

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, {})
        self.online = True

    def _check(self) -> None:
        if not self.online:
            raise da.ConnectionLost(self.name, "search service unreachable")

    async def write(
        self,
        schema: da.CollectionSchema,
        rows: Sequence[dict[str, Any]],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        # Every entity write (insert, update, delete) is one revision-guarded write.
        self._check()
        return await super().write(schema, rows, expect, fresh=fresh)


async def main(folder: Path) -> None:
    orm = da.Diaspora()
    orm.register_adapter("flaky-search", FlakySearch)
    orm.create_data_source("main", "sqlite", path=str(folder / "app.db"))
    search = orm.create_data_source("search", "flaky-search")
    orm.create_data_source("outbox", "sqlite", path=str(folder / "outbox.db"))
    orm.use_outbox("outbox")  # durable: survives a restart

    class Article(orm.Model, sources=["main", "search"]):
        title: str

    async with orm:
        search.adapter.online = False  # type: ignore[attr-defined]

        a = Article.spawn(title="written while search is down")
        try:
            await a.persist(da.ALL)  # on_error="raise" is the default
        except da.FanOutError as exc:
            print(f"FanOutError: succeeded={exc.succeeded} failed={list(exc.failed)}")
            print(f"  search said: {exc.failed['search']}")
        print(f"states: main={a.state_in('main').name} search={a.state_in('search').name}")

        b = Article.spawn(title="all or nothing")
        try:
            await b.persist(da.ALL, on_error="compensate")
        except da.FanOutError as exc:
            print(f"compensated: {exc.compensated} (main={b.state_in('main').name})")

        c = Article.spawn(title="nothing lost")
        try:
            await c.persist(da.ALL, on_error="queue")
        except da.FanOutError as exc:
            print(f"queued: {exc.queued}; outbox holds {len(await orm.outbox.pending())} write(s)")

        search.adapter.online = True  # type: ignore[attr-defined]
        print(f"replayed: {await orm.replay_outbox()}")
        print(f"search has it now: {await Article.find(c.id, source='search') is not None}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
