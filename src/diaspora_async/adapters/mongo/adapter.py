"""The ``mongo`` adapter: MongoDB through PyMongo's ``AsyncMongoClient`` (motor accepted).

Sits under a data source (``create_data_source("docs", "mongo", url="mongodb://host/app")``,
or ``client=<AsyncMongoClient | AsyncIOMotorClient>, database="app"``) and above the
driver. One document per entity, ``_id`` = entity id, or a tombstone (``_id``, ``_rev``,
``_del``); documents and filters come from ``collection.py`` (over ``filter.py``);
every batch is one driver call (``insert_many``, ``update_many`` or one ``bulk_write``,
``delete_many``), and ``write``, the revision-guarded upsert, reads its bulk result
with ``write.py``. The driver pools its own sockets, so the common pool (``adapters/pool.py``,
as ``PermitPool`` from ``adapters/permits.py``) lends *permits* over the one shared client
instead of connections: at most ``max_size`` operations run at once (the client's
``maxPoolSize`` is the same number), ``acquire_timeout`` raises ``PoolTimeout`` and
``stats()`` reads like every other adapter's, without pooling twice. Driver errors become
ours in ``translate_error``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient, IndexModel, UpdateMany, uri_parser
from pymongo import errors as perr

from ...errors import (
    AccessDenied,
    ConfigError,
    ConnectionLost,
    DataSourceError,
    DiasporaError,
    IntegrityError,
    OperationTimeout,
    PoolTimeout,
)
from ...query.ast import Node, Query
from ..base import DELETED, REV, Adapter, Capabilities, CollectionSchema, Revision, Row
from ..permits import PERMIT, PermitPool
from ..pool_options import PoolOptions
from .collection import PRESENT, MongoCollection
from .filter import MongoFilterCompiler, needs_canonical
from .write import DUPLICATE, admits, read_outcome, same_revision

__all__ = ["MongoAdapter"]

_DENIED = frozenset({18})  # AuthenticationFailed (the driver authenticates on first use)
_CODEC = CodecOptions(document_class=dict, tz_aware=True, tzinfo=UTC)
_ATTEMPTS = 3  # bulk writes per write() at most: the first, then creates over old tombstones
# and rows that lost a race with a concurrent insert (each retry is of those rows only)


def _database_from_url(name: str, url: Any) -> str | None:
    """Check ``url`` without I/O and return its database name, if any."""
    if not isinstance(url, str) or not url.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(
            f"data source {name!r} (mongo): url must be mongodb://... or mongodb+srv://..., "
            f"got {url!r}"
        )
    if url.startswith("mongodb+srv://"):  # parsing would resolve DNS: leave it to connect()
        return unquote(urlsplit(url).path.lstrip("/")) or None
    try:
        database: str | None = uri_parser.parse_uri(url)["database"]
    except (perr.ConfigurationError, ValueError) as exc:
        raise ConfigError(f"data source {name!r} (mongo): bad url {url!r}: {exc}") from None
    return database


class MongoAdapter(Adapter):
    """Stores each entity as one document with ``_id`` = its id.

    Config: either ``url`` (``mongodb://[user:pass@]host[:port][,host...]/database?opts``;
    the database comes from the path or ``database=``) or ``client`` (an
    ``AsyncMongoClient`` or a motor ``AsyncIOMotorClient`` you own and close; the
    database from ``database=`` or the client's default), ``client_options`` (extra
    keyword arguments for the ``AsyncMongoClient`` built from ``url``), plus the common
    pool options (``timeout``, seconds per operation, default 30 -> ``OperationTimeout``;
    ``min_size``, ``max_size``, ``acquire_timeout``, ``connect_timeout``, ``recycle``,
    ``health_check_interval``, ``close_timeout``). With ``url``, the client gets
    ``maxPoolSize=max_size``, ``minPoolSize=min_size``, ``connect_timeout`` as its
    connect and server-selection timeouts and ``timeout`` as its socket timeout (so the
    driver drops a socket that stopped answering even where no task waits on it).

    Attributes:
        database: the database's name.
    """

    label = "mongo"
    extra = "mongo"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_query=True, persistent=True, pooled=True, unique_indexes=True,
        keyset_paging=True,
    )  # fmt: skip

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        config = dict(config)
        options = PoolOptions.from_config(config)
        url = config.pop("url", None)
        client = config.pop("client", None)
        database = config.pop("database", None)
        client_options = config.pop("client_options", None) or {}
        super().__init__(name, config)
        if (url is None) == (client is None):
            raise ConfigError(f"data source {name!r} (mongo): give either url= or client=")
        if not isinstance(client_options, Mapping):
            raise ConfigError(f"data source {name!r} (mongo): client_options must be a dict")
        if url is not None:
            database = database or _database_from_url(name, url)
        elif database is None:
            try:
                database = client.get_default_database().name
            except (AttributeError, perr.ConfigurationError):
                database = None
        if not isinstance(database, str) or not database:
            raise ConfigError(
                f"data source {name!r} (mongo): no database given (url path or database=)"
            )
        self.database = database
        self._url: str | None = url
        self._client: Any = client
        self._own_client = client is None
        self._client_options = {
            "maxPoolSize": options.max_size,
            "minPoolSize": options.min_size,
            "connectTimeoutMS": int(options.connect_timeout * 1000),
            "serverSelectionTimeoutMS": int(options.connect_timeout * 1000),
            "socketTimeoutMS": int(options.timeout * 1000),
            **client_options,
        }
        self._db: Any = None
        self._pool = PermitPool(name, options, PERMIT)
        self._timeout = options.timeout
        self._known: dict[CollectionSchema, MongoCollection] = {}

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Create the client (with ``url``), open the permit pool, check the server answers."""
        if self._db is None:
            if self._client is None:
                try:
                    self._client = AsyncMongoClient(self._url, **self._client_options)
                except (perr.ConfigurationError, ValueError, TypeError) as exc:
                    raise ConfigError(f"data source {self.name!r} (mongo): {exc}") from exc
            codec = self._client.codec_options.with_options(
                document_class=dict, tz_aware=True, tzinfo=UTC
            )
            self._db = self._client.get_database(self.database, codec_options=codec)
        try:
            await self._pool.open()  # permits: nothing to refuse; the ping meets the server
            await self.ping()
        except BaseException:
            # The data source only closes an adapter whose connect() succeeded: close
            # the client made here (a hung or absent server), or its monitors leak.
            await self.close()
            raise

    async def close(self) -> None:
        """Close the pool (waiting for running operations) and the client if we made it."""
        await self._pool.close()
        client, self._client = self._client, (None if self._own_client else self._client)
        if self._own_client and client is not None:
            self._db = None  # a closed client cannot be reused: connect() makes a new one
            await client.close()

    async def ping(self) -> None:
        """Round-trip a ``ping`` command."""
        async with self._borrow():
            await self._database().command("ping")

    def stats(self) -> dict[str, int]:
        """The permit pool's statistics (same keys as every pooled adapter)."""
        return self._pool.stats()

    async def ensure_schema(self, schema: CollectionSchema) -> None:
        """Build the declared indexes; ``unique`` ones are partial on the field's
        existence (missing values are not indexed, so any number of entities, and every
        tombstone, may lack the value while two live rows still cannot share one).

        Documents need no migration: a document stored before revisions existed has no
        ``_rev`` (read as None, the oldest) and no ``_del`` (live). The unique indexes
        have been partial since the adapter's first version, so they stay as they are.
        """
        c = self._coll(schema)
        indexes = []
        for name, spec in schema.fields.items():
            if not (spec.index or spec.unique):
                continue
            key = c.names[name]
            if spec.unique:
                partial = {key: PRESENT}
                indexes.append(IndexModel([(key, 1)], unique=True, partialFilterExpression=partial))
            else:
                indexes.append(IndexModel([(key, 1)]))
        if indexes:
            async with self._borrow():
                await c.coll.create_indexes(indexes)

    async def drop(self, schema: CollectionSchema) -> None:
        """Drop the collection with its indexes."""
        c = self._coll(schema)
        async with self._borrow():
            await c.coll.drop()

    # -- revisions ---------------------------------------------------------------------
    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        """One unordered ``bulk_write`` of guarded ``ReplaceOne`` ops, creates (rows
        expecting no live copy) as ``InsertOne`` (see ``MongoCollection.write_ops``; a
        batch mixing both is two commands). The stored revisions are read only when the
        result shows a row was not applied (``write.py``): to leave replays out, to
        write again a create over an older tombstone or a row that lost a race with a
        concurrent insert, and to tell a unique violation (``IntegrityError``, raised
        after the rest of the batch applied: the store has no multi-document atomicity
        here) from a refused row.
        """
        if not rows:
            return []
        c = self._coll(schema)
        refused: list[int] = []
        pending = list(range(len(rows)))  # indexes into ``rows`` still to decide
        for attempt in range(_ATTEMPTS):
            batch, wanted = rows, expect
            if attempt:  # the rows to retry only
                batch = [rows[i] for i in pending]
                wanted = None if expect is None else [expect[i] for i in pending]
            ops, plain = c.write_ops(
                batch, wanted, fresh=not attempt, insert_first=fresh and not attempt
            )
            failure: perr.BulkWriteError | None = None
            async with self._borrow():
                try:
                    result = await c.coll.bulk_write(ops, ordered=False)
                except perr.BulkWriteError as exc:
                    failure, details = exc, exc.details
                else:
                    if not result.acknowledged:  # w=0: nothing can be known
                        return []
                    details = result.bulk_api_result
            outcome = read_outcome(details, len(ops), plain)
            if outcome.clean:
                break
            if outcome.other is not None:
                raise DataSourceError(
                    self.name, f"write to {schema.collection}: {outcome.other}"
                ) from failure
            suspects = outcome.suspects()
            held = await self.revisions(schema, [batch[i]["id"] for i in suspects])
            retry: list[int] = []
            for i in suspects:
                row = batch[i]
                stored = held.get(row["id"])
                if same_revision(stored, row):
                    continue  # a replay, or a plain replace that did apply
                if not admits(stored, row[REV], wanted, i):
                    refused.append(pending[i])
                elif i in outcome.clashes:
                    if fresh and not attempt:  # undo the creates of this batch, as
                        await self._undo_inserts(c, batch, outcome)  # insert() does
                    raise IntegrityError(
                        self.name, f"duplicate key: {outcome.clashes[i]}"
                    ) from failure
                else:  # a create over an older tombstone, or the store changed between
                    retry.append(pending[i])  # the guard and the insert: try again
            if not retry:
                break
            pending = retry
        else:
            refused += pending  # still racing after every attempt: refused, never forced
        return [rows[i]["id"] for i in sorted(refused)]

    async def _undo_inserts(self, c: Any, batch: Sequence[Row], outcome: Any) -> None:
        """Delete what a batch of plain inserts (the ``fresh`` hint) created before a
        unique clash: those ids were absent, so the store is as it was before the call."""
        failed = set(outcome.suspects())
        made = [row["id"] for i, row in enumerate(batch) if i not in failed]
        if made:
            async with self._borrow():
                await c.coll.delete_many({"_id": {"$in": made}})

    async def revisions(self, schema: CollectionSchema, ids: Sequence[str]) -> dict[str, Revision]:
        """One ``find`` by id, tombstones included, projected to ``_rev`` and ``_del``."""
        if not ids:
            return {}
        c = self._coll(schema)
        flt = c.by_ids(list(dict.fromkeys(ids)), live=False)
        async with self._borrow():
            docs = await c.coll.find(flt, projection={REV: 1, DELETED: 1}).to_list(None)
        return {d["_id"]: (d.get(REV), DELETED in d) for d in docs}

    async def purge(self, schema: CollectionSchema, before: datetime) -> int:
        """One ``delete_many`` of the tombstones deleted before ``before``.

        No index on ``_del``: on SecantusDB even a sparse or partial one costs every
        bulk write about a third more, for a query run once in a retention period.
        """
        c = self._coll(schema)
        async with self._borrow():
            result = await c.coll.delete_many({DELETED: {"$lt": before}})
        return int(result.deleted_count)

    # -- data --------------------------------------------------------------------------
    async def insert(self, schema: CollectionSchema, rows: Sequence[Row]) -> None:
        """One ordered ``insert_many``; on a duplicate, the documents it inserted before
        the failing one are deleted again, so a failed batch writes nothing. A stored
        tombstone holds its id, so inserting that id again is a duplicate too."""
        if not rows:
            return
        c = self._coll(schema)
        docs = [c.encode(r) for r in rows]
        async with self._borrow():
            try:
                await c.coll.insert_many(docs, ordered=True)
            except perr.BulkWriteError as exc:
                done = int(exc.details.get("nInserted", 0))
                if done:
                    await c.coll.delete_many({"_id": {"$in": [d["_id"] for d in docs[:done]]}})
                raise

    async def get(self, schema: CollectionSchema, ids: Sequence[str]) -> list[Row]:
        """The live rows among ``ids``, in one query by ``_id`` alone: tombstones (three
        small keys) are dropped here, which is cheaper than a ``_del`` condition the
        server would check (a point lookup is ~15% slower with it on SecantusDB)."""
        if not ids:
            return []
        c = self._coll(schema)
        flt = c.by_ids(list(dict.fromkeys(ids)), live=False)
        async with self._borrow():
            docs = await c.coll.find(flt).to_list(None)
        return [c.decode(d) for d in docs if DELETED not in d]

    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        """One ``find`` with the compiled filter (live documents only), sort, skip and
        limit."""
        if query.limit == 0:
            return []  # Mongo reads limit 0 as "no limit"
        c = self._coll(schema)
        flt = c.where(query.where)
        sort = c.sort(query.sort) if query.sort else [("_id", 1)]
        async with self._borrow():
            cursor = c.coll.find(flt, sort=sort, skip=query.skip, limit=query.limit or 0)
            docs = await cursor.to_list(None)
        return [c.decode(d) for d in docs]

    async def count(self, schema: CollectionSchema, where: Node | None) -> int:
        """The ``count`` command with the compiled filter (live documents only).

        ``count`` with a query matches like ``find`` and is exact (sharded clusters
        included). ``count_documents`` would wrap the filter in an aggregation
        ``$match``, where SecantusDB refuses a literal ``$where`` key inside an ``$eq``
        operand, i.e. a user's dict value.
        """
        c = self._coll(schema)
        async with self._borrow():
            reply = await self._database().command("count", c.coll.name, query=c.where(where))
        return int(reply["n"])

    async def update(self, schema: CollectionSchema, changes: Sequence[tuple[str, Row]]) -> int:
        """Ids sharing one change dict go in one ``update_many``; several dicts, one
        ordered ``bulk_write``. Tombstones are not touched. Returns the number of
        matched (live) documents."""
        if not changes:
            return 0
        c = self._coll(schema)
        groups: dict[int, tuple[Row, list[str]]] = {}
        for id_, change in changes:
            groups.setdefault(id(change), (change, []))[1].append(id_)
        ops = [(c.by_ids(ids), c.changes(change)) for change, ids in groups.values()]
        async with self._borrow():
            if len(ops) == 1:
                result = await c.coll.update_many(*ops[0])
            else:
                requests = [UpdateMany(flt, upd) for flt, upd in ops]
                result = await c.coll.bulk_write(requests, ordered=True)
        return int(result.matched_count)

    async def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> int:
        """One ``delete_many`` of the live documents by id; a second one, for tombstones,
        only when fewer live documents than ids were found (the common case, deleting
        rows that exist, stays one round trip and the count is of live rows)."""
        if not ids:
            return 0
        c = self._coll(schema)
        unique = list(dict.fromkeys(ids))
        async with self._borrow():
            live = int((await c.coll.delete_many(c.by_ids(unique))).deleted_count)
            if live < len(unique):
                await c.coll.delete_many({**c.by_ids(unique, live=False), DELETED: PRESENT})
        return live

    async def delete_where(self, schema: CollectionSchema, where: Node | None) -> int:
        """One ``delete_many`` with the compiled filter (live documents only)."""
        c = self._coll(schema)
        async with self._borrow():
            result = await c.coll.delete_many(c.where(where))
        return int(result.deleted_count)

    # -- internals ---------------------------------------------------------------------
    def _database(self) -> Any:
        if self._db is None:
            raise ConnectionLost(self.name, "not connected (call connect() first)")
        return self._db

    def _coll(self, schema: CollectionSchema) -> MongoCollection:
        c = self._known.get(schema)
        if c is None:
            compiler = MongoFilterCompiler(schema.model, schema.fields, schema.stored)
            names = dict(compiler.paths)
            c = MongoCollection(
                coll=self._database()[schema.collection],
                compiler=compiler,
                names=names,
                back={v: k for k, v in names.items() if k != "id"},
                canonical=frozenset(n for n, s in schema.fields.items() if needs_canonical(s)),
                blank={"id": None, REV: None, **dict.fromkeys(schema.fields)},
            )
            if len(self._known) > 1000:  # schemas made per call (tests): keep it bounded
                self._known.clear()
            self._known[schema] = c
        return c

    @asynccontextmanager
    async def _borrow(self) -> AsyncIterator[None]:
        """Hold a permit for one driver call (bounded by ``timeout``: past it, the call is
        cancelled and the permit discarded); the one boundary for driver errors."""
        async with self._pool.acquire():
            with self.translate_errors():
                yield

    def translate_error(self, exc: Exception) -> DiasporaError:
        """Duplicate keys -> ``IntegrityError``; a reply later than the socket timeout
        (``timeout``) -> ``OperationTimeout``; other network trouble -> ``ConnectionLost``;
        the driver's own wait-queue timeout -> ``PoolTimeout``; the rest (server errors,
        server-side time limits, unencodable values) -> ``DataSourceError``."""
        what = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, perr.DuplicateKeyError):
            return IntegrityError(self.name, f"duplicate key: {exc}")
        if isinstance(exc, perr.BulkWriteError):
            errors = exc.details.get("writeErrors") or []
            dup = next((e for e in errors if e.get("code") in DUPLICATE), None)
            if dup is not None:
                return IntegrityError(self.name, f"duplicate key: {dup.get('errmsg', '')}")
            first = errors[0].get("errmsg", "") if errors else ""
            return DataSourceError(self.name, f"{what} {first}".strip())
        if isinstance(exc, perr.WaitQueueTimeoutError):
            return PoolTimeout(self.name, what)
        if isinstance(exc, perr.NetworkTimeout):
            return OperationTimeout(self.name, self._timeout)
        if isinstance(exc, perr.ConnectionFailure):  # AutoReconnect, ...
            return ConnectionLost(self.name, what)
        if isinstance(exc, perr.OperationFailure) and exc.code in _DENIED:
            return AccessDenied(
                self.name,
                f"server refused the credentials: {what}; check the url's user, password "
                "and authSource (retrying cannot help)",
            )
        if isinstance(exc, perr.OperationFailure) and exc.code in DUPLICATE:
            return IntegrityError(self.name, f"duplicate key: {exc}")
        return DataSourceError(self.name, what)
