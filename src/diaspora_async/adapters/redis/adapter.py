"""The Redis adapter: entities as hashes, indexes in sets, writes as Lua scripts.

Sits between a data source and redis-py's asyncio ``Connection``:
``create_data_source("cache", "redis", url="redis://127.0.0.1:6379/0", prefix="da")``.
Connections come from the common pool (``adapters/pool.py``): ``_RedisPool`` opens raw
``redis.asyncio.connection.Connection`` objects (redis-py connects and does the
handshake) and the adapter drives them directly, packing batches and decoding replies
itself (``resp.py``), so there is one bounded pool with the common guarantees and
no second pool inside redis-py. Every write is one ``EVALSHA`` of a per-collection script
(``scripts.py``) that checks, writes and maintains indexes atomically; reads are one
pipelined batch of ``HGETALL`` after at most one pipelined batch of index lookups
(``index.py``); rows are filtered, sorted and sliced with the reference matcher so
answers equal the memory adapter's. ``write`` (the revision-guarded upsert) is such a
script too: guard, expectations, tombstones and index upkeep in one run per batch, with
``revisions`` a pipelined read and ``purge`` a range over the collection's tombstone set.
Key layout, tombstones and value encoding: ``layout.py``. The one
private redis-py attribute used (the connection's stream reader) is read in ``_redispy.py``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import redis.exceptions as rexc
from redis.asyncio.connection import Connection, parse_url

from ...errors import (
    AccessDenied,
    ConfigError,
    ConnectionLost,
    DataSourceError,
    DiasporaError,
    IntegrityError,
)
from ...query.ast import Node, Query
from ...query.match import compile_predicate, sort_rows
from ..base import DELETED, REV, Adapter, Capabilities, CollectionSchema, Revision, Row
from ..pool import Pool, PoolOptions
from ._redispy import reader
from .index import Plan, Planner, candidates, exact
from .layout import Layout, layout, to_us
from .resp import pack, read_replies
from .scripts import Script, Scripts, scripts

__all__ = ["RedisAdapter"]

_PING = (b"PING",)
_PURGE_CHUNK = 1000  # tombstones removed per purge script run (bounds how long one blocks)
_NO_EXPECT = "-"  # the write script's expectation codes: see scripts._WRITE
_NO_LIVE = "n"
_HELD = (b"id", REV.encode(), DELETED.encode())  # a live hash has id; a tombstone, _del


def _codes(expect: Sequence[str | None]) -> list[str]:
    """The write script's expectation codes for ``expect``."""
    return [_NO_LIVE if e is None else "=" + e for e in expect]


class _RedisPool(Pool[Connection]):
    """The common pool over raw redis-py connections (one TCP connection each)."""

    def __init__(
        self,
        source: str,
        options: PoolOptions,
        conn_kwargs: dict[str, Any],
        classify: Callable[[Exception], DiasporaError] | None = None,
    ) -> None:
        super().__init__(source, options, classify=classify)
        kwargs = dict(conn_kwargs)
        self._cls: type[Connection] = kwargs.pop("connection_class", Connection)
        self._kwargs = kwargs

    async def _open(self) -> Connection:
        conn = self._cls(**self._kwargs)
        try:
            await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        return conn

    async def _close(self, conn: Connection) -> None:
        await conn.disconnect()

    async def _ping(self, conn: Connection) -> None:
        await conn.send_packed_command(pack(_PING), check_health=False)
        if await read_replies(reader(conn), 1) != [b"PONG"]:
            raise rexc.ConnectionError("unexpected reply to PING")

    def _alive(self, conn: Connection) -> bool:
        # A server that closed the socket (CLIENT KILL, restart) has left EOF in the
        # reader: replace the connection now rather than fail the next command.
        stream = reader(conn)
        return conn.is_connected and stream is not None and not stream.at_eof()


@dataclass(frozen=True, slots=True, eq=False)
class _Collection:
    """Per-schema compiled state: keys, codecs, scripts and the index planner."""

    lay: Layout
    scripts: Scripts
    planner: Planner


