"""Model classes as pydantic types, and the FastAPI / aiohttp integrations, through real
HTTP clients (httpx over ASGI, aiohttp's test server) and real stores (sqlite + memory)."""

# No ``from __future__ import annotations``: FastAPI must see the route annotations
# themselves (the models are local to the tests).

import enum
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter

import diaspora_async as da
from diaspora_async.fastapi import install_exception_handlers, lifespan, mount


class Status(enum.StrEnum):
    draft = "draft"
    live = "live"


@pytest.fixture
async def orm(tmp_path: Path) -> AsyncIterator[da.Diaspora]:
    orm = da.Diaspora()
    orm.create_data_source("main", "sqlite", path=str(tmp_path / "main.db"))
    orm.create_data_source("cache", "memory")
    yield orm
    await orm.close()


def declare(orm: da.Diaspora) -> Any:
    class Article(orm.Model, sources=["main", "cache"]):
        title: str
        views: int = 0
        status: Status = Status.draft

    return Article


async def test_a_model_is_a_pydantic_type(orm: da.Diaspora) -> None:
    Article = declare(orm)
    adapter = TypeAdapter(list[Article])
    [spawned] = adapter.validate_python([{"title": "t", "status": "live"}])
    assert isinstance(spawned, Article) and spawned.status is Status.live
    assert spawned.state is da.EntityState.ORPHAN
    dumped = adapter.dump_python([spawned], mode="json")
    assert dumped == [{"id": spawned.id, "title": "t", "views": 0, "status": "live"}]
    assert adapter.validate_python([spawned])[0] is spawned  # an entity is taken as is
    assert set(Article.schema_for("read").model_json_schema()["required"]) == {"id", "title"}
    assert "required" not in Article.schema_for("patch").model_json_schema()
    assert Article.schema_for("create")(title="x").id is None
    with pytest.raises(ValueError, match="shape"):
        Article.schema_for("update")


