"""Redis adapter specifics, on the real server: layout, indexes, atomic writes, the pool.

The conformance suite covers the public behaviour; this file covers what only Redis has:
the hash encoding and its ``$date`` escaping, that indexes narrow reads (and stay right
through updates), that writes are single round trips, that hostile ids stay data, and
the pool guarantees under cancellation, ``CLIENT KILL``, a server restart and exhaustion.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions as rexc

import diaspora_async as da
from diaspora_async.adapters.redis.adapter import RedisAdapter
from diaspora_async.errors import (
    ConfigError,
    ConnectionLost,
    DataSourceError,
    IntegrityError,
    PoolTimeout,
)
from tests.conformance.test_differential import Field, Generator, check_against_reference
from tests.targets import in_ci
from tests.targets.redis import redis_url, sweep, unique_prefix

pytestmark = pytest.mark.redis

T0 = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


class Env:
    """A registry with ``main`` on Redis (unique prefix) and ``mem`` on memory."""

    def __init__(self, orm: da.Diaspora, url: str, prefix: str) -> None:
        self.orm, self.url, self.prefix = orm, url, prefix
        self.adapter: RedisAdapter = orm.data_sources["main"].adapter  # type: ignore[assignment]
        self.Item: Any = orm.models["Item"]
        self.Other: Any = orm.models["Other"]

    def raw(self) -> aioredis.Redis:
        return aioredis.from_url(self.url)


def declare(orm: da.Diaspora) -> None:
    class Item(orm.Model, sources=["main", "mem"]):
        n: int = da.field(default=0, index=True)
        x: float | None = da.field(default=None, index=True)
        at: datetime | None = da.field(default=None, index=True)
        flag: bool | None = da.field(default=None, index=True)
        kind: str | None = da.field(default=None, index=True)
        code: str | None = da.field(default=None, unique=True)
        data: Any = None

    class Other(orm.Model, sources=["main"]):
        n: int = 0


async def make_env(**config: Any) -> Env:
    url, prefix = redis_url(), unique_prefix()
    orm = da.Diaspora()
    orm.create_data_source("main", "redis", url=url, prefix=prefix, client_name=prefix, **config)
    orm.create_data_source("mem", "memory")
    declare(orm)
    await orm.connect()
    return Env(orm, url, prefix)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = await make_env(max_size=10)
    try:
        yield e
    finally:
        await e.orm.close()
        await sweep(e.url, e.prefix)


# --- storage ---------------------------------------------------------------------------


async def test_values_round_trip_exactly_and_none_is_not_stored(env: Env) -> None:
    data = {
        "$date": 5,  # a user key that looks like our datetime tag
        "$$x": [T0, {"$date": T0}, None, True, 1, 1.0, "$date"],
        "when": T0 + timedelta(days=400),
        "nested": {"empty": [], "obj": {}, "big": 2**70, "neg": -0.5},
    }
    item = await env.Item.insert(
        {"n": 2**60 + 1, "x": 1.0, "at": T0, "flag": False, "kind": "a\nb", "data": data}
    )
    got = await env.Item.find(item.id)
    assert got.attributes == item.attributes
    assert type(got.n) is int and type(got.x) is float and got.flag is False
    assert got.data["$$x"][3] is True and type(got.data["$$x"][4]) is int
    assert got.at == T0 and got.at.tzinfo is not None
    raw = env.raw()
    try:
        stored = await raw.hgetall(f"{env.prefix}:Item:{item.id}")
    finally:
        await raw.aclose()
    assert b"code" not in stored and b"id" in stored  # None is simply absent


async def test_collection_names_with_separators_are_refused(env: Env) -> None:
    class Bad(env.orm.Model, sources=["main"], collection="a:b"):
        n: int = 0

    with pytest.raises(ConfigError, match="cannot contain"):
        await Bad.insert({"n": 1})


def test_config_is_checked_without_io() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        RedisAdapter("r", {"url": "redis://127.0.0.1:6379/0", "bogus": 1})
    with pytest.raises(ConfigError, match="prefix"):
        RedisAdapter("r", {"prefix": ""})
    with pytest.raises(ConfigError, match="max_size"):
        RedisAdapter("r", {"max_size": 0})


async def test_large_values_and_large_reads(env: Env) -> None:
    big = "x" * 300_000 + "é"  # several socket reads for one bulk string
    await env.Item.insert({"id": "big", "data": {"text": big}})
    await env.Item.insert_many([{"n": i, "kind": f"k{i}"} for i in range(3000)])
    assert (await env.Item.find("big")).data["text"] == big
    rows = await env.Item.find_many(sort="-n", limit=3000)
    assert [e.n for e in rows[:3]] == [2999, 2998, 2997] and len(rows) == 3000


_FRAMES = (
    b"*3\r\n$3\r\nabc\r\n:-12\r\n$-1\r\n"  # array: bulk, int, null bulk
    b"%2\r\n$1\r\na\r\n*0\r\n+k\r\n~1\r\n,inf\r\n"  # map holding an empty array, a set
    b"-ERR boom\r\n_\r\n#t\r\n=8\r\ntxt:hey!\r\n$0\r\n\r\n"
)
_EXPECTED = [
    [b"abc", -12, None],
    {b"a": [], b"k": [float("inf")]},
    "ERR boom",
    None,
    True,
    b"hey!",
    b"",
]


@pytest.mark.parametrize("step", [1, 2, 7, len(_FRAMES)])
def test_resp_parser_resumes_across_reads(step: int) -> None:
    from diaspora_async.adapters.redis.resp import _Parser

    parser = _Parser(len(_EXPECTED))
    chunks = [_FRAMES[i : i + step] for i in range(0, len(_FRAMES), step)]
    done = [parser.feed(c) for c in chunks]
    assert done[-1] and not any(done[:-1])
    got = [str(r) if isinstance(r, rexc.ResponseError) else r for r in parser.replies]
    assert got == _EXPECTED


# --- indexes ---------------------------------------------------------------------------


class _On:
    """``model`` read from one named source, for ``check_against_reference``."""

    def __init__(self, model: Any, source: str) -> None:
        self.model, self.source = model, source

    async def find_many(self, query: Any = None, **options: Any) -> Any:
        return await self.model.find_many(query, source=self.source, **options)

    async def count(self, query: Any = None) -> int:
        count: int = await self.model.count(query, source=self.source)
        return count


MS = timedelta(milliseconds=1)
INDEXED_FIELDS = {
    "id": Field("str", ["i001", "i010", "nope"], stored=False, ops=["==", "$in"]),
    "n": Field("num", [-3, 0, 1, 2, 7, 2**53, 2**53 + 1, 2**60], extra=[-4], required=True),
    "x": Field("num", [None, -1.5, 0.0, 0.25, 3.0, 1e300], extra=[-2.0]),
    "at": Field("dt", [None, *(T0 + k * MS for k in range(-5, 5))]),
    "flag": Field("bool", [None, True, False]),
    "kind": Field("str", [None, "a", "b", "c", "a b", "é"], extra=["zz"]),
}


async def test_indexed_queries_give_the_memory_answers(env: Env) -> None:
    """The differential generator of the conformance suite, over a model indexed everywhere."""
    gen = Generator(INDEXED_FIELDS, seed=1234)
    items = env.Item.spawn_many(gen.rows(80, prefix="i"))
    await items.persist(da.ALL)
    main, mem = _On(env.Item, "main"), _On(env.Item, "mem")
    await check_against_reference(main, mem, gen, ["n", "x", "at", "flag", "kind"], 150)


async def test_range_and_equality_use_their_index(env: Env) -> None:
    await env.Item.insert_many(
        [{"n": i, "kind": "rare" if i % 25 == 0 else "common"} for i in range(100)]
    )
    adapter = env.adapter
    before = adapter.fetched
    hits = await env.Item.find_many({"n": {">=": 95}})
    assert [e.n for e in hits] == [95, 96, 97, 98, 99]
    assert adapter.fetched - before == 5  # the sorted set narrowed 100 ids to 5

    before = adapter.fetched
    rare = await env.Item.find_many({"kind": "rare", "n": {"<": 60}})
    assert sorted(e.n for e in rare) == [0, 25, 50]
    assert adapter.fetched - before == 3  # the value set (4 ids) and the range intersect

    before = adapter.fetched
    assert await env.Item.count({"kind": {"$in": ["rare", "none"]}}) == 4
    assert adapter.fetched - before == 0  # the value sets answer exactly: no hash is read

    before = adapter.fetched
    assert await env.Item.count({"$not": {"kind": "rare"}}) == 96  # no index: reads all
    assert adapter.fetched - before == 100


async def test_a_page_of_an_exact_index_answer_reads_only_its_hashes(env: Env) -> None:
    # 10% of 5,000 entities share the value; the page is sliced from the sorted ids of
    # its value set before any hash is read.
    made = await env.Item.insert_many(
        [{"n": i, "kind": "hot" if i % 10 == 0 else "cold"} for i in range(5000)]
    )
    hot = sorted(e.id for e in made if e.kind == "hot")
    adapter = env.adapter
    before = adapter.fetched
    page = await env.Item.find_many({"kind": "hot"}, skip=20, limit=10)
    assert [e.id for e in page] == hot[20:30]
    assert adapter.fetched - before == 10
    before = adapter.fetched
    either = await env.Item.find_many({"kind": {"$in": ["hot", "none"]}}, limit=5)
    assert [e.id for e in either] == hot[:5] and adapter.fetched - before == 5
    # A residual condition (a range: inclusive and rounded) or another order needs the
    # rows; the answer is the same, read the long way.
    before = adapter.fetched
    ranged = await env.Item.find_many({"kind": "hot", "n": {">": 4900}}, limit=3)
    assert [e.n for e in ranged] == sorted(e.n for e in made if e.kind == "hot" and e.n > 4900)[:3]
    assert adapter.fetched - before == 10  # the intersection, bound included: 4900..4990
    by_n = await env.Item.find_many({"kind": "hot"}, sort="-n", limit=2)
    assert [e.n for e in by_n] == [4990, 4980]


async def test_a_query_that_reads_every_hash_is_reported_once_per_field(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    await env.Item.insert_many([{"n": i, "data": {"k": i}} for i in range(5)])
    with caplog.at_level(logging.WARNING, logger="diaspora_async"):
        assert await env.Item.count({"data": {"k": 1}}) == 1
        assert await env.Item.count({"data": {"k": 2}}) == 1  # the same field: said once
        assert await env.Item.count({"kind": "x"}) == 0  # indexed: nothing to say
        # A negation reads every hash too, but the field has an index: nothing to declare.
        assert await env.Item.count({"$not": {"kind": "x"}}) == 5
    scans = [r.getMessage() for r in caplog.records if "reads every hash" in r.getMessage()]
    assert scans == [
        "redis: a query on Item.data reads every hash of the collection (declare the field "
        "with index=True so that queries on it use an index)",
    ]


async def test_updates_and_deletes_keep_indexes_and_unique_values_right(env: Env) -> None:
    a, b = await env.Item.insert_many([{"kind": "k", "n": 1, "code": "A"}, {"kind": "k", "n": 2}])
    await env.Item.update_many({"kind": "k"}, {"kind": "m", "n": 10})
    assert await env.Item.count({"kind": "k"}) == 0
    assert await env.Item.count({"kind": "m", "n": {">": 5}}) == 2
    await env.Item.update(a.id, {"kind": None, "code": "B"})
    assert [e.id for e in await env.Item.find_many({"kind": "m"})] == [b.id]
    await env.Item.insert({"code": "A"})  # "A" was freed by the update
    with pytest.raises(IntegrityError, match="unique"):
        await env.Item.update(b.id, {"code": "B", "n": 99})
    assert (await env.Item.find(b.id)).n == 10  # refused update changed nothing
    assert await env.Item.count({"n": 99}) == 0
    await env.Item.delete(a.id)
    await env.Item.insert({"code": "B"})
    assert await env.Item.count({"n": {">": 5}}) == 1


async def test_refused_batches_write_nothing(env: Env) -> None:
    await env.Item.insert({"id": "taken", "code": "c1"})
    _, schema = await env.Item.__meta__.target("main")
    with pytest.raises(IntegrityError, match="duplicate id"):  # the unconditional insert
        await env.adapter.insert(schema, [{"id": "fresh", "kind": "z"}, {"id": "taken"}])
    with pytest.raises(IntegrityError, match="unique"):
        await env.Item.insert_many([{"id": "f1", "code": "c2"}, {"id": "f2", "code": "c2"}])
    assert await env.Item.count() == 1
    assert await env.Item.count({"kind": "z"}) == 0


async def test_every_write_and_batch_read_is_one_round_trip(env: Env) -> None:
    adapter = env.adapter
    _, schema = await env.Item.__meta__.target("main")
    rows = [{"id": f"r{i}", "n": i, "kind": "k", "code": f"c{i}"} for i in range(300)]
    start = adapter.round_trips
    await adapter.insert(schema, rows)
    assert adapter.round_trips - start == 1
    shared = {"kind": "j", "x": None}
    assert await adapter.update(schema, [(r["id"], shared) for r in rows]) == 300
    assert adapter.round_trips - start == 2
    assert len(await adapter.get(schema, [r["id"] for r in rows])) == 300
    assert adapter.round_trips - start == 3
    assert await adapter.delete(schema, [r["id"] for r in rows] + ["r0", "ghost"]) == 300
    assert adapter.round_trips - start == 4


# --- ids are data ----------------------------------------------------------------------

HOSTILE = ["*", "?", "[a-z]", "a:b", "Other:x", "x\nFLUSHALL\n", "", "\\", "é*", "../Item"]


async def test_hostile_ids_stay_inside_their_collection(env: Env) -> None:
    hostile = [h for h in HOSTILE if h]
    await env.Other.insert_many([{"id": "x", "n": 1}, {"id": "*", "n": 2}])
    await env.Item.insert_many([{"id": h, "n": i} for i, h in enumerate(hostile)])
    assert sorted(e.id for e in await env.Item.find_many()) == sorted(hostile)
    for i, h in enumerate(hostile):
        assert (await env.Item.find(h)).n == i
    assert await env.Other.count() == 2
    assert (await env.Other.find("x")).n == 1
    raw = env.raw()
    try:
        for h in hostile:
            assert await raw.exists(f"{env.prefix}:Item:{h}".encode())
    finally:
        await raw.aclose()
    assert await env.Item.delete_many({"id": {"$in": hostile}}) == len(hostile)
    assert {e.id: e.n for e in await env.Other.find_many()} == {"*": 2, "x": 1}
    await env.orm.data_sources["main"].adapter.drop(env.Item.__meta__.schema_for("main"))
    assert await env.Other.count() == 2


# --- the pool on a real server ---------------------------------------------------------


async def test_cancelled_commands_never_leave_a_reply_behind(env: Env) -> None:
    """CVE-2023-28858 class: a command cut off mid-flight must not poison its connection."""
    adapter = env.adapter
    _, schema = await env.Item.__meta__.target("main")
    ids = [f"task-{k}" for k in range(200)]
    await adapter.insert(schema, [{"id": i, "n": k} for k, i in enumerate(ids)])

    async def worker(k: int) -> None:
        me = ids[k]
        for _ in range(4):
            rows = await adapter.get(schema, [me])
            assert [(r["id"], r["n"]) for r in rows] == [(me, k)]
            assert await adapter.update(schema, [(me, {"n": k})]) == 1
            assert await adapter.count(schema, None) == 200

    rng = random.Random(2023_28858)
    tasks = [asyncio.create_task(worker(k)) for k in range(200)]
    when = {k: rng.randrange(300) for k in rng.sample(range(200), 120)}
    for turn in range(300):
        await asyncio.sleep(0)  # one event-loop turn: cancellations land at varied points
        for k, t in when.items():
            if t == turn:
                tasks[k].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if r is not None and not isinstance(r, asyncio.CancelledError)]
    assert failures == []
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) > 0
    stats = adapter.stats()
    assert stats["discarded"] > 0  # some cancellations did cut a command mid-flight
    assert stats["in_use"] == 0 and stats["size"] <= 10

    async def check(k: int) -> None:
        rows = await adapter.get(schema, [ids[k]])
        assert [(r["id"], r["n"]) for r in rows] == [(ids[k], k)]

    await asyncio.gather(*(check(k) for k in range(200)))


async def _warm(env: Env, n: int = 6) -> None:
    await env.Item.insert({"id": "warm"})
    await asyncio.gather(*(env.Item.find("warm") for _ in range(n)))
    assert env.adapter.stats()["idle"] >= 2


async def test_client_kill_is_survived(env: Env) -> None:
    await _warm(env)
    raw = env.raw()
    try:
        clients = await raw.client_list()
        ours = [c["id"] for c in clients if c.get("name") == env.prefix]
        assert ours
        for cid in ours:  # only our connections: other users of the server stay up
            await raw.execute_command("CLIENT", "KILL", "TYPE", "normal", "ID", cid)
    finally:
        await raw.aclose()
    await env.Item.insert({"id": "after"})  # a write first: it must not meet a dead socket
    assert (await env.Item.find("after")).id == "after"
    assert env.adapter.stats()["discarded"] >= 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _private_server(port: int, folder: str) -> list[str]:
    """A redis-server of this test's own (no data on disk), so restarting it disturbs
    nobody else's run (the shared server on 6379 is left alone)."""
    return [
        "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
        "--save", "", "--appendonly", "no", "--dir", folder,
    ]  # fmt: skip


