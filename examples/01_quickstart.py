"""Quickstart: one model, two embedded stores, written to both in one await.

Run it with ``nox -s demo`` (or ``python examples/01_quickstart.py``); it needs no server:
the data lives in a temporary SQLite file and in process memory.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import diaspora_async as da


async def main(db_path: str) -> None:
    orm = da.Diaspora()
    orm.create_data_source("main", "sqlite", path=db_path)
    orm.create_data_source("cache", "memory")

    class Article(orm.Model, sources=["main", "cache"]):  # first source is the default
        title: str
        views: int = 0
        tags: list[str] = da.field(default_factory=list)
        published: datetime | None = None
        status: str = da.field(default="draft", choices=["draft", "live"], index=True)

    async with orm:  # opens both stores and creates the table
        a = Article.spawn(title="Hello, diaspora")
        print(f"spawned   {a.title!r}: state={a.state.name} (stored nowhere yet)")

        await a.persist(["main", "cache"])  # both writes run concurrently
        print(
            f"persisted to main+cache: main={a.state_in('main').name} "
            f"cache={a.state_in('cache').name}"
        )

        a.views = 42
        a.published = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        await a.persist("cache")  # only the cache gets the change...
        print(
            f"changed, saved to cache only: main={a.state_in('main').name} "
            f"cache={a.state_in('cache').name} changed in main: {sorted(a.diff('main'))}"
        )
        await a.persist()  # ...then the default source
        print(f"saved to main too: overall state={a.state.name}")

        await Article.insert_many(
            [{"title": f"Post {i}", "views": i * 7, "status": "live"} for i in range(1, 6)]
        )  # one multi-row INSERT
        hits = await Article.find_many({"views": {">": 10}}, sort="-views", limit=3)
        print("top 3 with views > 10:", [(h.title, h.views) for h in hits])
        print("live posts:", await Article.count({"status": "live"}))

        cached = await Article.find(a.id, source=["cache", "main"])  # cache-aside read
        assert cached is not None
        print(f"read back from {cached.last_data_source}: {cached.title!r}, {cached.views} views")

        try:
            await Article.insert({"title": "Bad", "views": "many", "status": "archived"})
        except da.ValidationError as exc:
            print(f"rejected before any write:\n{exc}")

        await a.destroy(da.ALL)
        print(
            f"destroyed everywhere: state={a.state.name}; "
            f"{await Article.count()} articles left in main"
        )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(str(Path(tmp) / "quickstart.db")))
