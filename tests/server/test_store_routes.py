"""The store routes (``POST /{c}/_write``, ``_revisions``, ``_purge``) and ``_rev`` on reads,
spoken with plain httpx to ``create_app`` over a memory store that records its calls, so
"422 before any write" is checked against what reached the store, not assumed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.requests import Request

import diaspora_async as da
from diaspora_async.adapters.base import CollectionSchema, Revision, Row
from diaspora_async.adapters.memory import MemoryAdapter
from diaspora_async.revisions import next_revision
from diaspora_async.server import Forbidden, Unauthorized, create_app

WHEN = "2026-01-02T03:04:05.678Z"


class RecordingMemory(MemoryAdapter):
    """The memory store, noting the store-contract calls it receives."""

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.calls: list[str] = []

    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        self.calls.append("write")
        return await super().write(schema, rows, expect, fresh=fresh)

    async def revisions(self, schema: CollectionSchema, ids: Sequence[str]) -> dict[str, Revision]:
        self.calls.append("revisions")
        return await super().revisions(schema, ids)

    async def purge(self, schema: CollectionSchema, before: datetime) -> int:
        self.calls.append("purge")
        return await super().purge(schema, before)


class Env:
    def __init__(self, orm: da.Diaspora, client: httpx.AsyncClient) -> None:
        self.orm, self.client = orm, client
        adapter = orm.data_sources["main"].adapter
        assert isinstance(adapter, RecordingMemory)
        self.store = adapter

    async def refused(self, rows: list[dict[str, Any]], expect: Any = None) -> list[str]:
        body: dict[str, Any] = {"rows": rows}
        if expect is not None:
            body["expect"] = expect
        r = await self.client.post("/Note/_write", json=body)
        assert r.status_code == 200, r.text
        refused: list[str] = r.json()["refused"]
        return refused


def declare(orm: da.Diaspora) -> None:
    class Note(orm.Model, sources=["main"]):
        text: str
        rank: int = da.field(default=0, choices=[0, 1, 2])
        at: datetime | None = None


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    orm = da.Diaspora()
    orm.register_adapter("recording", RecordingMemory)
    orm.create_data_source("main", "recording")
    declare(orm)
    async with orm:
        app = create_app(orm, max_body=2000)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Env(orm, client)


def revs(n: int) -> list[str]:
    out = [next_revision()]
    for _ in range(n - 1):
        out.append(next_revision(out[-1]))
    return out


async def test_write_then_reads_carry_the_revision(env: Env) -> None:
    r1, r2 = revs(2)
    row = {"id": "a", "_rev": r1, "text": "one", "rank": 1, "at": WHEN}
    assert await env.refused([row, {"id": "b", "_rev": r1, "text": "two"}]) == []
    got = (await env.client.get("/Note/a")).json()
    assert got == {"id": "a", "_rev": r1, "text": "one", "rank": 1, "at": WHEN}
    listed = (await env.client.get("/Note", params={"sort": "id"})).json()
    assert [(e["id"], e["_rev"]) for e in listed] == [("a", r1), ("b", r1)]
    # the server's store got cast values: a datetime, not the string
    (stored,) = await env.store.get(env.orm.models["Note"].__meta__.schema_for("main"), ["a"])
    assert stored["at"] == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    # stale, replayed, tombstone, expectation: what the store decides comes back
    assert await env.refused([{**row, "_rev": r1}, {"id": "b", "_rev": r1, "text": "x"}]) == []
    assert await env.refused([{"id": "a", "_rev": r2, "_del": WHEN}]) == []
    assert (await env.client.get("/Note/a")).status_code == 404
    assert await env.refused([{**row, "_rev": r1}]) == ["a"]
    assert await env.refused([{"id": "b", "_rev": r2, "text": "y"}], expect=[r2]) == ["b"]
    assert await env.refused([{"id": "b", "_rev": r2, "text": "y"}], expect=[r1]) == []
    r = await env.client.post("/Note/_revisions", json={"ids": ["a", "b", "nope"]})
    assert r.status_code == 200
    assert r.json() == {"revisions": {"a": [r2, True], "b": [r2, False]}}
    r = await env.client.post("/Note/_purge", json={"before": "2026-01-03T00:00:00+01:00"})
    assert r.status_code == 200 and r.json() == {"purged": 1}
    assert (await env.client.post("/Note/_revisions", json={"ids": ["a"]})).json() == {
        "revisions": {}
    }
    assert env.store.calls.count("write") == 6


async def test_a_row_without_revision_reads_back_with_null(env: Env) -> None:
    adapter, schema = await env.orm.models["Note"].__meta__.target("main")
    await adapter.insert(schema, [{"id": "old", "text": "legacy", "rank": 0, "at": None}])
    assert (await env.client.get("/Note/old")).json()["_rev"] is None
    (r1,) = revs(1)
    assert await env.refused([{"id": "old", "_rev": r1, "text": "new"}], expect=[""]) == []


async def test_entity_ids_shaped_like_store_routes_stay_reachable(env: Env) -> None:
    (r1,) = revs(1)
    assert await env.refused([{"id": "_write", "_rev": r1, "text": "odd id"}]) == []
    r = await env.client.get("/Note/_write")
    assert r.status_code == 200 and r.json()["text"] == "odd id"
    assert (await env.client.patch("/Note/_purge", json={"text": "x"})).status_code == 404
    assert (await env.client.delete("/Note/_write")).json() == {"deleted": 1}
    assert (await env.client.put("/Note/_write", json={})).status_code == 405


R = "0" * 24


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ([], ["(body)"]),
        ({"rows": {}}, ["(body)"]),
        ({"rows": [], "bogus": 1}, ["(body)"]),
        ({"rows": [1]}, ["[0]"]),
        ({"rows": [{"_rev": R, "text": "x"}]}, ["[0].id"]),
        ({"rows": [{"id": "a", "text": "x"}]}, ["[0]._rev"]),
        ({"rows": [{"id": "a", "_rev": "~", "text": "x"}]}, ["[0]._rev"]),
        ({"rows": [{"id": "a", "_rev": "A" * 24, "text": "x"}]}, ["[0]._rev"]),
        (
            {"rows": [{"id": "a", "_rev": R, "text": "x"}, {"id": "a", "_rev": R, "text": "y"}]},
            ["[1].id"],
        ),
        ({"rows": [{"id": "a", "_rev": R, "_del": "yesterday"}]}, ["[0]._del"]),
        ({"rows": [{"id": "a", "_rev": R, "_del": "2026-01-02T03:04:05"}]}, ["[0]._del"]),
        ({"rows": [{"id": "a", "_rev": R, "_del": WHEN, "text": "x"}]}, ["[0]"]),
        ({"rows": [{"id": "a", "_rev": R}]}, ["[0].text"]),
        ({"rows": [{"id": "a", "_rev": R, "text": "x", "nope": 1}]}, ["[0].nope"]),
        # the validator's paths index the body's rows, tombstones counted
        (
            {
                "rows": [
                    {"id": "t", "_rev": R, "_del": WHEN},
                    {"id": "a", "_rev": R, "text": "x"},
                    {"id": "b", "_rev": R, "text": "x", "rank": 7},
                ]
            },
            ["[2].rank"],
        ),
        ({"rows": [{"id": "t", "_rev": R, "_del": WHEN}, {"id": "a", "_rev": R}]}, ["[1].text"]),
        (
            {"rows": [7, {"id": "a", "_rev": R, "text": 1}, {"id": "b", "_rev": R}]},
            ["[0]", "[1].text", "[2].text"],
        ),
        ({"rows": [{"id": "a", "_rev": R, "text": "x"}], "expect": []}, ["expect"]),
        ({"rows": [{"id": "a", "_rev": R, "text": "x"}], "expect": [3]}, ["expect[0]"]),
    ],
)
async def test_a_bad_write_body_is_422_before_any_write(
    env: Env, body: Any, paths: list[str]
) -> None:
    await env.orm.models["Note"].insert({"id": "keep", "text": "k"})
    env.store.calls.clear()
    r = await env.client.post("/Note/_write", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "ValidationError"
    assert [d["path"] for d in error["details"]] == paths
    assert env.store.calls == []
    assert await env.orm.models["Note"].count() == 1


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("_revisions", {"ids": "a"}),
        ("_revisions", {"ids": ["a", ""]}),
        ("_revisions", {"ids": [], "more": 1}),
        ("_purge", {"before": "2026-01-02"}),
        ("_purge", {"before": 5}),
        ("_purge", {}),
    ],
)
async def test_bad_revisions_and_purge_bodies_are_422(env: Env, route: str, body: Any) -> None:
    r = await env.client.post(f"/Note/{route}", json=body)
    assert r.status_code == 422 and r.json()["error"]["type"] == "ValidationError"
    assert env.store.calls == []


async def test_store_routes_refuse_bad_json_params_and_big_bodies(env: Env) -> None:
    r = await env.client.post("/Note/_write", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "MalformedJSON"
    r = await env.client.post("/Note/_write", params={"where": "{}"}, json={"rows": []})
    assert r.status_code == 400 and "unknown parameter" in r.json()["error"]["message"]
    (r1,) = revs(1)
    rows = [{"id": f"n{i}", "_rev": r1, "text": "x" * 50} for i in range(40)]
    r = await env.client.post("/Note/_write", json={"rows": rows})
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"
    r = await env.client.post("/Note/_revisions", json={"ids": ["x" * 50] * 40})
    assert r.status_code == 413
    assert (await env.client.post("/Nope/_write", json={"rows": []})).status_code == 404
    assert env.store.calls == []
    assert await env.refused([]) == []  # an empty batch: nothing to ask the store
    assert env.store.calls == []


async def test_a_unique_violation_is_409(env: Env) -> None:
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")

    class Tag(orm.Model, sources=["main"]):
        name: str = da.field(unique=True)

    r1, r2 = revs(2)
    async with (
        orm,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(orm)), base_url="http://t"
        ) as c,
    ):
        rows = [{"id": "a", "_rev": r1, "name": "x"}]
        assert (await c.post("/Tag/_write", json={"rows": rows})).json() == {"refused": []}
        r = await c.post("/Tag/_write", json={"rows": [{"id": "b", "_rev": r2, "name": "x"}]})
        assert r.status_code == 409 and r.json()["error"]["type"] == "IntegrityError"
        assert await Tag.count() == 1


async def check_auth(request: Request, action: str, model: Any) -> None:
    token = request.headers.get("authorization")
    if token is None:
        raise Unauthorized("missing token")
    if token == "Bearer reader" and action != "read":
        raise Forbidden(f"readers cannot {action} {model.__name__}")
    if token == "Bearer writer" and action == "purge":
        raise Forbidden("only admins purge")


async def test_store_routes_go_through_auth_with_their_actions() -> None:
    orm = da.Diaspora()
    orm.register_adapter("recording", RecordingMemory)
    orm.create_data_source("main", "recording")
    declare(orm)
    seen: list[str] = []

    async def auth(request: Request, action: str, model: Any) -> None:
        seen.append(action)
        await check_auth(request, action, model)

    (r1,) = revs(1)
    write = {"rows": [{"id": "a", "_rev": r1, "text": "x"}]}
    purge = {"before": WHEN}
    app = create_app(orm, auth=auth)
    async with orm:

        def client(token: str | None = None) -> httpx.AsyncClient:
            headers = {"authorization": f"Bearer {token}"} if token else None
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
            )

        async with client() as anonymous:
            r = await anonymous.post("/Note/_write", json=write)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        async with client("reader") as reader:
            assert (await reader.post("/Note/_write", json=write)).status_code == 403
            assert (await reader.post("/Note/_purge", json=purge)).status_code == 403
            r = await reader.post("/Note/_revisions", json={"ids": ["a"]})
            assert r.status_code == 200 and r.json() == {"revisions": {}}
        store = orm.data_sources["main"].adapter
        assert isinstance(store, RecordingMemory) and store.calls == ["revisions"]
        async with client("writer") as writer:
            assert (await writer.post("/Note/_write", json=write)).json() == {"refused": []}
            r = await writer.post("/Note/_purge", json=purge)
            assert r.status_code == 403 and r.json()["error"]["message"] == "only admins purge"
        async with client("admin") as admin:
            assert (await admin.post("/Note/_purge", json=purge)).json() == {"purged": 0}
    assert seen == ["write", "write", "purge", "read", "write", "purge", "purge"]


async def test_store_routes_use_the_first_of_the_servers_sources() -> None:
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")
    orm.create_data_source("cache", "memory")

    class Note(orm.Model, sources=["main", "cache"]):
        text: str

    (r1,) = revs(1)
    async with (
        orm,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(orm, source=["cache", "main"])),
            base_url="http://t",
        ) as c,
    ):
        await c.post("/Note/_write", json={"rows": [{"id": "a", "_rev": r1, "text": "x"}]})
        assert await Note.count(source="cache") == 1 and await Note.count(source="main") == 0
        await Note.insert({"id": "m", "text": "only in main"}, source="main")
        # reads are the fallback chain: the cache has none, so main answers
        assert (await c.get("/Note/m")).json()["text"] == "only in main"
        r = await c.get("/Note", params={"where": json.dumps({"text": "only in main"})})
        assert [e["id"] for e in r.json()] == ["m"]


async def test_openapi_lists_the_store_routes(env: Env) -> None:
    doc = (await env.client.get("/openapi.json")).json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for route in ("_write", "_revisions", "_purge"):
        assert set(paths[f"/Note/{route}"]) == {"post"}
        assert "422" in paths[f"/Note/{route}"]["post"]["responses"]
    assert "_rev" in schemas["Note"]["properties"]
    assert "_rev" not in schemas["Note"].get("required", [])
    assert set(schemas["NoteWrite"]["properties"]) == {"rows", "expect"}
    refs = {
        m.split("/")[-1]
        for m in json.dumps(doc).split('"')
        if m.startswith("#/components/schemas/")
    }
    assert {"NoteWrite", "Tombstone", "Refused", "Ids", "Revisions", "Purge", "Purged"} <= refs
    assert refs <= set(schemas)  # every reference resolves
