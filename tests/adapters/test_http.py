"""The http adapter's own behaviour: round trips per batch, paging, retries, the permit
pool, error mapping and config. Everything runs against our real server in process.

``Spy`` is an httpx transport in front of ``httpx.ASGITransport``: it counts requests,
can hold them on a gate, and can inject transport failures or gateway answers; the
server and its memory store behind it are the real ones.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import diaspora_async as da
from diaspora_async.adapters.http import HTTPAdapter
from diaspora_async.server import create_app, wire


class Spy(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.failures: list[Exception | httpx.Response] = []
        self.gate: asyncio.Event | None = None
        self.in_flight = self.peak = 0
        self.busy = asyncio.Event()  # set whenever in_flight reaches `busy_at`
        self.busy_at = 1

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, httpx.Response):
                return failure
            raise failure
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.busy_at:
            self.busy.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1


def standard(orm: da.Diaspora) -> None:
    class Doc(orm.Model, sources=["main"]):
        name: str
        rank: int = 0
        stamps: list[datetime] = da.field(default_factory=list)
        when: dict[str, datetime] | None = None


class Pair:
    def __init__(self, server: da.Diaspora, client: da.Diaspora, spy: Spy) -> None:
        self.server, self.client, self.spy = server, client, spy
        self.Doc = client.models["Doc"]
        self.ServerDoc = server.models["Doc"]
        adapter = client.data_sources["main"].adapter
        assert isinstance(adapter, HTTPAdapter)
        self.adapter = adapter


@asynccontextmanager
async def pair(
    server_models: Callable[[da.Diaspora], None] = standard,
    client_models: Callable[[da.Diaspora], None] = standard,
    app_options: dict[str, Any] | None = None,
    **config: Any,
) -> AsyncIterator[Pair]:
    server = da.Diaspora()
    server.create_data_source("main", "memory")
    server_models(server)
    options = {"allow_empty_query": True} if app_options is None else app_options
    app = create_app(server, **options)
    spy = Spy(httpx.ASGITransport(app=app))
    client = da.Diaspora()
    client.create_data_source("main", "http", base_url="http://srv", transport=spy, **config)
    client_models(client)
    async with server, client:
        spy.requests.clear()
        spy.busy.clear()
        yield Pair(server, client, spy)


async def test_a_batch_insert_is_one_post() -> None:
    async with pair() as p:
        await p.Doc.insert_many([{"name": str(i)} for i in range(50)])
        assert p.spy.methods() == ["POST"]
        assert await p.ServerDoc.count() == 50


async def test_a_huge_batch_is_split_by_body_size() -> None:
    async with pair(max_body=4096) as p:
        await p.Doc.insert_many([{"name": "x" * 100} for i in range(100)])
        assert set(p.spy.methods()) == {"POST"} and len(p.spy.requests) > 3
        assert all(len(r.content) <= 4096 for r in p.spy.requests)
        assert await p.ServerDoc.count() == 100


async def test_entity_writes_are_one_conditional_write_per_batch() -> None:
    async with pair() as p:
        docs = await p.Doc.insert_many([{"name": str(i)} for i in range(6)])
        p.spy.requests.clear()
        await p.Doc.update_many({"name": {"$in": ["1", "2", "3"]}}, {"rank": 9})
        assert p.spy.methods() == ["GET", "POST"]  # the read, then one POST /Doc/_write
        assert p.spy.requests[-1].url.path.endswith("/Doc/_write")
        assert await p.ServerDoc.count({"rank": 9}) == 3
        p.spy.requests.clear()
        docs[0].rank, docs[1].rank, docs[4].rank = 5, 5, 6
        docs[5].name = "five"
        await docs.persist()
        assert p.spy.methods() == ["POST"]  # four changed entities, one request
        assert await p.ServerDoc.count({"rank": 5}) == 2


async def test_reads_are_paged_by_page_size() -> None:
    async with pair(page_size=3) as p:
        await p.Doc.insert_many([{"name": f"{i:02}", "rank": i} for i in range(10)])
        p.spy.requests.clear()
        found = await p.Doc.find_many(sort="-rank")
        assert [d.rank for d in found] == list(range(9, -1, -1))
        assert p.spy.methods() == ["GET"] * 4
        p.spy.requests.clear()
        found = await p.Doc.find_many(sort="rank", skip=2, limit=5)
        assert [d.rank for d in found] == [2, 3, 4, 5, 6]
        assert [r.url.params["limit"] for r in p.spy.requests] == ["3", "2"]
        assert len(await p.Doc.find_many(limit=0)) == 0


async def test_the_page_size_follows_a_smaller_server_cap() -> None:
    async with pair(app_options={"max_limit": 4, "allow_empty_query": True}) as p:
        await p.Doc.insert_many([{"name": str(i)} for i in range(10)])
        assert len(await p.Doc.find_many()) == 10
        assert p.adapter.page_size == 4
        assert len(await p.Doc.find_many(limit=9)) == 9


async def test_many_ids_are_chunked_to_fit_urls() -> None:
    async with pair() as p:
        docs = await p.Doc.insert_many([{"name": str(i)} for i in range(600)])
        schema = p.Doc.__meta__.schema_for("main")
        p.spy.requests.clear()
        rows = await p.adapter.get(schema, [d.id for d in docs] + ["absent"])
        assert sorted(r["id"] for r in rows) == sorted(d.id for d in docs)
        assert len(p.spy.requests) > 1
        assert all(len(str(r.url)) < 8000 for r in p.spy.requests)
        assert await p.adapter.delete(schema, [d.id for d in docs[:450]]) == 450
        assert await p.ServerDoc.count() == 150


async def test_datetimes_nested_in_lists_and_dicts_come_back_as_datetimes() -> None:
    when = datetime(2024, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    async with pair() as p:
        doc = await p.Doc.insert({"name": "t", "stamps": [when], "when": {"a": when}})
        back = await p.Doc.find(doc.id)
        assert back is not None
        assert back.stamps == [when] and back.when == {"a": when}
        assert back.state_in("main") is da.EntityState.SYNC


def strict_server(orm: da.Diaspora) -> None:
    class Doc(orm.Model, sources=["main"]):
        name: str = da.field(validate=lambda v: len(v) <= 3)
        rank: int = da.field(default=0, choices=[0, 1, 2])
        stamps: list[datetime] = da.field(default_factory=list)
        when: dict[str, datetime] | None = None


async def test_server_validation_errors_come_back_typed() -> None:
    async with pair(server_models=strict_server) as p:
        with pytest.raises(da.ValidationError) as info:
            await p.Doc.insert_many([{"name": "ok"}, {"name": "too long", "rank": 7}])
        assert [path for path, _ in info.value.errors] == ["[1].name", "[1].rank"]
        assert info.value.model == "Doc"
        assert await p.ServerDoc.count() == 0


def older_server(orm: da.Diaspora) -> None:
    class Doc(orm.Model, sources=["main"]):
        name: str
        rank: int = 0


async def test_server_query_errors_and_integrity_errors_come_back_typed() -> None:
    async with pair(server_models=older_server) as p:
        with pytest.raises(da.QueryError, match="no field 'when'"):
            await p.Doc.find_many({"when": None})
    async with pair() as p:
        await p.Doc.insert({"id": "x", "name": "a"})
        adapter, schema = await p.Doc.__meta__.target("main")
        with pytest.raises(da.IntegrityError, match="duplicate id 'x'") as info:
            await adapter.insert(schema, [{"id": "x", "name": "b", "rank": 0}])  # POST
        assert info.value.source == "main"


async def test_a_collection_the_server_lacks_fails_at_connect() -> None:
    def other(orm: da.Diaspora) -> None:
        class Other(orm.Model, sources=["main"]):
            name: str

    with pytest.raises(da.ConfigError, match="no collection 'Doc'"):
        async with pair(server_models=other):
            pass


async def test_transport_errors_are_retried_only_when_safe() -> None:
    async with pair(retries=2) as p:
        p.spy.failures = [httpx.ReadError("reset"), httpx.ConnectError("refused")]
        assert await p.Doc.count() == 0  # a GET: retried twice
        assert p.spy.methods() == ["GET"] * 3
        adapter, schema = await p.Doc.__meta__.target("main")
        p.spy.requests.clear()
        p.spy.failures = [httpx.ConnectError("refused")]
        await adapter.insert(schema, [{"id": "a", "name": "a", "rank": 1}])
        assert p.spy.methods() == ["POST"] * 2  # nothing was sent: safe to retry a POST
        p.spy.requests.clear()
        p.spy.failures = [httpx.ReadError("reset")]
        with pytest.raises(da.ConnectionLost, match="ReadError"):
            await adapter.insert(schema, [{"id": "b", "name": "b", "rank": 1}])
        assert p.spy.methods() == ["POST"]  # a plain POST may have been applied: not resent
        p.spy.requests.clear()
        p.spy.failures = [httpx.ReadError("reset")]
        await p.Doc.insert({"name": "c"})  # an entity write is revision-guarded: resent
        assert p.spy.methods() == ["POST"] * 2
        p.spy.failures = [httpx.Response(503), httpx.Response(502)]
        assert await p.Doc.count() == 2  # a and c; the spy failed b before sending it
        p.spy.failures = [httpx.ReadError("a"), httpx.ReadError("b"), httpx.ReadError("c")]
        with pytest.raises(da.ConnectionLost):
            await p.Doc.count()


async def test_no_server_is_connection_lost() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    orm = da.Diaspora()
    orm.create_data_source("main", "http", base_url=f"http://127.0.0.1:{port}", retries=1)
    standard(orm)
    with pytest.raises(da.ConnectionLost, match="ConnectError"):
        await orm.connect()
    await orm.close()


async def test_permits_bound_concurrency_and_show_in_stats() -> None:
    async with pair(max_size=2) as p:
        p.spy.gate, p.spy.busy_at = asyncio.Event(), 2
        tasks = [asyncio.create_task(p.Doc.count()) for _ in range(6)]
        await p.spy.busy.wait()
        await asyncio.sleep(0)  # let the other four reach the pool's queue
        stats = p.client.data_sources["main"].stats()
        assert (stats["in_use"], stats["waiting"], stats["max_size"]) == (2, 4, 2)
        p.spy.gate.set()
        assert await asyncio.gather(*tasks) == [0] * 6
        assert p.spy.peak == 2
        stats = p.client.data_sources["main"].stats()
        assert (stats["in_use"], stats["waiting"]) == (0, 0)


async def test_a_cancelled_request_gives_its_permit_back() -> None:
    async with pair(max_size=1) as p:
        p.spy.gate = asyncio.Event()
        stuck = asyncio.create_task(p.Doc.insert({"name": "never"}))
        await p.spy.busy.wait()
        assert p.client.data_sources["main"].stats()["in_use"] == 1
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        stats = p.client.data_sources["main"].stats()
        assert (stats["in_use"], stats["waiting"]) == (0, 0)
        p.spy.gate.set()
        assert await p.Doc.count() == 0  # the pool still lends; nothing was written


async def test_acquire_timeout_is_pool_timeout() -> None:
    async with pair(max_size=1, acquire_timeout=0.05) as p:
        p.spy.gate = asyncio.Event()
        held = asyncio.create_task(p.Doc.count())
        await p.spy.busy.wait()
        with pytest.raises(da.PoolTimeout):
            await p.Doc.count()
        p.spy.gate.set()
        assert await held == 0


async def test_headers_are_sent_and_auth_refusals_are_data_source_errors() -> None:
    def need_token(request: Any, action: str, model: Any) -> bool:
        return request.headers.get("authorization") == "Bearer t0k"

    options = {"auth": need_token, "allow_empty_query": True}
    async with pair(app_options=options, headers={"authorization": "Bearer t0k"}) as p:
        await p.Doc.insert({"name": "a"})
        assert p.spy.requests[-1].headers["authorization"] == "Bearer t0k"
    with pytest.raises(wire.WireError) as info:
        async with pair(app_options=options):
            pass
    assert info.value.status == 403 and isinstance(info.value, da.DataSourceError)


async def test_drop_needs_a_server_that_allows_empty_deletes() -> None:
    async with pair(app_options={}) as p:
        await p.Doc.insert({"name": "a"})
        with pytest.raises(da.QueryError, match="non-empty where"):
            await p.adapter.drop(p.Doc.__meta__.schema_for("main"))
        assert await p.ServerDoc.count() == 1
        assert await p.Doc.delete_many({"name": "a"}) == 1


async def test_ping_and_use_before_connect() -> None:
    async with pair() as p:
        await p.client.data_sources["main"].ping()
    adapter = HTTPAdapter("api", {"base_url": "http://x"})
    with pytest.raises(da.ConnectionLost, match="not connected"):
        await adapter.ping()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "base_url must be an http"),
        ({"base_url": "localhost:80"}, "base_url must be an http"),
        ({"base_url": "http://x", "headers": {"a": 1}}, "headers must map str to str"),
        ({"base_url": "http://x", "timeout": "soon"}, "'timeout' must be a number"),
        ({"base_url": "http://x", "retries": -1}, "retries must be >= 0"),
        ({"base_url": "http://x", "page_size": 0}, "page_size must be >= 1"),
        ({"base_url": "http://x", "transport": object()}, "transport must be an httpx"),
        ({"base_url": "http://x", "max_size": 0}, "max_size"),
        ({"base_url": "http://x", "bogus": 1}, "unknown option(s) bogus"),
    ],
)
def test_bad_config_is_config_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(da.ConfigError) as info:
        HTTPAdapter("api", config)
    assert message in str(info.value)


def test_a_password_in_base_url_is_never_echoed() -> None:
    with pytest.raises(da.ConfigError) as info:
        HTTPAdapter("api", {"base_url": "http://u:s3cret@h", "bogus": 1})
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "entity_id", ["plain", "a/b", "..", ".", "count", "sp ace", "ü%2F?#&=", "a\\b"]
)
async def test_any_id_round_trips(entity_id: str) -> None:
    async with pair() as p:
        await p.Doc.insert_many([{"id": entity_id, "name": "x"}, {"id": "other", "name": "y"}])
        found = await p.Doc.find(entity_id)
        assert found is not None and found.id == entity_id and found.name == "x"
        assert await p.Doc.find(entity_id + "-absent") is None
        schema = p.Doc.__meta__.schema_for("main")
        assert {r["id"] for r in await p.adapter.get(schema, [entity_id, "other"])} == {
            entity_id, "other"
        }  # fmt: skip
        found.name = "z"
        await found.persist()
        assert (await p.ServerDoc.find(entity_id)).name == "z"  # type: ignore[union-attr]
        assert await p.adapter.delete(schema, [entity_id]) == 1
        assert await p.ServerDoc.count() == 1


async def test_one_id_is_read_through_the_id_route() -> None:
    async with pair() as p:
        doc = await p.Doc.insert({"name": "x"})
        p.spy.requests.clear()
        assert await p.Doc.find(doc.id) is not None
        assert await p.Doc.find("missing") is None
        assert [r.url.path for r in p.spy.requests] == [f"/Doc/{doc.id}", "/Doc/missing"]


async def test_clients_share_one_verifying_tls_context() -> None:
    # Built once per process (loading the CA bundle is the slow part of connect), and
    # still httpx's default: certificates and host names are checked.
    contexts = []
    for _ in range(2):
        adapter = HTTPAdapter("api", {"base_url": "https://example.invalid/api"})
        await adapter.connect()
        try:
            pool = adapter._pool
            assert pool is not None
            transport = pool.lend._transport
            contexts.append(transport._pool._ssl_context)  # httpcore's connection pool
        finally:
            await adapter.close()
    assert contexts[0] is contexts[1]
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED
    assert contexts[0].check_hostname
