"""Models a static type checker understands: ``da.Model`` with ``registry=orm``.

``class Article(orm.Model, ...)`` works at run time, but a type checker cannot use an
attribute of a variable as a base class. The same model spelled
``class Article(da.Model, registry=orm, ...)`` is identical at run time and fully typed:
``await Article.find(...)`` is ``Article | None``, ``find_many`` yields ``Article``s.
``nox -s typecheck`` checks this file with ``mypy --strict``.
"""

from __future__ import annotations

import asyncio

import diaspora_async as da

orm = da.Diaspora()
orm.create_data_source("mem", "memory")


class Article(da.Model, registry=orm, sources=["mem"]):
    title: str
    views: int = 0

    def headline(self) -> str:
        return f"{self.title.upper()} ({self.views} views)"


async def main() -> None:
    async with orm:
        await Article.insert_many(
            [{"title": "typed", "views": 3}, {"title": "checked", "views": 9}]
        )
        best: Article | None = await Article.find({"views": {">": 5}})
        assert best is not None
        print("best:", best.headline())
        for article in await Article.find_many(sort="-views"):
            print("-", article.headline())


if __name__ == "__main__":
    asyncio.run(main())
