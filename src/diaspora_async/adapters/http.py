"""The ``http`` adapter: a model's data source is a REST server speaking ``..wire``.

Sits where any adapter sits (Model -> data source -> adapter), with ``httpx.AsyncClient``
as its driver: usually our own ``create_app`` server, in another process or in this one
through ``httpx.ASGITransport``. Queries are sent in the canonical JSON form rebuilt from
the parsed AST (``wire.where_to_json``) and parsed again by the server, so every operator
means the same on both sides; error answers become the typed errors the server raised
(``wire.decode_error``). httpx keeps the real connection pool; the common ``Pool`` (as
``PermitPool``, ``permits.py``) hands out permits over the one shared client, so limits,
``acquire_timeout`` and ``stats()`` behave as for every other networked adapter without
pooling twice.

Revisions (DESIGN.md 6.1): the server answers reads with each row's ``_rev``, and
``write``/``revisions``/``purge`` are one ``POST /{c}/_write`` / ``_revisions`` /
``_purge`` per batch (split only above ``max_body``), which the server hands to its own
store's adapter; the revision guard runs there, inside that store. A conditional write is
idempotent (a replayed row holding the stored revision counts as applied), so it is
retried like a GET.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import certifi
import httpx

from .. import wire
from ..errors import (
    ConfigError,
    ConnectionLost,
    DiasporaError,
    OperationTimeout,
    QueryError,
    ValidationError,
)
from ..query.ast import Node, Query
from ._http_body import END, EXPECT, ROWS, Codec, shift_path, spans
from .base import DELETED, Adapter, Capabilities, CollectionSchema, Revision, Row
from .permits import PermitPool
from .pool import PoolOptions

__all__ = ["HTTPAdapter"]

_JSON_HEADERS = {"content-type": wire.JSON_TYPE, "prefer": "return=minimal"}
_RETRY_STATUS = frozenset({502, 503, 504})
_MAX_QUERY = 6000  # characters of ids per query string: well under common URL limits


def _config_number(name: str, source: str, raw: Any, integer: bool, minimum: float) -> Any:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or (integer and not isinstance(raw, int))
    ):
        raise ConfigError(f"data source {source!r} (http): {name} must be a number, got {raw!r}")
    if raw < minimum:
        raise ConfigError(
            f"data source {source!r} (http): {name} must be >= {minimum}, got {raw!r}"
        )
    return raw


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # httpx's own default (certifi's CA bundle), built once per process: loading the
    # bundle costs ~20 ms, which every connect() paid again. SSLContext is shareable.
    return ssl.create_default_context(cafile=certifi.where())


class HTTPAdapter(Adapter):
    """Stores entities through a REST server (``create_data_source("api", "http", ...)``).

    Config:
        base_url: the server's URL, e.g. ``"http://127.0.0.1:8000/api"`` (required).
        headers: extra headers on every request (e.g. ``{"authorization": "Bearer ..."}``).
        timeout: seconds per operation (default 30): a request, its retries and the
            wait for a permit; past it, ``OperationTimeout`` (a pool option, as for every
            adapter; httpx's own read/write timeouts are the same number).
        retries: extra attempts for idempotent requests (GET, DELETE) after a transport
            error or a 502/503/504; other requests are retried only when the connection
            could not be made (default 2).
        transport: an ``httpx`` transport, e.g. ``httpx.ASGITransport(app)`` to talk to
            an app in this process.
        page_size: the most entities asked for per request; larger reads are paged
            (default 1000, lowered automatically to the server's ``max_limit``).
        max_body: the largest request body in bytes; bigger inserts are split
            (default 1000000, the server's default).
        min_size, max_size, acquire_timeout, connect_timeout, ...: the common pool
            options; ``max_size`` is also httpx's connection limit.
    """

    label = "http"
    extra = "http"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_query=True, persistent=True, pooled=True, unique_indexes=True
    )

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        config = dict(config)
        self.options = PoolOptions.from_config(config)
        base_url = config.pop("base_url", None)
        if base_url is None and "url" in config:
            # Every other networked adapter takes url=: say which key this one wants.
            raise ConfigError(
                f"data source {name!r} (http): give the server as base_url=, not url= "
                f"(base_url={config['url']!r})"
            )
        if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError(f"data source {name!r} (http): base_url must be an http(s) URL")
        self.base_url = base_url.rstrip("/") + "/"
        headers = config.pop("headers", None) or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ConfigError(f"data source {name!r} (http): headers must map str to str")
        self.headers = dict(headers)
        self.timeout = self.options.timeout
        self.retries = int(_config_number("retries", name, config.pop("retries", 2), True, 0))
        self.page_size = int(
            _config_number("page_size", name, config.pop("page_size", 1000), True, 1)
        )
        self.max_body = int(
            _config_number("max_body", name, config.pop("max_body", 1_000_000), True, 1024)
        )
        self.transport = config.pop("transport", None)
        if self.transport is not None and not isinstance(self.transport, httpx.AsyncBaseTransport):
            raise ConfigError(
                f"data source {name!r} (http): transport must be an httpx.AsyncBaseTransport"
            )
        super().__init__(name, config)
        self._pool: PermitPool[httpx.AsyncClient] | None = None
        self._codecs: dict[CollectionSchema, Codec] = {}

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Create the shared client and open the permit pool."""
        opts = self.options
        client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=httpx.Timeout(self.timeout, connect=opts.connect_timeout),
            limits=httpx.Limits(
                max_connections=opts.max_size, max_keepalive_connections=opts.max_size
            ),
            transport=self.transport,
            verify=_tls_context(),
        )
        self._pool = PermitPool(self.name, opts, client)
        await self._pool.open()

    async def close(self) -> None:
        """Wait for requests in flight (up to ``close_timeout``), then close the client."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            finally:
                await pool.lend.aclose()

    def stats(self) -> dict[str, int]:
        """The permit pool's statistics (``size``, ``in_use``, ``idle``, ``waiting``...)."""
        return self._pool.stats() if self._pool is not None else super().stats()

    async def ping(self) -> None:
        """One request to the server's root: any HTTP answer means it is up."""
        async with self._client() as client:
            try:
                await client.get("")
            except httpx.HTTPError as exc:
                raise self.translate_error(exc) from exc

    async def ensure_schema(self, schema: CollectionSchema) -> None:
        """Check that the server serves the collection (``ConfigError`` if not)."""
        await self._call(schema, "GET", self._path(schema), params={"limit": "0"})

    # -- requests ----------------------------------------------------------------------
    def _client(self, what: str = "ping") -> Any:
        if self._pool is None:
            raise ConnectionLost(self.name, "not connected")
        return self._pool.acquire(what)

    @staticmethod
    def _path(schema: CollectionSchema, suffix: str = "") -> str:
        return quote(schema.collection, safe="") + suffix

    async def _call(
        self,
        schema: CollectionSchema,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One request with retries; returns the decoded JSON or raises a typed error.

        ``idempotent`` (default: GET and DELETE are) allows resending after the request
        may have reached the server.
        """
        if idempotent is None:
            idempotent = method in ("GET", "DELETE")
        headers = _JSON_HEADERS if body is not None else None
        async with self._client(method) as client:
            attempt = 0
            while True:
                attempt += 1
                try:
                    response = await client.request(
                        method, path, params=params, content=body, headers=headers
                    )
                except httpx.TransportError as exc:
                    # A refused connection sent nothing, so even a POST may be retried.
                    safe = idempotent or isinstance(exc, httpx.ConnectError)
                    if not safe or attempt > self.retries:
                        raise self.translate_error(exc) from exc
                else:
                    status = response.status_code
                    if status < 400:
                        return wire.loads(response.content)
                    if not (idempotent and status in _RETRY_STATUS and attempt <= self.retries):
                        raise wire.decode_error(self.name, schema.model, status, response.content)
                await asyncio.sleep(0.05 * 2 ** (attempt - 1))  # back off before retrying

    def translate_error(self, exc: Exception) -> DiasporaError:
        """httpx's read/write timeouts -> ``OperationTimeout``; other transport failures
        -> ``ConnectionLost``; anything else -> ``DataSourceError``."""
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return OperationTimeout(self.name, self.timeout)
        if isinstance(exc, httpx.HTTPError):
            return ConnectionLost(self.name, f"{type(exc).__name__}: {exc}".rstrip(": "))
        return super().translate_error(exc)

    def _codec(self, schema: CollectionSchema) -> Codec:
        codec = self._codecs.get(schema)
        if codec is None:
            codec = self._codecs[schema] = Codec(schema)
        return codec

    def _where(self, schema: CollectionSchema, where: Node | None) -> dict[str, Any]:
        return wire.where_to_json(where, schema.stored if schema.remapped else None)

    def _id_chunks(self, ids: Sequence[str]) -> Iterator[list[str]]:
        """Split ids so each ``where={"id": {"$in": [...]}}`` fits in a query string."""
        chunk: list[str] = []
        size = 0
        for i in dict.fromkeys(ids):
            cost = len(quote(i, safe="")) + 8
            if chunk and (size + cost > _MAX_QUERY or len(chunk) >= self.page_size):
                yield chunk
                chunk, size = [], 0
            chunk.append(i)
            size += cost
        if chunk:
            yield chunk

    async def _post_batch(
        self, schema: CollectionSchema, suffix: str, body: bytes, offset: int
    ) -> Any:
        """``POST /{c}/{suffix}``; a 422's ``[i]`` paths are shifted by ``offset`` (the
        chunk's first row), so they index what the caller passed."""
        try:
            return await self._call(
                schema, "POST", self._path(schema, "/" + suffix), body=body, idempotent=True
            )
        except ValidationError as exc:
            if not offset:
                raise
            raise ValidationError(
                exc.model, [(shift_path(p, offset), m) for p, m in exc.errors]
            ) from None

    def _follow_body_limit(self, exc: wire.WireError) -> bool:
        """After a 413 naming a smaller ``max_body``: lower ours to it (for good) and say
        that the request may be split again."""
        cap = exc.details.get("max_body") if isinstance(exc.details, dict) else None
        if exc.status != 413 or not isinstance(cap, int) or not 0 < cap < self.max_body:
            return False
        self.max_body = cap
        return True

    # -- data --------------------------------------------------------------------------
    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        """One ``POST /{c}/_write`` with every row (and expectation), split only above
        ``max_body``; returns the ids the server's store refused.

        A server with a smaller body limit answers 413 with it: the batch is sent again,
        split to fit (chunks that already landed are replays, counted as applied).
        """
        if not rows:
            return []
        try:
            return await self._write(schema, rows, expect)
        except wire.WireError as exc:
            if not self._follow_body_limit(exc):
                raise
        return await self._write(schema, rows, expect)

    async def _write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None,
    ) -> list[str]:
        if schema.remapped:  # tombstones hold no field to rename
            rows = [r if DELETED in r else schema.to_stored(r) for r in rows]
        exp = None if expect is None else list(expect)
        # The common case is one request: encode the batch in one call and look at it.
        encoded = wire.dumps(rows)
        encoded_exp = b"" if exp is None else EXPECT + wire.dumps(exp)
        if len(ROWS) + len(encoded) + len(encoded_exp) + 1 <= self.max_body:
            data = await self._post_batch(schema, wire.WRITE, ROWS + encoded + encoded_exp + END, 0)
            return list(data["refused"])
        items = [wire.dumps(r) for r in rows]
        exps = None if exp is None else [wire.dumps(e) for e in exp]
        costs = [len(b) for b in items] if exps is None else [
            len(b) + len(e) + 1 for b, e in zip(items, exps, strict=True)
        ]  # fmt: skip
        room = self.max_body - len(ROWS) - len(EXPECT) - 5  # brackets and the end
        refused: list[str] = []
        for a, b in spans(costs, room):
            body = ROWS + b"[" + b",".join(items[a:b]) + b"]"
            if exps is not None:
                body += EXPECT + b"[" + b",".join(exps[a:b]) + b"]"
            data = await self._post_batch(schema, wire.WRITE, body + END, a)
            refused.extend(data["refused"])
        return refused

    async def revisions(self, schema: CollectionSchema, ids: Sequence[str]) -> dict[str, Revision]:
        """``POST /{c}/_revisions`` with the ids (split only above ``max_body``, which
        follows a smaller limit the server names in a 413, like ``write``)."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        try:
            return await self._revisions(schema, unique)
        except wire.WireError as exc:
            if not self._follow_body_limit(exc):
                raise
        return await self._revisions(schema, unique)

    async def _revisions(self, schema: CollectionSchema, unique: list[str]) -> dict[str, Revision]:
        items = [wire.dumps(i) for i in unique]
        out: dict[str, Revision] = {}
        for a, b in spans([len(i) for i in items], self.max_body - 10):
            body = b'{"ids":[' + b",".join(items[a:b]) + b"]}"
            data = await self._post_batch(schema, wire.REVISIONS, body, a)
            out.update({i: (rev, bool(dead)) for i, (rev, dead) in data["revisions"].items()})
        return out

    async def purge(self, schema: CollectionSchema, before: datetime) -> int:
        """``POST /{c}/_purge``; not resent once it may have arrived (the count would lie)."""
        body = wire.dumps({"before": before})
        data = await self._call(schema, "POST", self._path(schema, "/" + wire.PURGE), body=body)
        return int(data["purged"])

    async def insert(self, schema: CollectionSchema, rows: Sequence[Row]) -> None:
        """``POST`` the rows as one JSON list (split only above ``max_body`` bytes)."""
        encoded = [wire.dumps(schema.to_stored(r) if schema.remapped else r) for r in rows]
        batch: list[bytes] = []
        size = 2
        for item in encoded:
            if batch and size + len(item) + 1 > self.max_body:
                await self._call(
                    schema, "POST", self._path(schema), body=b"[" + b",".join(batch) + b"]"
                )
                batch, size = [], 2
            batch.append(item)
            size += len(item) + 1
        if batch:
            await self._call(
                schema, "POST", self._path(schema), body=b"[" + b",".join(batch) + b"]"
            )

    async def get(self, schema: CollectionSchema, ids: Sequence[str]) -> list[Row]:
        """``GET /{collection}/{id}`` for one id, else ``GET ?where={"id": {"$in": ids}}``
        per chunk of ids (the server answers a single id through the store's get by key).
        """
        if len(ids) == 1 and wire.id_in_path(ids[0]):
            try:
                row = await self._call(
                    schema, "GET", self._path(schema, "/" + quote(ids[0], safe=""))
                )
            except wire.MissingEntity:
                return []
            return self._codec(schema).rows(self.name, [row])
        out: list[Row] = []
        for chunk in self._id_chunks(ids):
            params = wire.find_params({"id": {"$in": chunk}}, limit=len(chunk))
            data = await self._call(schema, "GET", self._path(schema), params=params)
            out.extend(self._codec(schema).rows(self.name, data))
        return out

    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        """``GET`` pages of at most ``page_size`` until the limit or the end is reached."""
        if query.limit == 0:
            return []
        where = self._where(schema, query.where)
        sort = wire.sort_param(query.sort, schema.stored if schema.remapped else None)
        codec = self._codec(schema)
        out: list[Row] = []
        skip, remaining = query.skip, query.limit
        while True:
            n = self.page_size if remaining is None else min(remaining, self.page_size)
            params = wire.find_params(where, sort, skip, n)
            try:
                data = await self._call(schema, "GET", self._path(schema), params=params)
            except QueryError as exc:
                cap = getattr(exc, "details", None)
                cap = cap.get("max_limit") if isinstance(cap, dict) else None
                if not isinstance(cap, int) or not 0 < cap < self.page_size:
                    raise
                self.page_size = cap  # the server pages smaller: follow it from now on
                continue
            rows = codec.rows(self.name, data)
            out.extend(rows)
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < n or remaining == 0:
                return out
            skip += len(rows)

    async def count(self, schema: CollectionSchema, where: Node | None) -> int:
        """``GET /{collection}/count?where=``."""
        params = wire.find_params(self._where(schema, where))
        data = await self._call(schema, "GET", self._path(schema, "/" + wire.COUNT), params=params)
        return int(data["count"])

    async def update(self, schema: CollectionSchema, changes: Sequence[tuple[str, Row]]) -> int:
        """One ``PATCH ?where={"id": {"$in": [...]}}`` per distinct change set."""
        groups: dict[bytes, list[str]] = {}
        for entity_id, change in changes:
            key = wire.dumps(schema.to_stored(change) if schema.remapped else change)
            groups.setdefault(key, []).append(entity_id)
        matched = 0
        for body, ids in groups.items():
            for chunk in self._id_chunks(ids):
                params = wire.find_params({"id": {"$in": chunk}})
                data = await self._call(schema, "PATCH", self._path(schema), params, body)
                matched += int(data["updated"])
        return matched

    async def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> int:
        """``DELETE ?where={"id": {"$in": ids}}`` per chunk of ids."""
        deleted = 0
        for chunk in self._id_chunks(ids):
            params = wire.find_params({"id": {"$in": chunk}})
            data = await self._call(schema, "DELETE", self._path(schema), params=params)
            deleted += int(data["deleted"])
        return deleted

    async def delete_where(self, schema: CollectionSchema, where: Node | None) -> int:
        """One ``DELETE ?where=``; without a query the server must allow empty queries."""
        params = wire.find_params(self._where(schema, where))
        data = await self._call(schema, "DELETE", self._path(schema), params=params)
        return int(data["deleted"])

    async def drop(self, schema: CollectionSchema) -> None:
        """Delete every entity, then every tombstone (``purge`` of all of them).

        The server's store keeps its collection; the server must allow empty deletes.
        """
        await self.delete_where(schema, None)
        await self.purge(schema, datetime.max.replace(tzinfo=UTC))
