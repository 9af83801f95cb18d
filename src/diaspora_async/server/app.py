"""``create_app``: an ASGI (Starlette) app that serves models over the REST protocol.

The server end of ``http adapter -> HTTP -> this app -> Model API -> the server's stores``.
Each write is turned into one call of the ordinary Model API (``insert_many``,
``update_many``, ``delete_many``...), so validation, lifecycle events and fan-out are
exactly those of in-process callers. Reads parse the query with the same parser and read
the stores' rows as the Model API does (fallback chain included) but answer the rows
themselves, because rows carry the copy's revision (``_rev``) and entities do not. The
store routes (``_write``, ``_revisions``, ``_purge``: ``conditional.py``) call the
server's own source's adapter, the contract of DESIGN.md 6.1 over HTTP. Routes, value
encoding and the error mapping live in ``diaspora_async.wire``, which the ``http`` adapter shares.
Every failure is answered with a JSON error body; store errors never echo their message
(it may hold a URL with a password) and nothing ever returns a traceback.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from .. import wire
from ..adapters.base import REV, Adapter, CollectionSchema, Row
from ..errors import ConfigError, IntegrityError, QueryError, ValidationError
from ..meta import ModelMeta
from ..models import Model
from ..ops.fanout import first_of
from ..query.ast import Query
from ..query.parse import parse_options, parse_where
from ..sources import ALL
from .conditional import decode_ids, decode_purge, decode_write
from .openapi import build_openapi

if TYPE_CHECKING:
    from ..registry import Diaspora

__all__ = ["Auth", "create_app"]

logger = logging.getLogger("diaspora_async.server")

Auth = Callable[[Request, str, "type[Model] | None"], Awaitable[object] | object]
"""``auth(request, action, model)``: action is ``read``/``create``/``update``/``delete``,
``write`` (the conditional write: creates, replaces and deletes) or ``purge``; raise
``Unauthorized``/``Forbidden`` (or return ``False``) to refuse."""

Handler = Callable[[Request, type[Model]], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

_FIND_PARAMS = frozenset({"where", "skip", "limit", "page", "sort"})
_WHERE_PARAM = frozenset({"where"})


def _json(value: Any, status: int = 200) -> Response:
    return Response(wire.dumps(value), status, media_type=wire.JSON_TYPE)


def _error(exc: BaseException) -> Response:
    status, body = wire.encode_error(exc)
    if status >= 500:
        # The client gets a generic message; the operator gets the real one.
        logger.error("request failed: %s: %s", type(exc).__name__, exc, exc_info=status == 500)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(wire.dumps(body), status, headers=headers, media_type=wire.JSON_TYPE)


def _minimal(request: Request) -> bool:
    # RFC 7240: the http adapter only needs counts, not the entities echoed back.
    return "return=minimal" in request.headers.get("prefer", "")


def _entity(entity: Model) -> dict[str, Any]:
    """An entity as JSON; with ``_rev`` once the Model API exposes entity revisions.

    Reads answer rows (with ``_rev``); the entities of write answers carry no revision
    today, and a made-up null would claim the stored copy predates revisions.
    """
    data = entity._stored()  # the stored form: what the http adapter writes and reads
    if isinstance(getattr(type(entity), "revision", None), property):  # DESIGN 6.1 e.revision
        data[REV] = entity.revision
    return data


def _entities(entities: Iterable[Model]) -> list[dict[str, Any]]:
    return [_entity(e) for e in entities]


def _no_entity(model: type[Model], entity_id: str) -> wire.NotFound:
    # ``details.id`` tells "no such entity" apart from "no such collection".
    return wire.NotFound(f"no {model.__name__} with id {entity_id!r}", {"id": entity_id})


def _check_id(entity_id: str) -> str:
    # Starlette has already percent-decoded the path and its ``{id}`` never holds "/":
    # what is left to refuse is dot segments and control characters.
    if entity_id in (".", "..") or "\\" in entity_id or any(ord(c) < 32 for c in entity_id):
        raise wire.HTTPError(f"invalid id {entity_id!r}")
    return entity_id


class _Service:
    """The request handlers of one app, with its options."""

    def __init__(
        self,
        orm: Diaspora,
        models: Iterable[type[Model] | str] | None,
        max_limit: int,
        auth: Auth | None,
        source: Any,
        allow_empty_query: bool,
        max_body: int,
        title: str,
        prefix: str,
    ) -> None:
        self.orm = orm
        self.only = (
            None if models is None else [m if isinstance(m, str) else m.__name__ for m in models]
        )
        self.max_limit = max_limit
        self.auth = auth
        self.source = source
        self.write_source = ALL if source is None else source  # DESIGN.md 9: no stale cache
        self.allow_empty = allow_empty_query
        self.max_body = max_body
        self.title = title
        self.prefix = prefix
        self._by_collection: dict[str, type[Model]] = {}
        self._known = -1
        self._openapi: tuple[tuple[str, ...], bytes] | None = None

    # -- models: looked up at request time, so models declared after create_app count --
    def served(self) -> dict[str, type[Model]]:
        """Collection -> model, rebuilt when the registry gained models."""
        if self._known != len(self.orm.models):
            names = self.only if self.only is not None else list(self.orm.models)
            by: dict[str, type[Model]] = {}
            for name in names:
                model = self.orm.models.get(name)
                if model is not None:
                    by.setdefault(model.__meta__.collection, model)
            self._by_collection, self._known = by, len(self.orm.models)
        return self._by_collection

    def model(self, collection: str) -> type[Model]:
        model = self.served().get(collection)
        if model is None:
            raise wire.NotFound(f"no collection {collection!r}")
        return model

    async def authorize(self, request: Request, action: str, model: type[Model] | None) -> None:
        if self.auth is None:
            return
        outcome = self.auth(request, action, model)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome is False:
            raise wire.Forbidden(f"not allowed to {action}")

    async def store(self, meta: ModelMeta) -> tuple[Adapter, CollectionSchema]:
        """The adapter and schema the store routes use: the first of the server's sources
        for the model (``create_app(source=...)``, else the model's first source)."""
        return await meta.target(meta.sources_for(self.source)[0])

    async def free_ids(self, model: type[Model], ids: list[str]) -> None:
        """409 before any write when an id of a ``POST`` is taken (a live entity): a
        create never overwrites, and a batch with one taken id writes nothing."""
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise IntegrityError("server", f"duplicate id {dup!r} in the request")
        adapter, schema = await self.store(model.__meta__)
        held = await adapter.revisions(schema, ids)
        taken = [i for i in ids if i in held and not held[i][1]]
        if taken:
            raise IntegrityError(adapter.name, f"duplicate id {taken[0]!r} in {schema.collection}")

    async def rows(
        self, meta: ModelMeta, read: Callable[[Adapter, CollectionSchema], Awaitable[list[Row]]]
    ) -> list[Row]:
        """Rows read as the Model API reads them: through the server's sources in order,
        the first that has any answering (a single source: that one)."""
        sources = meta.sources_for(self.source)
        if len(sources) == 1:
            adapter, schema = await meta.target(sources[0])
            return await read(adapter, schema)

        async def one(name: str) -> list[Row]:
            adapter, schema = await meta.target(name)
            return await read(adapter, schema)

        return (await first_of(sources, one, bool))[1]

    # -- request parts -------------------------------------------------------------------
    async def body(self, request: Request) -> Any:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            raise self.too_large()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise self.too_large()
            chunks.append(chunk)
        if not size:
            raise wire.BadJSON("a JSON body is required")
        try:
            return wire.loads(b"".join(chunks))
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise wire.BadJSON(f"the body is not valid JSON: {exc}") from None

    def too_large(self) -> wire.PayloadTooLarge:
        # ``details.max_body`` lets the http adapter split its batches to fit from then on.
        message = f"the body is larger than {self.max_body} bytes"
        return wire.PayloadTooLarge(message, {"max_body": self.max_body})

    def params(self, request: Request, allowed: frozenset[str]) -> dict[str, str]:
        params = request.query_params
        unknown = sorted(set(params) - allowed)
        if unknown:
            # A typo such as ``wher=`` must not turn into an empty query.
            raise QueryError(
                f"unknown parameter(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
            )
        if len(params.multi_items()) != len(params):
            # ``?where=a&where=b``: refuse rather than guess which one was meant.
            raise QueryError("a parameter is repeated")
        return dict(params)

    def where(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        raw = params.get("where")
        if raw is None or raw == "":
            return None
        try:
            where = wire.loads(raw)
        except ValueError as exc:
            raise QueryError(f"where is not valid JSON: {exc}") from None
        if not isinstance(where, dict):
            raise QueryError(f"where must be a JSON object, got {type(where).__name__}")
        return where or None

    def where_for_write(self, params: Mapping[str, str], what: str) -> dict[str, Any]:
        where = self.where(params)
        if where is None and not self.allow_empty:
            raise QueryError(
                f"{what} needs a non-empty where; this server refuses to {what} everything"
            )
        return where or {}

    # -- handlers ----------------------------------------------------------------------
    async def find_many(self, request: Request, model: type[Model]) -> Response:
        params = self.params(request, _FIND_PARAMS)
        where = self.where(params)
        sort = params.get("sort") or None
        sort_list = sort.split(",") if sort else None
        meta = model.__meta__
        fields = meta.fields
        order, skip, limit = parse_options(
            fields,
            skip=params.get("skip"),
            limit=params.get("limit"),
            page=params.get("page"),
            sort=sort_list,
        )
        if limit is None:
            limit = self.max_limit
        elif limit > self.max_limit:
            error = QueryError(f"limit {limit} is above this server's maximum of {self.max_limit}")
            error.details = {"max_limit": self.max_limit}  # type: ignore[attr-defined]
            raise error
        parsed = parse_where(where, fields, model.__name__)
        if limit == 0:  # a cheap probe (the http adapter's schema check): validate only
            return _json([])
        query = Query(parsed, order, skip, limit)
        return _json(await self.rows(meta, lambda a, s: a.find(s, query)))

    async def count(self, request: Request, model: type[Model]) -> Response:
        where = self.where(self.params(request, _WHERE_PARAM))
        return _json({"count": await model.count(where, source=self.source)})

    async def get_one(self, request: Request, model: type[Model]) -> Response:
        self.params(request, frozenset())
        entity_id = _check_id(request.path_params["id"])
        ids = [entity_id]
        found = await self.rows(model.__meta__, lambda a, s: a.get(s, ids))
        if not found:
            raise _no_entity(model, entity_id)
        return _json(found[0])

    async def insert(self, request: Request, model: type[Model]) -> Response:
        self.params(request, frozenset())
        body = await self.body(request)
        items = body if isinstance(body, list) else [body]
        bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
        if bad or not items:
            where = [(f"[{i}]" if isinstance(body, list) else "(body)") for i in bad]
            raise ValidationError(
                model.__name__,
                [(w, "must be a JSON object") for w in where]
                or [("(body)", "must not be an empty list")],
            )
        created = model.spawn_many(items)
        await self.free_ids(model, created.ids)
        # POST creates: check=True refuses an id taken meanwhile (ConflictError -> 409).
        await created.persist(self.write_source, check=True)
        if _minimal(request):
            return _json({"created": len(created)}, 201)
        out = _entities(created)
        return _json(out if isinstance(body, list) else out[0], 201)

    async def update_one(self, request: Request, model: type[Model]) -> Response:
        self.params(request, frozenset())
        entity_id = _check_id(request.path_params["id"])
        changes = await self.body(request)
        updated = await model.update(entity_id, changes, source=self.write_source)
        if updated is None:
            raise _no_entity(model, entity_id)
        return _json(_entity(updated))

    async def update_many(self, request: Request, model: type[Model]) -> Response:
        where = self.where_for_write(self.params(request, _WHERE_PARAM), "update")
        changes = await self.body(request)
        updated = await model.update_many(
            where, changes, source=self.write_source, allow_empty_query=self.allow_empty
        )
        if _minimal(request):
            return _json({"updated": len(updated)})
        return _json(_entities(updated))

    async def delete_one(self, request: Request, model: type[Model]) -> Response:
        self.params(request, frozenset())
        entity_id = _check_id(request.path_params["id"])
        if not await model.delete(entity_id, source=self.write_source):
            raise _no_entity(model, entity_id)
        return _json({"deleted": 1})

    async def delete_many(self, request: Request, model: type[Model]) -> Response:
        where = self.where_for_write(self.params(request, _WHERE_PARAM), "delete")
        every = self.allow_empty
        n = await model.delete_many(where, source=self.write_source, allow_empty_query=every)
        return _json({"deleted": n})

    async def write(self, request: Request, model: type[Model]) -> Response:
        self.params(request, frozenset())
        meta = model.__meta__
        rows, expect = decode_write(meta, await self.body(request))  # 422 before any write
        if not rows:
            return _json({"refused": []})
        adapter, schema = await self.store(meta)
        return _json({"refused": await adapter.write(schema, rows, expect)})

    async def revisions(self, request: Request, model: type[Model]) -> Response:
        self.params(request, frozenset())
        ids = decode_ids(model.__name__, await self.body(request))
        adapter, schema = await self.store(model.__meta__)
        held = await adapter.revisions(schema, ids) if ids else {}
        return _json({"revisions": {i: [rev, deleted] for i, (rev, deleted) in held.items()}})

    async def purge(self, request: Request, model: type[Model]) -> Response:
        self.params(request, frozenset())
        before = decode_purge(model.__name__, await self.body(request))
        adapter, schema = await self.store(model.__meta__)
        return _json({"purged": await adapter.purge(schema, before)})

    async def openapi(self, request: Request) -> Response:
        try:
            await self.authorize(request, "read", None)
            served = self.served()
            key = tuple(sorted(served))
            if self._openapi is None or self._openapi[0] != key:
                doc = build_openapi(
                    served, title=self.title, prefix=self.prefix, max_limit=self.max_limit
                )
                self._openapi = (key, wire.dumps(doc))
            return Response(self._openapi[1], media_type=wire.JSON_TYPE)
        except Exception as exc:
            return _error(exc)

    # -- plumbing ----------------------------------------------------------------------
    def endpoint(self, **methods: tuple[str, Handler]) -> Endpoint:
        """One route's endpoint: pick the handler by method, resolve the model, authorize,
        and turn any error into an error body. ``methods`` maps METHOD to (action, handler).
        """

        async def run(request: Request) -> Response:
            action, handler = methods[request.method if request.method != "HEAD" else "GET"]
            try:
                model = self.model(request.path_params["collection"])
                await self.authorize(request, action, model)
                return await handler(request, model)
            except RecursionError:
                # JSON nested thousands deep: the client's fault, not a server failure.
                return _error(QueryError("the query or body is nested too deeply"))
            except Exception as exc:
                return _error(exc)

        return run


async def _http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's router raises these for unknown routes (404) and wrong methods (405).
    assert isinstance(exc, HTTPException)
    error: wire.HTTPError
    if exc.status_code == 404:
        error = wire.NotFound(f"no route {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = wire.MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        error = wire.HTTPError(str(exc.detail))
        error.status = exc.status_code
    response = _error(error)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def create_app(
    orm: Diaspora,
    models: Iterable[type[Model] | str] | None = None,
    prefix: str = "",
    max_limit: int = 1000,
    auth: Auth | None = None,
    *,
    source: Any = None,
    allow_empty_query: bool = False,
    max_body: int = 1_000_000,
    title: str = "diaspora_async REST API",
) -> Starlette:
    """Build an ASGI app that serves ``orm``'s models over the REST protocol (``..wire``).

    Mount it in FastAPI/Starlette (``app.mount("/api", create_app(orm))``) or run it alone.
    The app does not open or close ``orm``: its owner does (e.g. in a lifespan).

    Args:
        orm: the registry whose models are served.
        models: model classes or names to serve (default: every model of ``orm``, looked
            up at request time, so models declared later are served too).
        prefix: a path prefix for every route, e.g. ``"/v1"``.
        max_limit: the largest ``limit`` a request may ask for (above it: 400); also the
            page size when a request gives no ``limit``.
        auth: ``auth(request, action, model)``, sync or async, called before every
            request with action ``read``/``create``/``update``/``delete``, ``write``
            (``POST /{c}/_write``) or ``purge`` (``POST /{c}/_purge``); model None for
            ``/openapi.json``; raise ``Unauthorized`` (401) or ``Forbidden`` (403), or
            return ``False`` (403), to refuse.
        source: the ``source=`` of every Model call (a list: reads fall back along it);
            default: reads from each model's first source, writes to all of its sources
            (``da.ALL``, the model's ``on_error`` policy): no REST write leaves a cache stale.
            The store routes (``_write``, ``_revisions``, ``_purge``) use its first.
        allow_empty_query: allow ``PATCH``/``DELETE`` without ``where`` (every entity).
        max_body: the largest request body in bytes (above it: 413).
        title: the OpenAPI document's title.

    Returns:
        A Starlette application.
    """
    if not isinstance(max_limit, int) or max_limit < 1:
        raise ConfigError(f"max_limit must be an integer >= 1, got {max_limit!r}")
    if not isinstance(max_body, int) or max_body < 1:
        raise ConfigError(f"max_body must be an integer >= 1, got {max_body!r}")
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    svc = _Service(orm, models, max_limit, auth, source, allow_empty_query, max_body, title, prefix)
    ep = svc.endpoint
    one = ep(
        GET=("read", svc.get_one),
        PATCH=("update", svc.update_one),
        DELETE=("delete", svc.delete_one),
    )
    many = ep(
        GET=("read", svc.find_many),
        POST=("create", svc.insert),
        PATCH=("update", svc.update_many),
        DELETE=("delete", svc.delete_many),
    )
    store_routes = (
        (wire.WRITE, "write", svc.write),
        (wire.REVISIONS, "read", svc.revisions),
        (wire.PURGE, "purge", svc.purge),
    )
    routes: list[BaseRoute] = [
        Route("/openapi.json", svc.openapi, methods=["GET"]),
        Route("/{collection}/" + wire.COUNT, ep(GET=("read", svc.count)), methods=["GET"]),
        # POST only, which the id route below never takes: no entity id is shadowed.
        *(
            Route(f"/{{collection}}/{path}", ep(POST=(action, handler)), methods=["POST"])
            for path, action, handler in store_routes
        ),
        Route("/{collection}/{id}", one, methods=["GET", "PATCH", "DELETE"]),
        Route("/{collection}", many, methods=["GET", "POST", "PATCH", "DELETE"]),
    ]
    if prefix:
        routes = [Mount(prefix, routes=routes)]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_exception})
