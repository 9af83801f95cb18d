"""Bad requests get the right status and error body, and write nothing.

The server's store is a memory adapter subclass that records which adapter methods were
called, so "never reaches a store" is checked, not assumed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import pytest

import diaspora_async as da
from diaspora_async.adapters.base import CollectionSchema, Row
from diaspora_async.adapters.memory import MemoryAdapter
from diaspora_async.query.ast import Node, Query
from diaspora_async.server import create_app


class RecordingMemory(MemoryAdapter):
    """The memory store, noting every data call it receives."""

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.calls: list[str] = []

    async def insert(self, schema: CollectionSchema, rows: Sequence[Row]) -> None:
        self.calls.append("insert")
        await super().insert(schema, rows)

    async def get(self, schema: CollectionSchema, ids: Sequence[str]) -> list[Row]:
        self.calls.append("get")
        return await super().get(schema, ids)

    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        self.calls.append("find")
        return await super().find(schema, query)

    async def count(self, schema: CollectionSchema, where: Node | None) -> int:
        self.calls.append("count")
        return await super().count(schema, where)

    async def update(self, schema: CollectionSchema, changes: Sequence[tuple[str, Row]]) -> int:
        self.calls.append("update")
        return await super().update(schema, changes)

    async def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> int:
        self.calls.append("delete")
        return await super().delete(schema, ids)


class Env:
    def __init__(self, orm: da.Diaspora, client: httpx.AsyncClient) -> None:
        self.orm = orm
        self.client = client
        adapter = orm.data_sources["main"].adapter
        assert isinstance(adapter, RecordingMemory)
        self.store = adapter
        self.Note = orm.models["Note"]

    async def expect(
        self, response: httpx.Response, status: int, type_: str | None = None
    ) -> dict[str, Any]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"type", "message", "details"}
        if type_ is not None:
            assert body["error"]["type"] == type_
        assert "Traceback" not in response.text
        assert await self.Note.count() == 2  # nothing written or deleted
        error: dict[str, Any] = body["error"]
        return error


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    orm = da.Diaspora()
    orm.register_adapter("recording", RecordingMemory)
    orm.create_data_source("main", "recording")

    class Note(orm.Model, sources=["main"]):
        text: str
        rank: int = 0

    async with orm:
        await Note.insert_many([{"text": "a"}, {"text": "b", "rank": 1}])
        app = create_app(orm, max_limit=50, max_body=2000)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            e = Env(orm, client)
            e.store.calls.clear()
            yield e


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"rank": {"$bogus": 1}}', "unknown operator"),
        ('{"nope": 1}', "no field 'nope'"),
        ('{"rank": {">": "high"}}', "number or datetime"),
        ('{"rank": NaN}', "not valid JSON"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "COUNT", "PATCH", "DELETE"])
async def test_bad_where_is_400_and_touches_nothing(
    env: Env, method: str, where: str, fragment: str
) -> None:
    params = {"where": where}
    if method == "GET":
        r = await env.client.get("/Note", params=params)
    elif method == "COUNT":
        r = await env.client.get("/Note/count", params=params)
    elif method == "PATCH":
        r = await env.client.patch("/Note", params=params, json={"rank": 5})
    else:
        r = await env.client.delete("/Note", params=params)
    error = await env.expect(r, 400, "QueryError")
    assert fragment in error["message"]
    assert env.store.calls == ["count"]  # only the test's own check reached the store


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "-1"}, "limit must be a whole number"),
        ({"limit": "1.5"}, "limit must be a whole number"),
        ({"skip": "-3"}, "skip must be a whole number"),
        ({"sort": "-nope"}, "unknown field"),
        ({"page": "1"}, "page needs limit"),
        ({"wher": '{"rank": 1}'}, "unknown parameter"),
        ([("where", '{"rank": 1}'), ("where", "{}")], "repeated"),
    ],
)
async def test_bad_options_are_400(env: Env, params: Any, fragment: str) -> None:
    error = await env.expect(await env.client.get("/Note", params=params), 400, "QueryError")
    assert fragment in error["message"]
    assert env.store.calls == ["count"]


async def test_limit_above_the_cap_is_400_with_the_cap(env: Env) -> None:
    error = await env.expect(
        await env.client.get("/Note", params={"limit": "51"}), 400, "QueryError"
    )
    assert error["details"] == {"max_limit": 50}
    assert (await env.client.get("/Note", params={"limit": "50"})).status_code == 200


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"text": 5}, ["text"]),
        ({"text": "ok", "rank": "high"}, ["rank"]),
        ({"rank": 1}, ["text"]),
        ({"text": "ok", "extra": 1}, ["extra"]),
        ([{"text": "ok"}, {"text": []}], ["[1].text"]),
        ([{"text": "ok"}, 3], ["[1]"]),
        ("just a string", ["(body)"]),
        ([], ["(body)"]),
    ],
)
async def test_wrong_types_in_a_post_body_are_422(env: Env, body: Any, paths: list[str]) -> None:
    error = await env.expect(await env.client.post("/Note", json=body), 422, "ValidationError")
    assert [d["path"] for d in error["details"]] == paths
    assert all(isinstance(d["message"], str) and d["message"] for d in error["details"])
    assert "insert" not in env.store.calls


async def test_wrong_types_in_a_patch_body_are_422(env: Env) -> None:
    r = await env.client.patch("/Note", params={"where": '{"rank": 1}'}, json={"rank": "x"})
    error = await env.expect(r, 422, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["rank"]
    r = await env.client.patch("/Note", params={"where": '{"rank": 1}'}, json=[1])
    await env.expect(r, 422, "ValidationError")
    assert "update" not in env.store.calls


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"text": NaN}'])
async def test_malformed_json_body_is_400(env: Env, body: bytes) -> None:
    r = await env.client.post("/Note", content=body, headers={"content-type": "application/json"})
    await env.expect(r, 400, "MalformedJSON")
    assert env.store.calls == ["count"]


async def test_unknown_collection_route_and_method(env: Env) -> None:
    await env.expect(await env.client.get("/Nope"), 404, "NotFound")
    await env.expect(await env.client.post("/Nope", json={"text": "x"}), 404, "NotFound")
    await env.expect(await env.client.get("/Note/a/b"), 404, "NotFound")
    await env.expect(await env.client.get("/"), 404, "NotFound")
    r = await env.client.put("/Note/x", json={"text": "x"})
    await env.expect(r, 405, "MethodNotAllowed")
    assert "PATCH" in r.headers["allow"]
    assert env.store.calls == ["count"] * 5


@pytest.mark.parametrize(
    "path",
    [
        "/Note/..",
        "/Note/%2E%2E",
        "/Note/..%2F..%2Fetc%2Fpasswd",
        "/Note/%2E%2E%2FNote",
        "/Note/a%5Cb",
        "/Note/a%00b",
    ],
)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_path_tricks_in_ids_never_reach_the_store(env: Env, path: str, method: str) -> None:
    # A raw request, so httpx does not normalise the dot segments away.
    request = env.client.build_request(
        method, "http://t", json={"text": "x"} if method == "PATCH" else None
    )
    request.url = request.url.copy_with(raw_path=path.encode())
    r = await env.client.send(request)
    assert r.status_code in (400, 404), r.text
    await env.expect(r, r.status_code)
    assert env.store.calls == ["count"]


async def test_oversized_body_is_413(env: Env) -> None:
    big = [{"text": "x" * 100} for _ in range(30)]
    await env.expect(await env.client.post("/Note", json=big), 413, "PayloadTooLarge")

    async def stream() -> AsyncIterator[bytes]:  # no content-length: counted while read
        yield b"["
        for _ in range(30):
            yield b'{"text": "' + b"x" * 100 + b'"},'
        yield b'{"text": "end"}]'

    r = await env.client.post(
        "/Note", content=stream(), headers={"content-type": "application/json"}
    )
    await env.expect(r, 413, "PayloadTooLarge")
    assert env.store.calls == ["count", "count"]


@pytest.mark.parametrize("where", [None, "", "{}"])
async def test_empty_query_patch_and_delete_are_refused(env: Env, where: str | None) -> None:
    params = {} if where is None else {"where": where}
    r = await env.client.delete("/Note", params=params)
    error = await env.expect(r, 400, "QueryError")
    assert "non-empty where" in error["message"]
    r = await env.client.patch("/Note", params=params, json={"rank": 3})
    await env.expect(r, 400, "QueryError")
    assert await env.Note.count({"rank": 3}) == 0


async def test_empty_query_delete_allowed_when_the_server_says_so(env: Env) -> None:
    app = create_app(env.orm, allow_empty_query=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.patch("/Note", json={"rank": 7})).json()[0]["rank"] == 7
        assert (await c.delete("/Note")).json() == {"deleted": 2}
    assert await env.Note.count() == 0


async def test_duplicate_id_is_409(env: Env) -> None:
    existing = (await env.Note.find_many())[0]
    r = await env.client.post("/Note", json=[{"text": "new"}, {"id": existing.id, "text": "dup"}])
    error = await env.expect(r, 409, "IntegrityError")
    assert existing.id in error["message"]


async def asgi_get(app: Any, path: str) -> tuple[int, bytes]:
    """One GET with the path exactly as given (no client-side dot-segment normalisation)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"t")], "server": ("t", 80), "client": None,
    }  # fmt: skip
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize("path", ["/Note/../Note", "/Note/../../etc/passwd", "/Note/./.."])
async def test_literal_dot_segments_are_refused(env: Env, path: str) -> None:
    status, body = await asgi_get(create_app(env.orm), path)
    assert status in (400, 404)
    assert set(json.loads(body)["error"]) == {"type", "message", "details"}
    assert env.store.calls == []


@pytest.mark.parametrize("depth", [200, 2500])
async def test_deeply_nested_queries_and_bodies_are_400(env: Env, depth: int) -> None:
    where = '{"$not": ' * depth + '{"rank": 1}' + "}" * depth
    r = await env.client.get("/Note", params={"where": where})
    if depth == 200:  # deep but fine: answered
        assert r.status_code == 200
    else:
        await env.expect(r, 400, "QueryError")
    body = "[" * 1000 + "]" * 1000  # just within max_body
    r = await env.client.patch("/Note", params={"where": '{"rank": 1}'}, content=body)
    assert r.status_code in (400, 422)
    await env.expect(r, r.status_code)
