"""A FastAPI service on diaspora_async: the model class is the response model.

``Article`` is a pydantic type: ``response_model=Article`` and ``list[Article]`` send its
public fields plus ``id``; request bodies come from ``Article.schema_for("create")`` and
``schema_for("patch")``. The lifespan opens the ORM, the exception handlers turn our
errors into 400/404/409/422/503 answers (a bad sort key is a 400, not a 500), reads are
cache-aside (the cache first, then the database, which refills the cache), and the
generic REST API is mounted under ``/api`` with its routes in ``/docs``. Run it with::

    python examples/fastapi_app.py          # or: uvicorn examples.fastapi_app:app

then try ``curl -d '{"title": "hi"}' -H 'content-type: application/json'
localhost:8000/articles`` and ``curl 'localhost:8000/api/Article?sort=-created'``.
"""

from __future__ import annotations

import enum
import os
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException

import diaspora_async as da
from diaspora_async.fastapi import install_exception_handlers, lifespan, mount

orm = da.Diaspora()
orm.create_data_source("main", "memory")  # swap for "sqlite"/"mysql": nothing else changes
orm.create_data_source("cache", "memory")  # e.g. "redis" in production


def now() -> datetime:
    return datetime.now(UTC)


class Status(enum.StrEnum):
    draft = "draft"
    live = "live"


class Article(da.Model, registry=orm, sources=["main", "cache"]):
    """A blog article: written to the database and the cache in one call."""

    title: str = da.field(validate=lambda t: 0 < len(t) <= 200)
    body: str = ""
    status: Status = da.field(default=Status.draft, index=True)
    created: datetime = da.field(default_factory=now)


ArticleIn = Article.schema_for("create")
ArticlePatch = Article.schema_for("patch")

app = FastAPI(title="Articles", lifespan=lifespan(orm))
install_exception_handlers(app)


async def cached(article_id: str) -> Article:
    """Cache-aside read: the cache answers if it can, else the database, which refills it."""
    found = await Article.find(article_id, source=["cache", "main"])
    if found is None:
        raise HTTPException(404, f"no article {article_id}")
    if found.last_data_source == "main":
        await found.persist("cache")
    return found


@app.post("/articles", response_model=Article, status_code=201)
async def create_article(body: ArticleIn) -> Article:  # type: ignore[valid-type]
    return await Article.insert(body.model_dump(exclude_none=True), source=da.ALL)  # type: ignore[attr-defined]


@app.get("/articles", response_model=list[Article])
async def list_articles(
    status: Status | None = None, sort: str = "-created", limit: int = 20
) -> list[Article]:
    query = {} if status is None else {"status": status}
    return list(await Article.find_many(query, sort=sort, limit=min(limit, 100)))


@app.get("/articles/{article_id}", response_model=Article)
async def get_article(article_id: str) -> Article:
    return await cached(article_id)


@app.patch("/articles/{article_id}", response_model=Article)
async def patch_article(article_id: str, body: ArticlePatch) -> Article:  # type: ignore[valid-type]
    changes = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
    updated = await Article.update(article_id, changes, source=da.ALL)
    if updated is None:
        raise HTTPException(404, f"no article {article_id}")
    return updated


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"total": await Article.count(), "live": await Article.count({"status": "live"})}


# Every model over REST, under /api (writes reach every source of the model), in /docs too.
mount(app, orm, "/api", max_limit=100)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
