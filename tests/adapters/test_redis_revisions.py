"""Redis specifics of revisions (DESIGN.md 6.1), on the real server.

``tests/conformance/test_write_contract.py`` pins the contract; this file checks how the
Redis adapter keeps it: tombstones as ``_rev``/``_del`` hashes outside the id set and
every index, the tombstone set ``purge`` reads, index maintenance through ``write``
(compared with the memory adapter), one round trip per batch, and rows written before
revisions existed.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from diaspora_async.adapters.base import DELETED, REV, Adapter, CollectionSchema
from diaspora_async.adapters.redis import adapter as redis_adapter
from diaspora_async.adapters.redis.adapter import RedisAdapter
from diaspora_async.errors import IntegrityError
from diaspora_async.query.ast import Query
from diaspora_async.revisions import next_revision
from tests.adapters.test_redis import Env, make_env
from tests.targets.redis import sweep

pytestmark = pytest.mark.redis

T0 = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)  # deletion times keep microseconds
TM = T0.replace(microsecond=891000)  # field values keep milliseconds
FIELDS = {"n": 0, "x": None, "at": None, "flag": None, "kind": None, "code": None, "data": None}


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = await make_env(max_size=4)
    try:
        yield e
    finally:
        await e.orm.close()
        await sweep(e.url, e.prefix)


async def both(
    env: Env,
) -> tuple[tuple[Adapter, CollectionSchema], tuple[Adapter, CollectionSchema]]:
    return await env.Item.__meta__.target("main"), await env.Item.__meta__.target("mem")


def item(entity_id: str, rev: str, **values: Any) -> dict[str, Any]:
    return {"id": entity_id, REV: rev, **FIELDS, **values}


def revs(n: int) -> list[str]:
    out = [next_revision()]
    for _ in range(n - 1):
        out.append(next_revision(out[-1]))
    return out


async def test_tombstones_are_rev_and_del_hashes_outside_ids_and_indexes(env: Env) -> None:
    (adapter, schema), _ = await both(env)
    r1, r2 = revs(2)
    await adapter.write(schema, [item("a", r1, n=5, kind="k", flag=True, code="c", at=T0)])
    assert await adapter.write(schema, [{"id": "a", REV: r2, DELETED: T0}]) == []
    raw = env.raw()
    try:
        p = env.prefix
        assert await raw.hgetall(f"{p}:Item:a") == {
            b"_rev": r2.encode(),
            b"_del": str(
                (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            ).encode(),
        }
        assert await raw.zrange(f"{p}/Item/ids", 0, -1) == []
        assert await raw.zrange(f"{p}/Item/tombs", 0, -1, withscores=True) == [
            (b"a", float(T0.timestamp() * 1_000_000 // 1))
        ]
        for key in [k async for k in raw.scan_iter(match=f"{p}/Item/[neu]/*")]:
            kind = await raw.type(key)
            members = (
                await raw.zrange(key, 0, -1)
                if kind == b"zset"
                else await raw.hvals(key)
                if kind == b"hash"
                else await raw.smembers(key)
            )
            assert b"a" not in members, key
    finally:
        await raw.aclose()
    # the newer live copy takes the tombstone's place in the id set and the indexes
    (r3,) = revs(1)
    await adapter.write(schema, [item("a", r3, kind="k")])
    where = env.Item.__meta__.where({"kind": "k"})
    assert [r["id"] for r in await adapter.find(schema, Query(where, (), 0, None))] == ["a"]
    assert await adapter.purge(schema, T0 + timedelta(days=1)) == 0  # no longer a tombstone


async def test_indexes_follow_writes_like_the_memory_adapter(env: Env) -> None:
    (red, rs), (mem, ms) = await both(env)
    r1, r2, r3 = revs(3)
    first = [
        item(f"i{k}", r1, n=k % 4, x=k / 2, at=TM + timedelta(seconds=k), flag=k % 2 == 0,
             kind="abc"[k % 3], code=f"c{k}")
        for k in range(12)
    ]  # fmt: skip
    second = [
        item(f"i{k}", r2, n=10 + k % 3, kind="abc"[(k + 1) % 3], code=f"d{k}")
        if k % 3
        else {"id": f"i{k}", REV: r2, DELETED: T0}
        for k in range(0, 12, 2)
    ]
    stale = [item(f"i{k}", r1, n=99, kind="zz") for k in range(12)]
    late = [item("i0", r3, n=1, kind="a", code="c0")]
    for batch in (first, second, stale, late):
        assert sorted(await red.write(rs, batch)) == sorted(await mem.write(ms, batch))
    queries = [
        {"n": 1}, {"n": {">=": 10}}, {"kind": "a"}, {"kind": {"$in": ["b", "zz"]}},
        {"flag": True}, {"x": {"<": 3}}, {"at": {">": TM}}, {"code": "c0"}, {"code": "d2"},
        {"n": 1, "kind": "a"}, {"$or": [{"kind": "c"}, {"n": 0}]},
    ]  # fmt: skip
    for q in queries:
        where = env.Item.__meta__.where(q)
        want = await mem.find(ms, Query(where, (), 0, None))
        before = red.fetched
        got = await red.find(rs, Query(where, (), 0, None))
        assert sorted(got, key=lambda r: r["id"]) == sorted(want, key=lambda r: r["id"]), q
        assert red.fetched - before <= len(want), q  # the index held no tombstone or stale id
        assert await red.count(rs, where) == len(want), q


async def test_one_round_trip_per_batch_and_the_unique_guard_writes_nothing(env: Env) -> None:
    (adapter, schema), _ = await both(env)
    r1, r2 = revs(2)
    rows = [item(f"b{k}", r1, code=f"u{k}") for k in range(300)]
    before = adapter.round_trips
    assert await adapter.write(schema, rows) == []
    assert await adapter.write(schema, rows, expect=[r1] * 300) == []  # all replays
    assert adapter.round_trips - before == 2
    clash = [item("b0", r2, code="new"), item("z", r2, code="u7")]
    with pytest.raises(IntegrityError, match="u7"):
        await adapter.write(schema, clash)
    assert await adapter.revisions(schema, ["b0", "z"]) == {"b0": (r1, False)}
    # a newer revision releases its old unique value for the next write
    await adapter.write(schema, [item("b7", r2, code="moved")])
    assert await adapter.write(schema, [item("z", r2, code="u7")]) == []


async def test_insert_update_delete_and_drop_see_tombstones_as_the_contract_says(env: Env) -> None:
    (adapter, schema), _ = await both(env)
    r1, r2 = revs(2)
    await adapter.write(schema, [item("a", r1), {"id": "t", REV: r2, DELETED: T0}])
    with pytest.raises(IntegrityError, match="duplicate id 't'"):
        await adapter.insert(schema, [item("t", r1)])
    assert await adapter.update(schema, [("t", {"n": 3}), ("a", {"n": 4, REV: r2})]) == 1
    assert await adapter.revisions(schema, ["a", "t"]) == {"a": (r2, False), "t": (r2, True)}
    assert (await adapter.get(schema, ["a"]))[0]["n"] == 4
    assert await adapter.delete(schema, ["t", "a", "a"]) == 1  # tombstones go, uncounted
    assert await adapter.revisions(schema, ["a", "t"]) == {}
    await adapter.write(schema, [{"id": "t2", REV: r2, DELETED: T0}])
    await adapter.drop(schema)
    raw = env.raw()
    try:
        assert [k async for k in raw.scan_iter(match=f"{env.prefix}*")] == []
    finally:
        await raw.aclose()


async def test_purge_is_exact_to_the_microsecond_and_runs_in_chunks(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    (adapter, schema), _ = await both(env)
    monkeypatch.setattr(redis_adapter, "_PURGE_CHUNK", 3)
    (r1,) = revs(1)
    us = timedelta(microseconds=1)
    old = [{"id": f"o{k}", REV: r1, DELETED: T0 - k * us} for k in range(1, 8)]
    await adapter.write(schema, [*old, {"id": "edge", REV: r1, DELETED: T0}])
    assert await adapter.purge(schema, T0) == 7  # three runs: 3, 3, 1
    assert await adapter.revisions(schema, ["edge", "o1"]) == {"edge": (r1, True)}
    assert await adapter.purge(schema, T0 + us) == 1


async def test_rows_without_a_revision_keep_their_indexes_through_write(env: Env) -> None:
    (adapter, schema), _ = await both(env)
    legacy = {"id": "old", "n": 3, "kind": "k", "code": "c"}  # as inserted before revisions
    await adapter.insert(schema, [legacy])
    (got,) = await adapter.get(schema, ["old"])
    assert got == {**item("old", "", n=3, kind="k", code="c"), REV: None}
    (r1,) = revs(1)
    assert await adapter.write(schema, [item("old", r1, n=4, kind="j", code="c")], [""]) == []
    for q, ids in (
        ({"kind": "k"}, []),
        ({"kind": "j"}, ["old"]),
        ({"n": 3}, []),
        ({"n": 4}, ["old"]),
    ):
        where = env.Item.__meta__.where(q)
        assert [r["id"] for r in await adapter.find(schema, Query(where, (), 0, None))] == ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def da_dk_server(tmp_path: pathlib.Path) -> Iterator[str]:
    """A private redis-server (its URL) running with LC_ALL=da_DK.UTF-8, or a skip."""
    server, localedef = shutil.which("redis-server"), shutil.which("localedef")
    if server is None or localedef is None:
        pytest.skip("needs redis-server and localedef")
    where = tmp_path / "da_DK.UTF-8"
    subprocess.run([localedef, "-i", "da_DK", "-f", "UTF-8", str(where)], capture_output=True)
    if not where.exists():
        pytest.skip("cannot build the da_DK locale")
    port = _free_port()
    env = {**os.environ, "LOCPATH": str(tmp_path), "LC_ALL": "da_DK.UTF-8"}
    args = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_revisions_order_as_bytes_under_a_contracting_server_locale(
    da_dk_server: str,
) -> None:
    """Lua's ``<`` is ``strcoll``: under da_DK, 'aa' (read as 'å') sorts after 'ab'. The
    guard must still see r1 < r2 on a server started in that locale."""
    raw = aioredis.from_url(da_dk_server)
    try:
        if await raw.eval("return tostring('aa' < 'ab')", 0) != b"false":
            pytest.skip("the server did not take the locale")
    finally:
        await raw.aclose()
    adapter = RedisAdapter("loc", {"url": da_dk_server, "prefix": "loc"})
    schema = CollectionSchema("M", "M", {})
    await adapter.connect()
    try:
        await adapter.ensure_schema(schema)
        r1, r2 = "01a23ec1f9aa000011111111", "01a23ec1f9ab000011111111"
        assert await adapter.write(schema, [{"id": "x", REV: r1}]) == []
        assert await adapter.write(schema, [{"id": "x", REV: r2}]) == []
        assert await adapter.write(schema, [{"id": "x", REV: r1}]) == ["x"]
        assert await adapter.write(schema, [{"id": "x", REV: r1, DELETED: T0}]) == ["x"]
        assert await adapter.revisions(schema, ["x"]) == {"x": (r2, False)}
    finally:
        await adapter.close()
