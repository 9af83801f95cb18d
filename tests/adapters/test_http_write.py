"""The http adapter's ``write``/``revisions``/``purge``: requests per batch, splitting by
body size, what is retried, value encoding and remapped names on the wire. Against our
real server in process (``Spy`` and ``pair`` from ``test_http``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

import diaspora_async as da
from diaspora_async.adapters.base import DELETED, REV
from diaspora_async.query.ast import Query
from diaspora_async.revisions import next_revision
from tests.adapters.test_http import pair

WHEN = datetime(2024, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def revs(n: int) -> list[str]:
    out = [next_revision()]
    for _ in range(n - 1):
        out.append(next_revision(out[-1]))
    return out


def doc(entity_id: str, rev: str, **values: object) -> dict[str, object]:
    return {"id": entity_id, REV: rev, "name": "n", "rank": 0, "stamps": [], "when": None,
            **values}  # fmt: skip


async def test_a_write_is_one_post_and_values_keep_their_encoding() -> None:
    async with pair() as p:
        schema = p.Doc.__meta__.schema_for("main")
        r1, r2 = revs(2)
        rows = [doc(f"d{i}", r1, stamps=[WHEN], when={"a": WHEN}) for i in range(50)]
        rows.append({"id": "gone", REV: r1, DELETED: WHEN})
        assert await p.adapter.write(schema, rows, [None] * 51) == []
        (request,) = p.spy.requests
        assert (request.method, request.url.path) == ("POST", "/Doc/_write")
        body = json.loads(request.content)
        assert body["rows"][0]["stamps"] == ["2024-03-04T05:06:07.890Z"]
        assert body["rows"][-1] == {"id": "gone", REV: r1, DELETED: "2024-03-04T05:06:07.890Z"}
        assert body["expect"] == [None] * 51
        (got,) = await p.adapter.get(schema, ["d0"])
        assert got[REV] == r1 and got["stamps"] == [WHEN] and got["when"] == {"a": WHEN}
        found = await p.adapter.find(schema, Query(None, (), 0, None))
        assert {r[REV] for r in found} == {r1}
        assert await p.adapter.write(schema, [doc("d0", r2), doc("d1", r2)], [r1, "x"]) == ["d1"]
        assert await p.adapter.revisions(schema, ["d0", "gone", "nope"]) == {
            "d0": (r2, False), "gone": (r1, True)
        }  # fmt: skip
        assert await p.adapter.purge(schema, WHEN + timedelta(seconds=1)) == 1
        assert await p.adapter.revisions(schema, ["gone"]) == {}


async def test_a_large_write_is_split_by_body_size_and_errors_index_the_whole_batch() -> None:
    async with pair(max_body=4096) as p:
        schema = p.Doc.__meta__.schema_for("main")
        r1, r2 = revs(2)
        rows = [doc(f"d{i:03}", r1, name="x" * 100) for i in range(100)]
        assert await p.adapter.write(schema, rows, [None] * 100) == []
        assert len(p.spy.requests) > 3
        assert all(len(r.content) <= 4096 for r in p.spy.requests)
        assert await p.ServerDoc.count() == 100
        newer = [doc(f"d{i:03}", r2, name="y") if i % 3 else r for i, r in enumerate(rows)]
        assert await p.adapter.write(schema, rows) == []  # a replay
        assert await p.adapter.write(schema, newer) == []
        assert await p.adapter.write(schema, rows) == [r["id"] for i, r in enumerate(rows) if i % 3]
        # a bad row in a later chunk: its path indexes the caller's rows, not the chunk
        bad = [*rows[:-1], doc("d099", r2, rank="high")]
        with pytest.raises(da.ValidationError) as info:
            await p.adapter.write(schema, bad)
        assert [path for path, _ in info.value.errors] == ["[99].rank"]
        assert await p.adapter.revisions(schema, [f"d{i:03}" for i in range(100)] * 2) == {
            f"d{i:03}": (r2 if i % 3 else r1, False) for i in range(100)
        }


async def test_writes_and_revisions_are_retried_and_purge_is_not() -> None:
    async with pair(retries=2) as p:
        schema = p.Doc.__meta__.schema_for("main")
        (r1,) = revs(1)
        p.spy.failures = [httpx.ReadError("reset"), httpx.Response(503)]
        assert await p.adapter.write(schema, [doc("a", r1)]) == []  # replay-safe
        assert p.spy.methods() == ["POST"] * 3
        p.spy.requests.clear()
        p.spy.failures = [httpx.ReadError("reset")]
        assert await p.adapter.revisions(schema, ["a"]) == {"a": (r1, False)}
        assert len(p.spy.requests) == 2
        p.spy.requests.clear()
        p.spy.failures = [httpx.ReadError("reset")]
        with pytest.raises(da.ConnectionLost):
            await p.adapter.purge(schema, WHEN)
        assert len(p.spy.requests) == 1


def remapped_server(orm: da.Diaspora) -> None:
    class Doc(orm.Model, sources=["main"]):
        label: str
        seen: datetime | None = None


def remapped_client(orm: da.Diaspora) -> None:
    class Doc(orm.Model, sources={"main": {"name": "label", "at": "seen"}}):
        name: str
        at: datetime | None = None


async def test_remapped_rows_travel_under_the_servers_names() -> None:
    async with pair(server_models=remapped_server, client_models=remapped_client) as p:
        schema = p.Doc.__meta__.schema_for("main")
        r1, r2 = revs(2)
        await p.adapter.write(schema, [{"id": "a", REV: r1, "name": "x", "at": WHEN}])
        assert json.loads(p.spy.requests[-1].content)["rows"] == [
            {"id": "a", REV: r1, "label": "x", "seen": "2024-03-04T05:06:07.890Z"}
        ]
        stored = await p.ServerDoc.find("a")
        assert stored is not None and stored.seen == WHEN  # type: ignore[attr-defined]
        assert await p.adapter.get(schema, ["a"]) == [{"id": "a", REV: r1, "name": "x", "at": WHEN}]
        assert await p.adapter.write(schema, [{"id": "a", REV: r2, DELETED: WHEN}]) == []
        assert await p.adapter.get(schema, ["a"]) == []


async def test_drop_removes_tombstones_too() -> None:
    async with pair() as p:
        schema = p.Doc.__meta__.schema_for("main")
        (r1,) = revs(1)
        await p.adapter.write(schema, [doc("a", r1), {"id": "b", REV: r1, DELETED: WHEN}])
        await p.adapter.drop(schema)
        assert await p.adapter.revisions(schema, ["a", "b"]) == {}
        assert await p.adapter.write(schema, []) == []


async def test_writes_follow_a_smaller_server_body_limit() -> None:
    options = {"allow_empty_query": True, "max_body": 3000}
    async with pair(app_options=options) as p:  # the adapter still thinks 1 MB
        schema = p.Doc.__meta__.schema_for("main")
        (r1,) = revs(1)
        rows = [doc(f"d{i:03}", r1, name="x" * 100) for i in range(60)]
        assert await p.adapter.write(schema, rows) == []
        assert p.adapter.max_body == 3000
        statuses = [len(r.content) <= 3000 for r in p.spy.requests]
        assert statuses[0] is False and all(statuses[1:]) and len(statuses) > 2
        assert await p.ServerDoc.count() == 60
        got = await p.adapter.revisions(schema, [f"{'i' * 60}{n}" for n in range(100)])
        assert got == {}
        with pytest.raises(da.DataSourceError, match="413"):  # one row alone is too big
            await p.adapter.write(schema, [doc("big", r1, name="x" * 5000)])
