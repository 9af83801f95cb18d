"""The REST protocol, route by route, spoken with plain httpx to ``create_app``.

The server runs in process behind ``httpx.ASGITransport`` over a memory store; each test
checks status, body and what the store holds afterwards (through the server's own
registry, not through the app).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import diaspora_async as da
from diaspora_async.server import create_app
from tests.targets.http import server_orm


@pytest.fixture
async def orm() -> AsyncIterator[da.Diaspora]:
    async with server_orm() as orm:
        yield orm


@pytest.fixture
async def client(orm: da.Diaspora) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(orm, ["Article", "Doc"], prefix="/api")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/") as c:
        yield c


async def seed(client: httpx.AsyncClient, n: int = 5) -> list[dict[str, Any]]:
    items = [{"title": f"t{i}", "views": i * 10, "tags": ["x"] if i % 2 else []} for i in range(n)]
    r = await client.post("Article", json=items)
    assert r.status_code == 201, r.text
    created: list[dict[str, Any]] = r.json()
    return created


async def test_post_one_and_many_return_the_created_entities(
    client: httpx.AsyncClient, orm: da.Diaspora
) -> None:
    r = await client.post(
        "Article", json={"title": "one", "published": "2024-01-02T03:04:05.678+02:00"}
    )
    assert r.status_code == 201
    one = r.json()
    assert one["title"] == "one" and one["views"] == 0 and one["status"] == "draft"
    assert one["published"] == "2024-01-02T01:04:05.678Z"  # UTC, milliseconds, Z
    r = await client.post("Article", json=[{"title": "a"}, {"id": "given", "title": "b"}])
    assert r.status_code == 201
    assert [e["title"] for e in r.json()] == ["a", "b"] and r.json()[1]["id"] == "given"
    stored = await orm.models["Article"].find(one["id"])
    assert stored is not None
    assert stored.published == datetime(2024, 1, 2, 1, 4, 5, 678000, tzinfo=UTC)
    assert await orm.models["Article"].count() == 3


async def test_get_by_id_and_unknown_id(client: httpx.AsyncClient) -> None:
    created = await seed(client, 2)
    r = await client.get(f"Article/{created[1]['id']}")
    assert r.status_code == 200
    # reads carry the stored copy's revision; a POST answer has one only once entities do
    got = r.json()
    assert "_rev" in got
    assert {k: v for k, v in got.items() if k != "_rev"} == {
        k: v for k, v in created[1].items() if k != "_rev"
    }
    r = await client.get("Article/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "NotFound"


async def test_find_with_where_sort_skip_limit(client: httpx.AsyncClient) -> None:
    await seed(client, 6)
    where = json.dumps({"views": {">=": 10}, "tags": {"$contains": "x"}})
    r = await client.get("Article", params={"where": where, "sort": "-views,title"})
    assert [e["views"] for e in r.json()] == [50, 30, 10]
    r = await client.get("Article", params={"sort": "-views", "skip": "1", "limit": "2"})
    assert [e["views"] for e in r.json()] == [40, 30]
    r = await client.get("Article", params={"sort": "views", "page": "2", "limit": "2"})
    assert [e["views"] for e in r.json()] == [40, 50]


async def test_find_without_limit_returns_at_most_max_limit(orm: da.Diaspora) -> None:
    app = create_app(orm, max_limit=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.post("/Doc", json=[{"name": str(i)} for i in range(5)])
        assert len((await c.get("/Doc")).json()) == 3
        assert len((await c.get("/Doc", params={"limit": "3"})).json()) == 3


async def test_count(client: httpx.AsyncClient) -> None:
    await seed(client, 5)
    assert (await client.get("Article/count")).json() == {"count": 5}
    where = json.dumps({"views": {"<": 20}})
    assert (await client.get("Article/count", params={"where": where})).json() == {"count": 2}


async def test_patch_by_id_and_by_where(client: httpx.AsyncClient, orm: da.Diaspora) -> None:
    created = await seed(client, 4)
    r = await client.patch(f"Article/{created[0]['id']}", json={"title": "new", "score": 1.5})
    assert r.status_code == 200
    assert r.json()["title"] == "new" and r.json()["score"] == 1.5
    where = json.dumps({"views": {">": 0}})
    r = await client.patch("Article", params={"where": where}, json={"status": "live"})
    assert r.status_code == 200 and len(r.json()) == 3
    assert await orm.models["Article"].count({"status": "live"}) == 3
    r = await client.patch("Article", params={"where": where}, json={"draft": False},
                           headers={"prefer": "return=minimal"})  # fmt: skip
    assert r.json() == {"updated": 3}
    r = await client.patch("Article/missing", json={"title": "x"})
    assert r.status_code == 404


async def test_delete_by_id_and_by_where(client: httpx.AsyncClient, orm: da.Diaspora) -> None:
    created = await seed(client, 4)
    r = await client.delete(f"Article/{created[0]['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": 1}
    assert (await client.delete(f"Article/{created[0]['id']}")).status_code == 404
    where = json.dumps({"views": {">": 10}})
    assert (await client.delete("Article", params={"where": where})).json() == {"deleted": 2}
    assert [e.title for e in await orm.models["Article"].find_many()] == ["t1"]


async def test_prefer_minimal_on_post(client: httpx.AsyncClient) -> None:
    r = await client.post("Doc", json=[{"name": "a"}, {"name": "b"}],
                          headers={"prefer": "return=minimal"})  # fmt: skip
    assert r.status_code == 201 and r.json() == {"created": 2}


async def test_only_listed_models_are_served(client: httpx.AsyncClient) -> None:
    # ``RemappedOnServer`` exists in the registry but was not listed.
    r = await client.get("Remapped")
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"


async def test_models_declared_after_create_app_are_served(orm: da.Diaspora) -> None:
    app = create_app(orm)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/Late")).status_code == 404

        class Late(orm.Model, sources=["main"]):
            name: str

        await orm.connect()
        r = await c.post("/Late", json={"name": "here"})
        assert r.status_code == 201
        assert (await c.get("/Late/count")).json() == {"count": 1}


async def test_openapi_document_describes_models_and_routes(client: httpx.AsyncClient) -> None:
    r = await client.get("openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in ("/api/Article", "/api/Article/count", "/api/Article/{id}", "/api/Doc"):
        assert path in paths
    assert set(paths["/api/Article"]) == {"get", "post", "patch", "delete"}
    article = doc["components"]["schemas"]["Article"]
    assert set(article["required"]) == {"id", "title"}
    assert article["properties"]["status"]["enum"] == ["draft", "live", "gone"]
    assert article["properties"]["views"]["default"] == 0
    assert article["properties"]["published"]["anyOf"][0]["format"] == "date-time"
    changes = doc["components"]["schemas"]["ArticleChanges"]
    assert "required" not in changes and "id" not in changes["properties"]
    refs = json.dumps(doc)
    for name in ("Error", "Count", "Deleted"):
        assert f"#/components/schemas/{name}" in refs and name in doc["components"]["schemas"]


async def test_mounted_under_a_prefix_only_answers_there(orm: da.Diaspora) -> None:
    app = create_app(orm, prefix="v1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/v1/Doc")).status_code == 200
        r = await c.get("/Doc")
        assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"


async def test_source_option_reads_and_writes_the_given_source(orm: da.Diaspora) -> None:
    app = create_app(orm, source="aux")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.post("/Article", json={"title": "in aux"})
    Article = orm.models["Article"]
    assert await Article.count(source="aux") == 1
    assert await Article.count(source="main") == 0


def test_bad_options_raise_config_error(orm: da.Diaspora) -> None:
    with pytest.raises(da.ConfigError, match="max_limit"):
        create_app(orm, max_limit=0)
    with pytest.raises(da.ConfigError, match="max_body"):
        create_app(orm, max_body=-1)
