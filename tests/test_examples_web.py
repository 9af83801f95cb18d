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


async def exercise_notes(client: httpx.AsyncClient) -> dict[str, Any]:
    """The hand-written endpoints both examples share."""
    r = await client.post("/notes", json={"title": "first", "body": "hello"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["title"] == "first" and first["done"] is False and first["created"]
    r = await client.post("/notes", json={"title": "second"})
    second = r.json()
    assert (await client.get(f"/notes/{first['id']}")).json() == first
    assert (await client.get("/notes/missing")).status_code == 404
    r = await client.post(f"/notes/{second['id']}/done")
    assert r.status_code == 200 and r.json()["done"] is True
    assert [n["title"] for n in (await client.get("/notes", params={"done": "true"})).json()] == [
        "second"
    ]
    assert {n["title"] for n in (await client.get("/notes")).json()} == {"first", "second"}
    assert (await client.get("/stats")).json() == {"total": 2, "done": 1}
    return first


async def test_fastapi_example_serves_handlers_and_the_rest_api() -> None:
    example = load_example("fastapi_app")
    async with serve(example.app, lifespan="on") as url:
        assert example.orm.data_sources["main"].connected  # opened by the lifespan
        await example.Note.delete_many({}, allow_empty_query=True)  # the module is cached
        async with httpx.AsyncClient(base_url=url) as client:
            first = await exercise_notes(client)
            assert (await client.post("/notes", json={"title": ""})).status_code == 422

            # The generic REST app mounted under /api sees the same data.
            where = json.dumps({"done": False})
            r = await client.get("/api/Note", params={"where": where})
            assert [n["id"] for n in r.json()] == [first["id"]]
            assert (await client.get("/api/Note/count")).json() == {"count": 2}
            r = await client.get("/api/Note", params={"limit": "101"})
            assert r.status_code == 400 and r.json()["error"]["details"] == {"max_limit": 100}
            r = await client.get("/api/Nope")
            assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"
            doc = (await client.get("/api/openapi.json")).json()
            assert "/Note/{id}" in doc["paths"]

        # And the http adapter talks to the mounted API like to any store.
        remote = da.Diaspora()
        remote.create_data_source("api", "http", base_url=f"{url}/api")

        class Note(remote.Model, sources=["api"]):
            title: str
            body: str = ""
            done: bool = False
            created: datetime = da.field(default_factory=lambda: datetime.now(UTC))

        async with remote:
            note = await Note.insert({"title": "via http adapter"})
            served = await client_get_json(url, f"/notes/{note.id}")
            assert served["title"] == "via http adapter"
            assert datetime.fromisoformat(served["created"]) == note.created
            assert await Note.count({"done": False}) == 2
    assert not example.orm.data_sources["main"].connected  # closed by the lifespan


async def client_get_json(url: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=url) as client:
        return (await client.get(path)).json()


async def test_aiohttp_example_serves_the_same_service() -> None:
    from aiohttp.test_utils import TestServer

    example = load_example("aiohttp_app")
    app = example.make_app()
    orm = app[example.NOTE].__meta__.registry
    async with TestServer(app, host="127.0.0.1") as server:
        assert orm.data_sources["main"].connected
        base = str(server.make_url("/"))
        async with httpx.AsyncClient(base_url=base) as client:
            await exercise_notes(client)
            r = await client.post("/notes", json={"title": 5})
            assert r.status_code == 422
            assert r.json() == {
                "errors": [{"path": "title", "message": "Input should be a valid string"}]
            }
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