def _structure(schema: CollectionSchema) -> tuple[Any, ...]:
    specs = tuple((n, s.kind, s.index, s.unique) for n, s in schema.fields.items())
    return schema.collection, tuple(schema.stored.items()), specs


class RedisAdapter(Adapter):
    """Stores each entity as a hash at ``{prefix}:{collection}:{id}``.

    Config: ``url`` (``redis://[user:pass@]host:port/db``, ``rediss://`` or
    ``unix://``; default ``redis://127.0.0.1:6379/0``), ``prefix`` (default ``"da"``),
    ``socket_timeout`` (seconds per reply, default None: only ``timeout`` bounds it; a
    reply later than this is ``ConnectionLost``), ``client_name`` (set on every
    connection with ``CLIENT SETNAME``, to find them in ``CLIENT LIST``), plus the common
    pool options (``timeout``, seconds per operation, default 30 -> ``OperationTimeout``;
    ``min_size``, ``max_size``, ``acquire_timeout``, ``connect_timeout``, ``recycle``,
    ``health_check_interval``, ``close_timeout``).

    Attributes:
        fetched: how many entity hashes reads have fetched so far (a diagnostic: tests
            use it to prove an index narrowed a query).
        round_trips: how many request/reply exchanges (pipelines, scripts) were made.
    """

    label = "redis"
    extra = "redis"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_query=True, transactions=True, persistent=True, pooled=True, unique_indexes=True
    )

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        config = dict(config)
        options = PoolOptions.from_config(config)
        url = config.pop("url", "redis://127.0.0.1:6379/0")
        prefix = config.pop("prefix", "da")
        socket_timeout = config.pop("socket_timeout", None)
        client_name = config.pop("client_name", None)
        super().__init__(name, config)
        if not isinstance(url, str) or not url:
            raise ConfigError(f"data source {name!r} (redis): url must be a string, got {url!r}")
        if socket_timeout is not None and (
            isinstance(socket_timeout, bool)
            or not isinstance(socket_timeout, int | float)
            or not 0 < socket_timeout < math.inf
        ):
            raise ConfigError(
                f"data source {name!r} (redis): socket_timeout must be seconds > 0 or None"
            )
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError(f"data source {name!r} (redis): prefix must be a non-empty string")
        try:
            kwargs: dict[str, Any] = dict(parse_url(url))
        except ValueError as exc:
            raise ConfigError(f"data source {name!r} (redis): bad url {url!r}: {exc}") from None
        kwargs.update(
            socket_connect_timeout=options.connect_timeout,
            # The handshake's (redis-py reads it); replies: self._timeout. No default from
            # ``timeout``: redis-py would then wrap every send in asyncio.wait_for (a task
            # per command), and the pool's deadline bounds the handshake anyway.
            socket_timeout=socket_timeout,
            decode_responses=False,
            client_name=client_name,
        )
        self.prefix = prefix
        self._timeout: float | None = None if socket_timeout is None else float(socket_timeout)
        self.fetched = 0
        self.round_trips = 0
        self._pool = _RedisPool(name, options, kwargs, self.classify_connect_error)
        self._known: dict[CollectionSchema, _Collection] = {}
        self._by_structure: dict[tuple[Any, ...], _Collection] = {}

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the pool (``min_size`` connections) and check the server answers."""
        await self._pool.open()  # raises ours: the pool asks classify_connect_error
        try:
            await self.ping()
        except BaseException:
            await self._pool.close()  # the data source closes only a connected adapter
            raise

    async def close(self) -> None:
        """Close the pool, waiting for borrowed connections (``close_timeout``)."""
        await self._pool.close()

    async def ping(self) -> None:
        """Round-trip a ``PING``."""
        await self._run([_PING])

    def stats(self) -> dict[str, int]:
        """The pool's statistics."""
        return self._pool.stats()

    async def ensure_schema(self, schema: CollectionSchema) -> None:
        """Compile the collection's layout and load its scripts (indexes need no DDL).

        Hashes written before revisions existed need no migration: a hash without
        ``_rev`` reads as revision None, and the tombstone set starts empty."""
        coll = self._coll(schema)
        await self._run([(b"SCRIPT", b"LOAD", x.source) for x in coll.scripts.all()])

    def _coll(self, schema: CollectionSchema) -> _Collection:
        coll = self._known.get(schema)
        if coll is None:
            key = _structure(schema)
            coll = self._by_structure.get(key)
            if coll is None:
                lay = layout(self.prefix, schema)
                coll = _Collection(lay, scripts(lay), Planner(lay, schema.model))
                self._by_structure[key] = coll
            if len(self._known) > 1000:  # schemas made per call (tests): keep it bounded
                self._known.clear()
            self._known[schema] = coll
        return coll

    # -- I/O: the one boundary where redis-py errors become ours ------------------------
    def translate_error(self, exc: Exception) -> DiasporaError:
        """Connection trouble and timeouts -> ``ConnectionLost``, the rest -> ``DataSourceError``.

        A timed-out reply leaves the connection out of step, so it is lost like a broken one.
        """
        if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | OSError):
            return ConnectionLost(self.name, f"{type(exc).__name__}: {exc}")
        return DataSourceError(self.name, f"{type(exc).__name__}: {exc}")

    def classify_connect_error(self, exc: Exception) -> DiasporaError:
        """Refused credentials (``WRONGPASS``, ``NOAUTH``, invalid username-password) or a
        db number the server does not have -> ``AccessDenied`` (not retried); anything
        else -> ``ConnectionLost``."""
        text = str(exc)
        if isinstance(exc, rexc.AuthenticationError) or text.startswith(
            ("WRONGPASS", "NOAUTH", "invalid username-password")
        ):
            what = "bad credentials"
        elif "DB index is out of range" in text or "invalid DB index" in text:
            what = "no such db number"
        else:
            return super().classify_connect_error(exc)
        return AccessDenied(
            self.name,
            f"server refused the connection ({what}): {type(exc).__name__}: {exc}; "
            "check the url's user, password and db number (retrying cannot help)",
        )

    async def _run(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send read-only (repeatable) ``commands`` as one pipeline; return every reply.

        A connection the server dropped without the pool seeing it yet (its EOF not yet
        read) fails the exchange with a connection error; reads are safe to repeat, so
        they get one more try on another connection. A connection that could not be
        opened is not retried, and writes (``_eval``) never retry.
        """
        # Every reply is read even after an error reply, so the connection stays in step.
        with self.translate_errors():
            data = pack(commands[0]) if len(commands) == 1 else b"".join(map(pack, commands))
        for retry in (True, False):
            self.round_trips += 1
            borrowed = False
            try:
                async with self._pool.acquire("read") as conn:
                    borrowed = True
                    with self.translate_errors():
                        replies = await self._send(conn, data, len(commands))
                break
            except ConnectionLost as exc:
                if not (retry and borrowed and isinstance(exc.__cause__, rexc.ConnectionError)):
                    raise
        for reply in replies:
            if isinstance(reply, rexc.ResponseError):
                raise self.translate_error(reply) from reply
        return replies

    async def _send(self, conn: Connection, data: bytes, want: int) -> list[Any]:
        """Write one batch and read its ``want`` replies (``socket_timeout`` bounds them)."""
        await conn.send_packed_command(data, False)
        # redis-py opened the connection and did the handshake; from here the adapter
        # reads its own replies from the connection's stream (see resp.py).
        if self._timeout is None:
            return await read_replies(reader(conn), want)
        try:
            async with asyncio.timeout(self._timeout):
                return await read_replies(reader(conn), want)
        except TimeoutError:
            raise rexc.TimeoutError(f"no reply within {self._timeout:g} s") from None

    async def _eval(self, script: Script, args: Sequence[Any]) -> Any:
        """Run a write script in one round trip (``EVAL`` again if the server lost it)."""
        self.round_trips += 1
        async with self._pool.acquire("write") as conn:
            with self.translate_errors():
                reply = (await self._send(conn, pack((b"EVALSHA", script.sha, 0, *args)), 1))[0]
                if isinstance(reply, rexc.NoScriptError):  # a restarted server forgot it
                    reply = (await self._send(conn, pack((b"EVAL", script.source, 0, *args)), 1))[0]
        if isinstance(reply, rexc.ResponseError):
            raise self.translate_error(reply) from reply
        return reply

    def _refused(self, schema: CollectionSchema, reply: Any) -> None:
        if isinstance(reply, list):
            code = bytes(reply[0])
            if code == b"dup":
                raise IntegrityError(
                    self.name, f"duplicate id {reply[1].decode()!r} in {schema.collection}"
                )
            field = reply[1].decode()
            logical = next((n for n, s in schema.stored.items() if s == field), field)
            raise IntegrityError(
                self.name, f"duplicate value {reply[2].decode()!r} for unique field {logical!r}"
            )

    # -- writes ------------------------------------------------------------------------
    async def insert(self, schema: CollectionSchema, rows: Sequence[Row]) -> None:
        """Insert every row in one script run; a duplicate id (a live row or a tombstone)
        or unique value writes nothing. ``REV`` is stored when the row has it."""
        if not rows:
            return
        coll = self._coll(schema)
        encode = coll.lay.encode_row
        args: list[Any] = []
        for row in rows:
            at = len(args)
            args.append(0)
            args[at] = encode(row, args)  # npairs, then the pairs (id first)
        self._refused(schema, await self._eval(coll.scripts.insert, args))

    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        """Revision-guarded upsert of every row in one script run (guard, unique checks
        and index maintenance inside it); returns the ids refused, replays left out.

        A unique value held by another live row raises ``IntegrityError`` and writes
        nothing."""
        if not rows:
            return []
        coll = self._coll(schema)
        encode = coll.lay.encode_full
        args: list[Any] = []
        codes = [_NO_EXPECT] * len(rows) if expect is None else _codes(expect)
        for row, exp in zip(rows, codes, strict=True):
            deleted = row.get(DELETED)
            if deleted is None:
                at = len(args)
                args += (0, exp)
                args[at] = encode(row, args)  # npairs, then the pairs (id, REV first)
            else:  # a tombstone: npairs 0, then id, revision and deletion time
                args += (0, exp, row["id"], row[REV], to_us(deleted))
        reply = await self._eval(coll.scripts.write, args)
        if reply == 0:
            return []
        if reply[0] != 0:
            self._refused(schema, reply)
        return [rows[k]["id"] for k in reply[1:]]

    async def revisions(self, schema: CollectionSchema, ids: Sequence[str]) -> dict[str, Revision]:
        """Stored revisions, tombstones included: one pipelined batch of ``HMGET``."""
        if not ids:
            return {}
        key = self._coll(schema).lay.key
        replies = await self._run([(b"HMGET", key(i), *_HELD) for i in ids])
        out: dict[str, Revision] = {}
        for id_, (live, rev, deleted) in zip(ids, replies, strict=True):
            if live is not None or deleted is not None:
                out[id_] = (None if rev is None else rev.decode(), deleted is not None)
        return out

    async def purge(self, schema: CollectionSchema, before: datetime) -> int:
        """Remove tombstones deleted before ``before``, found in the tombstone set by
        deletion time (no key scan), in runs of at most ``_PURGE_CHUNK``."""
        script = self._coll(schema).scripts.purge
        bound = f"({to_us(before)}"  # '(' = exclusive: strictly before
        total = 0
        while True:
            seen, removed = await self._eval(script, (bound, _PURGE_CHUNK))
            total += int(removed)
            if int(seen) < _PURGE_CHUNK:
                return total

    async def update(self, schema: CollectionSchema, changes: Sequence[tuple[str, Row]]) -> int:
        """Apply changes in one script run; ids sharing one changes dict form one group."""
        if not changes:
            return 0
        coll = self._coll(schema)
        groups: dict[int, tuple[Row, list[str]]] = {}
        for id_, change in changes:
            group = groups.get(id(change))
            if group is None:
                groups[id(change)] = group = (change, [])
            group[1].append(id_)
        encoders = coll.lay.encoders
        args: list[Any] = []
        for change, ids in groups.values():
            pairs: list[Any] = []
            dels: list[str] = []
            for name, value in change.items():
                if name == "id":
                    continue
                stored, enc = encoders[name]
                if value is None:
                    dels.append(stored)
                else:
                    pairs += (stored, enc(value))
            args += (len(pairs) // 2, *pairs, len(dels), *dels, len(ids), *ids)
        reply = await self._eval(coll.scripts.update, args)
        self._refused(schema, reply)
        return int(reply)

    async def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> int:
        """Delete by id in one script run (index entries go with them, and tombstones
        too); returns how many live rows there were."""
        if not ids:
            return 0
        return int(await self._eval(self._coll(schema).scripts.delete, ids))

    async def drop(self, schema: CollectionSchema) -> None:
        """Delete every entity, tombstone and index key of the collection in one script run."""
        await self._eval(self._coll(schema).scripts.drop, ())

    # -- reads -------------------------------------------------------------------------
    async def get(self, schema: CollectionSchema, ids: Sequence[str]) -> list[Row]:
        """Rows by id: one pipelined batch of ``HGETALL`` (tombstones decode to nothing)."""
        if not ids:
            return []
        lay = self._coll(schema).lay
        key = lay.key
        replies = await self._run([(b"HGETALL", key(i)) for i in ids])
        self.fetched += len(ids)
        decode = lay.decode
        return [row for row in map(decode, replies) if row is not None]

    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        """Candidates from an index (or every id), filtered, sorted and sliced like memory."""
        coll = self._coll(schema)
        skip, limit = query.skip, query.limit
        if limit == 0:
            return []
        sort, where = query.sort, query.where
        by_id = not sort or (len(sort) == 1 and sort[0].field == "id" and not sort[0].descending)
        if where is None and by_id:
            # Ascending id is the ids set's own order: read just the requested slice.
            stop = -1 if limit is None else skip + limit - 1
            ids = await self._run([(b"ZRANGE", coll.lay.ids, skip, stop)])
            return await self.get(schema, [i.decode() for i in ids[0]])
        plan, end = (
            coll.planner.visit(where) if where else None,
            None if limit is None else skip + limit,
        )
        if by_id and plan is not None and exact(plan):
            # The index answers exactly and ids sort as strings: read the page's hashes only.
            return await self.get(schema, (await candidates(self._run, coll.lay, plan))[skip:end])
        return sort_rows(await self._matching(schema, coll, where, plan), sort)[skip:end]

    async def count(self, schema: CollectionSchema, where: Node | None) -> int:
        """``ZCARD`` without a filter; otherwise the number of matching candidates."""
        coll = self._coll(schema)
        if where is None:
            return int((await self._run([(b"ZCARD", coll.lay.ids)]))[0])
        plan = coll.planner.visit(where)
        if plan is not None and exact(plan):
            return len(await candidates(self._run, coll.lay, plan))  # no hash needs reading
        return len(await self._matching(schema, coll, where, plan))

    async def _matching(
        self, schema: CollectionSchema, coll: _Collection, where: Node | None,
        plan: Plan | None = None,
    ) -> list[Row]:  # fmt: skip
        if plan is None and where is not None:
            plan = coll.planner.visit(where)
            if plan is None:
                coll.planner.scans(where)
        ids = await candidates(self._run, coll.lay, plan)
        rows = await self.get(schema, ids)
        if where is None:
            return rows
        pred = compile_predicate(where)
        return [r for r in rows if pred(r)]
