"""The same articles service in aiohttp: handlers ``await`` the ORM directly.

``make_app()`` builds the registry, the model and the routes. ``orm_context`` opens the
ORM when the app starts and closes it when it stops; ``error_middleware`` answers our
errors as 400/404/409/422/503; ``to_dict(mode="json")`` makes an entity JSON-safe
(datetimes in ISO 8601, enums by value); ``mount`` serves the generic REST API under
``/api``. Run it with ``python examples/aiohttp_app.py`` then try
``curl -d '{"title": "hi"}' localhost:8080/articles``.
"""

from __future__ import annotations

import enum
import os
from datetime import UTC, datetime

from aiohttp import web

import diaspora_async as da
from diaspora_async.aiohttp import error_middleware, mount, orm_context

ARTICLE: web.AppKey[type[da.Model]] = web.AppKey("Article")


def now() -> datetime:
    return datetime.now(UTC)


class Status(enum.StrEnum):
    draft = "draft"
    live = "live"


async def create_article(request: web.Request) -> web.Response:
    article = await request.app[ARTICLE].insert(await request.json())  # 422 if invalid
    return web.json_response(article.to_dict(mode="json"), status=201)


async def list_articles(request: web.Request) -> web.Response:
    Article = request.app[ARTICLE]
    status = request.query.get("status")
    query = {} if status is None else {"status": status}
    sort = request.query.get("sort", "-created")  # a bad sort key answers 400
    found = await Article.find_many(query, sort=sort, limit=20)
    return web.json_response([a.to_dict(mode="json") for a in found])


async def get_article(request: web.Request) -> web.Response:
    article = await request.app[ARTICLE].find(request.match_info["id"])
    if article is None:
        raise web.HTTPNotFound(text="no such article")
    return web.json_response(article.to_dict(mode="json"))


async def patch_article(request: web.Request) -> web.Response:
    Article = request.app[ARTICLE]
    article = await Article.update(request.match_info["id"], await request.json())
    if article is None:
        raise web.HTTPNotFound(text="no such article")
    return web.json_response(article.to_dict(mode="json"))


async def stats(request: web.Request) -> web.Response:
    Article = request.app[ARTICLE]
    live = await Article.count({"status": Status.live})
    return web.json_response({"total": await Article.count(), "live": live})


def make_app() -> web.Application:
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")

    class Article(da.Model, registry=orm, sources=["main"]):
        title: str = da.field(validate=lambda t: 0 < len(t) <= 200)
        body: str = ""
        status: Status = da.field(default=Status.draft, index=True)
        created: datetime = da.field(default_factory=now)

    app = web.Application(middlewares=[error_middleware])
    app[ARTICLE] = Article
    app.cleanup_ctx.append(orm_context(orm))  # connected while the app runs
    app.add_routes([
        web.post("/articles", create_article),
        web.get("/articles", list_articles),
        web.get("/articles/{id}", get_article),
        web.patch("/articles/{id}", patch_article),
        web.get("/stats", stats),
    ])  # fmt: skip
    mount(app, orm, "/api", max_limit=100)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