async def _answers(url: str) -> bool:
    raw = aioredis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(await raw.ping())
    except (rexc.ConnectionError, rexc.TimeoutError, OSError):
        return False
    finally:
        await raw.aclose()


async def _until(url: str, up: bool) -> None:
    # An external process has no event to wait on: poll its state, bounded (~15 s).
    for _ in range(300):
        if await _answers(url) == up:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"redis at {url} did not come {'up' if up else 'down'}")


async def _sh(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await proc.wait()


async def test_server_restart_is_survived(tmp_path: Any) -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        if in_ci():
            pytest.fail("CI=true and redis-server/redis-cli are not installed", pytrace=False)
        pytest.skip("needs redis-server and redis-cli to run a private server")
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    await _sh(*_private_server(port, str(tmp_path)))
    await _until(url, up=True)
    orm = da.Diaspora()
    orm.create_data_source("main", "redis", url=url, prefix="restart", max_size=10)
    orm.create_data_source("mem", "memory")
    declare(orm)
    try:
        await orm.connect()
        env = Env(orm, url, "restart")
        await _warm(env)
        await _sh("redis-cli", "-p", str(port), "shutdown", "nosave")
        await _until(url, up=False)
        await _sh(*_private_server(port, str(tmp_path)))
        await _until(url, up=True)
        # The restarted server has no data and no cached scripts; the pool's
        # connections are all dead. The next operations must just work.
        await env.Item.insert({"id": "reborn", "n": 5})
        assert (await env.Item.find("reborn")).n == 5
        assert await env.Item.count({"n": {">": 4}}) == 1
    finally:
        await orm.close()
        await _sh("redis-cli", "-p", str(port), "shutdown", "nosave")


async def test_exhausted_pool_raises_pool_timeout_and_recovers() -> None:
    env = await make_env(max_size=2, acquire_timeout=0.3)
    try:
        adapter = env.adapter
        block = [(b"BLPOP", f"{env.prefix}/never", 5)]
        holders = [asyncio.create_task(adapter._run(block)) for _ in range(2)]
        for _ in range(1000):  # loop turns until both holders have their connection
            if adapter.stats()["in_use"] == 2:
                break
            await asyncio.sleep(0)
        assert adapter.stats()["in_use"] == 2
        with pytest.raises(PoolTimeout):
            await env.Item.find("x")
        for h in holders:
            h.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
        assert adapter.stats()["in_use"] == 0
        assert await env.Item.find("x") is None
    finally:
        await env.orm.close()
        await sweep(env.url, env.prefix)


# --- errors are translated at one boundary ---------------------------------------------


async def test_driver_errors_are_translated_with_their_cause() -> None:
    url, prefix = redis_url(), unique_prefix()
    slow = RedisAdapter("slow", {"url": url, "prefix": prefix, "socket_timeout": 0.1})
    await slow.connect()
    try:
        with pytest.raises(ConnectionLost) as info:
            await slow._run([(b"BLPOP", f"{prefix}/never", 2)])
        assert isinstance(info.value.__cause__, rexc.TimeoutError)
        await slow._run([(b"SET", f"{prefix}/ids", b"not a sorted set")])
        with pytest.raises(DataSourceError) as info2:
            await slow._run([(b"ZCARD", f"{prefix}/ids")])
        assert isinstance(info2.value.__cause__, rexc.ResponseError)
        assert slow.stats()["in_use"] == 0
    finally:
        await slow.close()
        await sweep(url, prefix)

    down = RedisAdapter("down", {"url": "redis://127.0.0.1:1/0", "connect_timeout": 1})
    with pytest.raises(ConnectionLost) as info3:
        await down.connect()
    assert info3.value.__cause__ is not None
    await down.close()