async def test_fastapi_routes_rest_writes_and_error_answers(orm: da.Diaspora) -> None:
    Article = declare(orm)
    ArticleIn = Article.schema_for("create")
    app = FastAPI(lifespan=lifespan(orm))
    install_exception_handlers(app)

    @app.post("/articles", response_model=Article, status_code=201)
    async def create(body: ArticleIn) -> Any:  # type: ignore[valid-type]
        return await Article.insert(body.model_dump(exclude_none=True), source=da.ALL)  # type: ignore[attr-defined]

    @app.post("/raw", response_model=Article)
    async def raw(body: Article) -> Any:  # the model class itself as the request body
        return await body.persist()

    @app.get("/articles", response_model=list[Article])
    async def listing(sort: str = "id") -> Any:
        return await Article.find_many(sort=sort)

    @app.get("/fetch/{article_id}")
    async def refetch(article_id: str) -> Any:
        return (await Article.spawn(id=article_id, title="x").fetch()).to_dict(mode="json")

    @app.get("/plain/{article_id}")
    async def plain(article_id: str):  # type: ignore[no-untyped-def]  # no response model
        return await Article.find(article_id)

    @app.get("/down")
    async def down() -> Any:
        raise da.ConnectionLost("cache", "could not connect to redis://secret@host")

    mount(app, orm, "/api")
    async with lifespan(orm)(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/articles", json={"title": "a", "status": "live"})
            assert r.status_code == 201, r.text
            made = r.json()
            r = await client.post("/raw", json={"title": "b", "views": 2})
            assert r.status_code == 200 and r.json()["views"] == 2
            assert (await client.post("/raw", json={"title": "b", "oops": 1})).status_code == 422
            assert [a["title"] for a in (await client.get("/articles")).json()] == ["a", "b"]
            plain = (await client.get(f"/plain/{made['id']}")).json()
            assert plain == {"id": made["id"], "title": "a", "views": 0, "status": "live"}
            r = await client.get("/articles", params={"sort": "nope"})
            assert r.status_code == 400 and r.json()["error"]["type"] == "QueryError"
            assert (await client.get("/fetch/none")).status_code == 404
            r = await client.get("/down")
            assert r.status_code == 503 and r.json()["error"]["details"] == {"source": "cache"}
            assert "secret" not in r.text

            # The mounted REST app writes to every source of the model: no stale cache.
            r = await client.patch(f"/api/Article/{made['id']}", json={"views": 9})
            assert r.status_code == 200, r.text
            for source in ("main", "cache"):
                found = await Article.find(made["id"], source=source)
                assert found is not None and found.views == 9 and found.status is Status.live
            assert (await client.delete(f"/api/Article/{made['id']}")).status_code == 200
            for source in ("main", "cache"):
                assert await Article.find(made["id"], source=source) is None
            r = await client.post("/api/Article", json={"title": "c"})
            assert r.status_code == 201
            assert await Article.find(r.json()["id"], source="cache") is not None

            doc = (await client.get("/openapi.json")).json()
            assert "/api/Article/{id}" in doc["paths"] and "/articles" in doc["paths"]
            assert doc["components"]["schemas"]["Status"]["enum"] == ["draft", "live"]


async def test_aiohttp_integration(orm: da.Diaspora) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from diaspora_async.aiohttp import error_middleware, mount, orm_context

    Article = declare(orm)

    async def listing(request: web.Request) -> web.Response:
        found = await Article.find_many(sort=request.query.get("sort", "id"))
        return web.json_response([a.to_dict(mode="json") for a in found])

    app = web.Application(middlewares=[error_middleware])
    app.cleanup_ctx.append(orm_context(orm))
    app.router.add_get("/articles", listing)
    mount(app, orm, "/api")
    server = TestServer(app, host="127.0.0.1")
    async with server, httpx.AsyncClient(base_url=str(server.make_url("/"))) as client:
        r = await client.post("/api/Article", json={"title": "a", "status": "live"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert (await client.get("/articles")).json() == [
            {"id": made["id"], "title": "a", "views": 0, "status": "live"}
        ]
        r = await client.get("/articles", params={"sort": "nope"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "QueryError"
        r = await client.patch(f"/api/Article/{made['id']}", json={"views": 3})
        assert r.status_code == 200 and r.json()["views"] == 3
        found = await Article.find(made["id"], source="cache")
        assert found is not None and found.views == 3
        r = await client.get("/api/Article", params={"where": '{"views": {">": 1}}'})
        assert [a["id"] for a in r.json()] == [made["id"]]
        assert (await client.get("/api/Nope")).status_code == 404
    assert not orm.data_sources["main"].connected


async def test_a_rest_write_whose_cache_fails_answers_503_naming_it(tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    from tests.faults.proxy import FaultProxy
    from tests.targets import redis as redis_target

    parts = urlsplit(redis_target.redis_url())
    orm = da.Diaspora()
    orm.create_data_source("main", "sqlite", path=str(tmp_path / "main.db"))
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    async with redis_target.TARGET.open() as config, proxy.running() as port:
        url = config["url"].replace(f":{parts.port}", f":{port}", 1)
        orm.create_data_source("cache", "redis", **{**config, "url": url, "timeout": 0.5})
        Article = declare(orm)
        app = FastAPI()
        mount(app, orm, "/api")
        try:
            async with (
                orm,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://t"
                ) as client,
            ):
                made = (await client.post("/api/Article", json={"title": "a"})).json()
                proxy.blackhole = True  # the cache stops answering
                r = await client.patch(f"/api/Article/{made['id']}", json={"views": 5})
                assert r.status_code == 503, r.text
                error = r.json()["error"]
                assert error["details"]["failed"] == ["cache"]
                assert error["details"]["succeeded"] == ["main"]
                found = await Article.find(made["id"], source="main")
                assert found is not None and found.views == 5
                proxy.heal()
                await Article.delete_many({}, allow_empty_query=True, source=da.ALL)
        finally:
            await orm.close()


def test_fan_out_errors_answer_their_common_client_error_else_503() -> None:
    from diaspora_async import wire

    taken = da.FanOutError(
        "persist failed",
        {"main": da.IntegrityError("main", "slug taken"), "cache": da.IntegrityError("cache", "x")},
    )
    status, body = wire.encode_error(taken)
    assert status == 409 and body["error"]["type"] == "IntegrityError"
    mixed = da.FanOutError(
        "persist failed",
        {"main": da.IntegrityError("main", "taken"), "cache": da.ConnectionLost("cache", "down")},
        succeeded=["search"],
    )
    status, body = wire.encode_error(mixed)
    assert status == 503 and body["error"]["details"]["failed"] == ["main", "cache"]
    assert body["error"]["details"]["succeeded"] == ["search"]


async def test_mount_serves_only_the_models_named(orm: da.Diaspora) -> None:
    declare(orm)

    class Hidden(orm.Model, sources=["main"]):
        name: str

    app = FastAPI()
    mount(app, orm, "/v1/", models=["Article"], prefix="rest")
    async with (
        orm,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        first = (await client.get("/openapi.json")).json()
        assert "/v1/rest/Article" in first["paths"]
        assert not any("Hidden" in p for p in first["paths"])
        assert (await client.get("/openapi.json")).json() == first  # built once
        assert (await client.get("/v1/rest/Hidden")).status_code == 404
        assert (await client.get("/v1/rest/Article")).json() == []
    assert Hidden.__meta__.name == "Hidden"


async def test_rest_openapi_describes_special_types_as_they_travel() -> None:
    from tests.targets.http import server_app, server_orm

    async with server_orm() as orm:
        transport = httpx.ASGITransport(app=server_app(orm))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            doc = (await client.get("/api/openapi.json")).json()
            made = (await client.post("/api/Typed", json={"name": "n", "day": "2026-01-02"})).json()
    typed = doc["components"]["schemas"]["Typed"]["properties"]
    assert typed["day"]["anyOf"][0] == {"format": "date-time", "type": "string"}
    assert made["day"].startswith("2026-01-02T00:00:00")  # the stored form: its midnight
    assert typed["status"] == {"$ref": "#/components/schemas/Status", "default": "draft"}
    assert doc["components"]["schemas"]["Status"]["enum"] == ["draft", "live"]
    assert typed["ref"]["anyOf"][0] == {"format": "uuid", "type": "string"}
