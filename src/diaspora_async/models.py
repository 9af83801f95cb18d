"""Model declaration and the class-level coroutines (insert, find, update, ...).

User code starts here: ``class Article(orm.Model, sources=[...])`` compiles, once per
class, everything later calls need into a ``ModelMeta`` (field specs, the pydantic
validator, hooks, source names and per-source schemas). Class coroutines parse queries
up front (``query/parse.py``), pick the sources, and call adapters through
``ModelMeta.target``; entity-level writes go through ``ops/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, ClassVar, ParamSpec, Self, TypeVar, overload

import pydantic
from pydantic_core import CoreSchema
from typing_extensions import dataclass_transform

from .adapters.base import Row
from .entities import Entity, EntitySet
from .errors import ConfigError, QueryError
from .events import EVENTS, Hook
from .fields import field
from .meta import ModelMeta, attr_descriptor, own_fields
from .ops.destroy import destroy
from .ops.fanout import first_of
from .ops.persist import persist, policy_for
from .ops.sync import SyncReport, sync
from .query.ast import And, Query
from .query.keyset import after
from .query.parse import parse_options, parse_sort, parse_where
from .rows import building
from .shapes import Shape, core_schema_for, shape
from .sources import HasCatalog, SourceArg
from .state import set_attrs

__all__ = ["Model", "ModelMeta"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _dataclass_fields(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    shadow = dataclasses.make_dataclass(name, [("id", Any), *((n, Any) for n in fields)])
    return {f.name: f for f in dataclasses.fields(shadow)}


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class Model(Entity):
    """Base of every model; use ``orm.Model``, which is bound to one registry.

    Class keywords: ``sources`` (a name, a list, or ``{name: True | {attr: stored}}``;
    the first is the default), ``collection`` (default: the class name) and ``on_error``
    (the default fan-out policy). ``class Article(da.Model, registry=orm, ...)`` is the
    same as deriving from ``orm.Model``, in a form static type checkers accept as a base.
    """

    __diaspora__: ClassVar[HasCatalog]
    # A table of dataclass fields (``id`` and the model's), so tools that handle
    # dataclasses handle entities: FastAPI takes ``body: Article`` from the request body
    # (it does so for "complex" types only) and ``jsonable_encoder`` sends an entity
    # returned without a response model as its public fields. pydantic itself uses the
    # core schema below.
    __dataclass_fields__: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(
        cls,
        *,
        sources: Any = None,
        collection: str | None = None,
        on_error: str = "raise",
        abstract: bool = False,
        registry: HasCatalog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if registry is not None:
            cls.__diaspora__ = registry
        if abstract:
            return
        registry = getattr(cls, "__diaspora__", None)
        if registry is None:
            raise ConfigError(
                f"{cls.__name__}: derive models from orm.Model (or da.Model with registry=orm)"
            )
        parent = getattr(cls, "__meta__", None)
        fields = own_fields(cls, parent.fields if parent else {}, Model)
        if sources is None and parent is not None:
            sources = {s: parent.remaps.get(s, True) for s in parent.source_names}
        meta = ModelMeta(cls, registry, fields, sources, collection, on_error)
        for name, spec in fields.items():
            setattr(cls, name, attr_descriptor(spec))
        for event in EVENTS:
            fn = getattr(cls, event, None)
            if fn is not None:
                meta.add_hook(event, fn)
        cls.__meta__ = meta
        cls.__dataclass_fields__ = _dataclass_fields(cls.__name__, fields)
        registry.catalog.add_model(cls)

    # -- pydantic ----------------------------------------------------------------------
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: pydantic.GetCoreSchemaHandler
    ) -> CoreSchema:
        """A model class is a pydantic type (``response_model=Article``, ``body: Article``,
        ``list[Article]``): a dict validates into an ORPHAN entity, an entity serializes
        as its public fields plus ``id``."""
        return core_schema_for(cls, handler)  # type: ignore[no-any-return]

    @classmethod
    def schema_for(cls, kind: Shape) -> type[pydantic.BaseModel]:
        """A pydantic model of one shape of this model's JSON, for request and response
        bodies and OpenAPI documents.

        Args:
            kind: ``"read"`` (``id`` and every field, as an entity is sent), ``"create"``
                (``id`` optional, defaults filled in) or ``"patch"`` (every field
                optional; send ``body.model_dump(exclude_unset=True)`` as the changes).
        """
        return shape(cls, kind)

    # -- spawning ----------------------------------------------------------------------
    @overload
    @classmethod
    def spawn(cls: Callable[_P, _T], attrs: Mapping[str, Any] | None, /, **kwargs: Any) -> _T: ...
    @overload
    @classmethod
    def spawn(cls: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T: ...
    @classmethod  # type: ignore[misc]  # the overloads' ``cls`` is a callable, not a type
    def spawn(cls: Any, *args: Any, **kwargs: Any) -> Any:
        """Make a new entity, stored nowhere yet (ORPHAN). Defaults fill missing values.

        ``spawn({"title": "x"})``, ``spawn(title="x")`` or both; ``id`` may be given,
        otherwise a time-ordered id is generated. Type checkers check the keyword form
        against the model's fields (the model class is a ``dataclass_transform``).

        Raises:
            ValidationError: an attribute the model does not declare, or a bad id.
        """
        return cls._spawn(*args, **kwargs)

    @classmethod
    def _spawn(cls, attrs: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Self:
        data = ({**attrs, **kwargs} if kwargs else attrs) if attrs else kwargs
        return cls.__meta__.spawn(data)  # type: ignore[return-value]

    @classmethod
    def spawn_many(cls, items: Iterable[Mapping[str, Any]]) -> EntitySet[Self]:
        """Spawn one entity per dict, as an ``EntitySet``."""
        items = items if isinstance(items, list) else list(items)
        with building(len(items)):
            entities = cls.__meta__.spawn_many(items)
        return EntitySet(cls, entities)  # type: ignore[arg-type]

    @classmethod
    def on(cls, event: str, hook: Hook) -> Hook:
        """Add a lifecycle hook ``hook(entity, source)``; returns it (usable as decorator)."""
        cls.__meta__.add_hook(event, hook)
        return hook

    # -- writes ------------------------------------------------------------------------
    @classmethod
    async def insert(
        cls, attrs: Mapping[str, Any], *, source: SourceArg = None, skip_events: bool = False,
        on_error: str | None = None,
    ) -> Self:  # fmt: skip
        """Spawn and persist one entity."""
        return await cls._spawn(attrs).persist(source, skip_events=skip_events, on_error=on_error)

    @classmethod
    async def insert_many(
        cls, items: Iterable[Mapping[str, Any]], *, source: SourceArg = None,
        skip_events: bool = False, on_error: str | None = None,
    ) -> EntitySet[Self]:  # fmt: skip
        """Spawn and persist many entities: one batch per source."""
        return await cls.spawn_many(items).persist(
            source, skip_events=skip_events, on_error=on_error
        )

    @classmethod
    async def _load(
        cls, query: Any, source: SourceArg, limit: int | None, allow_empty: bool, what: str,
        on_error: str | None,
    ) -> tuple[list[str], list[Self]]:  # fmt: skip
        """The sources of a model-level write and the entities it applies to, read from
        the first of them (checks before any I/O)."""
        meta = cls.__meta__
        sources = meta.sources_for(source)
        where = meta.where(query, allow_empty, what)
        policy_for(meta, on_error)
        adapter, schema = await meta.target(sources[0])
        rows = await adapter.find(schema, Query(where, meta.default_sort, 0, limit))
        with building(len(rows)):
            return sources, meta.from_rows(rows, sources[0])  # type: ignore[return-value]

    @classmethod
    async def _update(
        cls, query: Any, changes: Mapping[str, Any], source: SourceArg, limit: int | None,
        allow_empty: bool, what: str, on_error: str | None,
    ) -> list[Self]:  # fmt: skip
        meta = cls.__meta__
        meta.where(query, allow_empty, what)
        cast = meta.validator.validate_changes(changes)
        if not cast:
            raise QueryError(f"{cls.__name__}.{what}: no changes given")
        sources, entities = await cls._load(query, source, limit, allow_empty, what, on_error)
        if not entities:
            return []
        for e in entities:
            set_attrs(e, {**e._attrs, **meta.copy(cast)})
        # The write of a loaded-and-changed entity: one new revision, every source
        # upserted under the guard, the call's policy applied.
        await persist(meta, entities, sources, True, on_error, validated=True)
        return entities

    @classmethod
    async def update(
        cls, query: Any, changes: Mapping[str, Any], *, source: SourceArg = None,
        allow_empty_query: bool = False, on_error: str | None = None,
    ) -> Self | None:  # fmt: skip
        """Change the first matching entity (by id order); returns it, or None.

        With several sources, the entity is chosen in the first and written to all
        (revision-guarded, under the ``on_error`` policy like any write).
        """
        done = await cls._update(query, changes, source, 1, allow_empty_query, "update", on_error)
        return done[0] if done else None

    @classmethod
    async def update_many(
        cls, query: Any, changes: Mapping[str, Any], *, source: SourceArg = None,
        allow_empty_query: bool = False, on_error: str | None = None,
    ) -> EntitySet[Self]:  # fmt: skip
        """Change every matching entity; returns them (one batched write per source)."""
        done = await cls._update(
            query, changes, source, None, allow_empty_query, "update_many", on_error
        )
        return EntitySet(cls, done)

    @classmethod
    async def _delete(
        cls, query: Any, source: SourceArg, limit: int | None, allow_empty: bool, what: str,
        on_error: str | None,
    ) -> int:  # fmt: skip
        sources, entities = await cls._load(query, source, limit, allow_empty, what, on_error)
        if not entities:
            return 0
        return await destroy(cls.__meta__, entities, sources, True, on_error)

    @classmethod
    async def delete(
        cls, query: Any, *, source: SourceArg = None, allow_empty_query: bool = False,
        on_error: str | None = None,
    ) -> int:  # fmt: skip
        """Delete the first matching entity (by id order); returns 0 or 1."""
        return await cls._delete(query, source, 1, allow_empty_query, "delete", on_error)

    @classmethod
    async def delete_many(
        cls, query: Any, *, source: SourceArg = None, allow_empty_query: bool = False,
        on_error: str | None = None,
    ) -> int:  # fmt: skip
        """Delete every matching entity (tombstones in every named source); returns how
        many the first source deleted."""
        return await cls._delete(query, source, None, allow_empty_query, "delete_many", on_error)

    # -- reads -------------------------------------------------------------------------
    @classmethod
    async def find(
        cls, query_or_id: Any, *, source: SourceArg = None, sort: Any = None
    ) -> Self | None:
        """The first entity matching a query (or with this id), or None.

        With a list of sources, the first source that has it answers (fallback chain).
        """
        meta = cls.__meta__
        sources = meta.sources_for(source)
        if query_or_id is not None and not isinstance(query_or_id, Mapping):
            if not isinstance(query_or_id, str) or not query_or_id:
                raise QueryError(f"an id must be a non-empty string, got {query_or_id!r}")
            ids = [query_or_id]
            if len(sources) == 1:  # the hot path: one source, by id
                adapter, schema = await meta.target(sources[0])
                rows = await adapter.get(schema, ids)
                return meta.from_row(rows[0], sources[0]) if rows else None  # type: ignore[return-value]

            async def read(name: str) -> list[Row]:
                adapter, schema = await meta.target(name)
                return await adapter.get(schema, ids)
        else:
            where = meta.where(query_or_id)
            query = Query(where, parse_sort(sort, meta.fields), 0, 1)

            async def read(name: str) -> list[Row]:
                adapter, schema = await meta.target(name)
                return await adapter.find(schema, query)

        name, rows = await first_of(sources, read, bool)
        return meta.from_row(rows[0], name) if rows else None  # type: ignore[return-value]

    @classmethod
    async def find_many(
        cls, query: Mapping[str, Any] | None = None, *, skip: Any = None, limit: Any = None,
        page: Any = None, sort: Any = None, source: SourceArg = None,
    ) -> EntitySet[Self]:  # fmt: skip
        """Entities matching ``query`` in order (default: ascending id), sliced.

        Raises:
            QueryError: before any I/O, for a bad query or options.
        """
        meta = cls.__meta__
        sources = meta.sources_for(source)
        if query is not None and not isinstance(query, Mapping):
            raise QueryError(f"find_many takes a query dict, got {type(query).__name__}")
        where = parse_where(query, meta.fields, cls.__name__)
        order, skip_n, limit_n = parse_options(
            meta.fields, skip=skip, limit=limit, page=page, sort=sort
        )
        parsed = Query(where, order, skip_n, limit_n)

        async def read(name: str) -> list[Row]:
            adapter, schema = await meta.target(name)
            return await adapter.find(schema, parsed)

        name, rows = await first_of(sources, read, bool)
        with building(len(rows)):
            return EntitySet(cls, meta.from_rows(rows, name))  # type: ignore[arg-type]

    @classmethod
    async def count(
        cls, query: Mapping[str, Any] | None = None, *, source: SourceArg = None
    ) -> int:
        """How many entities match ``query`` (None: all)."""
        meta = cls.__meta__
        if query is not None and not isinstance(query, Mapping):
            raise QueryError(f"count takes a query dict, got {type(query).__name__}")
        where = parse_where(query, meta.fields, cls.__name__)

        async def read(name: str) -> int:
            adapter, schema = await meta.target(name)
            return await adapter.count(schema, where)

        return (await first_of(meta.sources_for(source), read, lambda _: True))[1]

    @classmethod
    async def iterate(
        cls, query: Mapping[str, Any] | None = None, *, batch_size: int = 1000,
        sort: Any = None, source: SourceArg = None,
    ) -> AsyncIterator[Self]:  # fmt: skip
        """Stream matching entities, reading ``batch_size`` at a time from one source.

        Each batch after the first asks for the rows after the previous batch's last
        one in the sort order (keyset paging), so every batch costs the same however
        far the stream is, and rows inserted or deleted meanwhile shift nothing: an
        entity present throughout is yielded exactly once. Stores without
        ``Capabilities.keyset_paging`` (redis, http) page by offset. The default
        ``batch_size`` of 1000 was measured (``bench/bench_iterate.py``, SQLite): 100
        costs about 40% of the throughput in round trips, 2000 gains nothing more.
        """
        meta = cls.__meta__
        name = meta.sources_for(source)[0]
        where = parse_where(query, meta.fields, cls.__name__)
        order, _, size = parse_options(meta.fields, limit=batch_size, sort=sort)
        if not size:
            raise QueryError("batch_size must be at least 1")
        adapter, schema = await meta.target(name)
        keyset = adapter.capabilities.keyset_paging
        page, skip = Query(where, order, 0, size), 0
        while True:
            rows = await adapter.find(schema, page)
            full = len(rows) == size
            if full and keyset:  # before from_row, which takes the rows over
                beyond = after(order, rows[-1])
                page = Query(beyond if where is None else And((where, beyond)), order, 0, size)
            for row in rows:
                yield meta.from_row(row, name)  # type: ignore[misc]
            if not full:
                return
            if not keyset:
                skip += size
                page = Query(where, order, skip, size)

    @classmethod
    async def pending(cls, source: str | None = None) -> list[dict[str, Any]]:
        """This model's writes not yet delivered (``on_error="queue"``, ``defer=``):
        per intent ``entity_id``, ``source``, ``operation`` ("persist"/"destroy"),
        ``revision``, ``attempts``, ``last_error``, ``dead`` and ``created``, oldest
        first; ``source`` keeps one source's only."""
        meta = cls.__meta__
        if source is not None:
            meta.sources_for(source)  # a source of this model, or UnknownDataSource
        rows = await meta.catalog.outbox.pending(meta.name, source)
        return [
            {"entity_id": r["entity_id"], "source": r["source"], "operation": r["op"],
             "revision": r["revision"], "attempts": r["attempts"] or 0,
             "last_error": r["last_error"], "dead": bool(r["dead"]), "created": r["created"]}
            for r in rows
        ]  # fmt: skip

    # -- sync --------------------------------------------------------------------------
    @classmethod
    async def sync(
        cls, from_source: str, to_source: str, query: Mapping[str, Any] | None = None, *,
        batch_size: int = 500, progress: Callable[[SyncReport], Any] | None = None,
    ) -> SyncReport:  # fmt: skip
        """Copy entities missing or changed in ``to_source`` from ``from_source``.

        Reads ``from_source`` in id order, ``batch_size`` at a time; ``progress`` (if
        given) is called with the running report after each batch.
        """
        return await sync(cls.__meta__, from_source, to_source, query, batch_size, progress)
