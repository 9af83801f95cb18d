"""The web examples, started for real and spoken to over HTTP on 127.0.0.1.

The FastAPI app runs under uvicorn in the test's event loop (its lifespan opens and
closes the ORM), the aiohttp app under aiohttp's own test server, and the client/server
walk-through as a script in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

import diaspora_async as da
from tests.targets.http_uvicorn import serve

ROOT = Path(__file__).resolve().parent.parent


def load_example(name: str) -> ModuleType:
    module_name = f"example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # FastAPI/pydantic resolve annotations through it
    spec.loader.exec_module(module)
    return module


async def exercise_articles(client: httpx.AsyncClient) -> dict[str, Any]:
    """The hand-written endpoints both examples share, with the errors they answer."""
    r = await client.post("/articles", json={"title": "first", "body": "hello"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert set(first) == {"id", "title", "body", "status", "created"}  # no internal state
    assert first["title"] == "first" and first["status"] == "draft"
    assert datetime.fromisoformat(first["created"]).tzinfo is not None
    r = await client.post("/articles", json={"title": "second", "status": "live"})
    second = r.json()
    assert (await client.get(f"/articles/{first['id']}")).json() == first
    assert (await client.get("/articles/missing")).status_code == 404
    r = await client.patch(f"/articles/{first['id']}", json={"status": "live"})
    assert r.status_code == 200 and r.json()["status"] == "live", r.text
    r = await client.get("/articles", params={"status": "live", "sort": "title"})
    assert [a["title"] for a in r.json()] == ["first", "second"]
    assert (await client.get("/stats")).json() == {"total": 2, "live": 2}
    # A bad sort key is the caller's mistake: 400 with the error body, not a 500.
    r = await client.get("/articles", params={"sort": "nope"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "QueryError", r.text
    assert (await client.post("/articles", json={"title": ""})).status_code == 422
    r = await client.patch(f"/articles/{second['id']}", json={"status": "gone"})
    assert r.status_code == 422
    # The mounted REST API sees the same data.
    where = json.dumps({"status": "live"})
    r = await client.get("/api/Article", params={"where": where})
    assert sorted(a["id"] for a in r.json()) == sorted([first["id"], second["id"]])
    r = await client.get("/api/Article", params={"limit": "101"})
    assert r.status_code == 400 and r.json()["error"]["details"] == {"max_limit": 100}
    r = await client.get("/api/Nope")
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"
    return first


async def test_fastapi_example_serves_the_model_as_its_response_model() -> None:
    example = load_example("fastapi_app")
    async with serve(example.app, lifespan="on") as url:
        assert example.orm.data_sources["main"].connected  # opened by the lifespan
        await example.Article.delete_many({}, allow_empty_query=True, source=da.ALL)
        async with httpx.AsyncClient(base_url=url) as client:
            first = await exercise_articles(client)
            # Cache-aside: the create wrote both sources; a REST PATCH reaches both too.
            r = await client.patch(f"/api/Article/{first['id']}", json={"body": "edited"})
            assert r.status_code == 200, r.text
            cached = await example.Article.find(first["id"], source="cache")
            assert cached is not None and cached.body == "edited"
            r = await client.delete(f"/api/Article/{first['id']}")
            assert r.status_code == 200
            assert await example.Article.find(first["id"], source="cache") is None
            assert await example.Article.find(first["id"], source="main") is None

            doc = (await client.get("/openapi.json")).json()
            schemas = doc["components"]["schemas"]
            assert set(schemas["Article"]["properties"]) == {
                "id", "title", "body", "status", "created"
            }  # fmt: skip
            assert "ArticleCreate" in schemas and "ArticlePatch" in schemas
            assert "/articles/{article_id}" in doc["paths"]
            assert "/api/Article/{id}" in doc["paths"]  # the mounted API, in /docs too
            answer = doc["paths"]["/articles/{article_id}"]["get"]["responses"]["200"]
            assert answer["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Article"
            }

        # And the http adapter talks to the mounted API like to any store.
        remote = da.Diaspora()
        remote.create_data_source("api", "http", base_url=f"{url}/api")

        class Article(remote.Model, sources=["api"]):
            title: str
            body: str = ""
            status: example.Status = example.Status.draft  # type: ignore[name-defined]
            created: datetime = da.field(default_factory=lambda: datetime.now(UTC))

        async with remote:
            article = await Article.insert({"title": "via http adapter"})
            served = await client_get_json(url, f"/articles/{article.id}")
            assert served["title"] == "via http adapter"
            assert datetime.fromisoformat(served["created"]) == article.created
            assert await Article.count({"status": example.Status.live}) == 1
    assert not example.orm.data_sources["main"].connected  # closed by the lifespan


async def client_get_json(url: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=url) as client:
        return (await client.get(path)).json()


async def test_aiohttp_example_serves_the_same_service() -> None:
    from aiohttp.test_utils import TestServer

    example = load_example("aiohttp_app")
    app = example.make_app()
    orm = app[example.ARTICLE].__meta__.registry
    async with TestServer(app, host="127.0.0.1") as server:
        assert orm.data_sources["main"].connected
        base = str(server.make_url("/"))
        async with httpx.AsyncClient(base_url=base) as client:
            await exercise_articles(client)
            r = await client.post("/articles", json={"title": 5})
            assert r.status_code == 422
            assert r.json()["error"]["details"] == [
                {"path": "title", "message": "Input should be a valid string"}
            ]
    assert not orm.data_sources["main"].connected


@pytest.mark.slow
def test_client_server_example_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "client_server.py")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "server: Task stored in sqlite (tasks.db), served at http://127.0.0.1:" in out
    assert "client: data sources ['api (http)']" in out
    assert "client inserted 3 tasks in one request; states: ['SYNC']" in out
    assert "server's SQLite holds 3 tasks" in out
    assert "priority >= 3, highest first: ['fix the bug', 'write the docs']" in out
    assert "marked done: ['fix the bug']" in out
    assert "persisted an edit: server sees priority=2, client state=SYNC" in out
    assert "rejected on the client before any request: [('title'," in out
    assert "the server refused the create and the client raised ConflictError" in out
    assert "bad query refused: field 'priority': unknown operator '$near'" in out
    assert "-> 200 {'count': 2}" in out
    assert "deleted 1 done task(s); 2 left" in out
    assert out.rstrip().endswith("server stopped, done")
