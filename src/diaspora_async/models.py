"""Model declaration and the class-level coroutines (insert, find, update, ...).

User code starts here: ``class Article(orm.Model, sources=[...])`` compiles, once per
class, everything later calls need into a ``ModelMeta`` (field specs, the pydantic
validator, hooks, source names and per-source schemas). Class coroutines parse queries
up front (``query/parse.py``), pick the sources, and call adapters through
``ModelMeta.target``; entity-level writes go through ``writes.py``.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from .adapters.base import Adapter, CollectionSchema, Row
from .entities import Entity, EntitySet
from .errors import ConfigError, QueryError, UnknownDataSource, ValidationError
from .events import EVENTS, Hook, check_event
from .fanout import ALL, check_policy, fan_out, first_of
from .fields import MISSING, FieldSpec, ModelValidator, build_field
from .query.ast import Equal, Node, Query
from .query.parse import parse_options, parse_sort, parse_where
from .writes import snapshot

if TYPE_CHECKING:
    from .registry import Diaspora

__all__ = ["Model", "ModelMeta"]

_PERSIST_HOOKS = frozenset(EVENTS)


class _Attr:
    """Descriptor giving ``entity.name`` access to one attribute."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Entity | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj._attrs.get(self.name)

    def __set__(self, obj: Entity, value: Any) -> None:
        obj._attrs[self.name] = value


class ModelMeta:
    """Everything compiled once per model class; shared by all its calls."""

    def __init__(
        self,
        cls: type[Model],
        registry: Diaspora,
        fields: dict[str, FieldSpec],
        sources: Any,
        collection: str | None,
        on_error: str,
    ) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.registry = registry
        self.fields = fields
        self.validator = ModelValidator(self.name, fields)
        self.containers = any(f.kind in ("list", "dict", "any") for f in fields.values())
        self.collection = collection or self.name
        self.on_error = check_policy(on_error)
        self.source_names, self.remaps = self._parse_sources(sources)
        self._single = {s: [s] for s in self.source_names}
        self._hooks: dict[str, tuple[Hook, ...]] = {}
        self.default_sort = parse_sort(None, fields)
        self._defaults = list(fields.items())

    def _parse_sources(self, sources: Any) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
        if sources is None:
            return (), {}
        if isinstance(sources, str):
            return (sources,), {}
        if isinstance(sources, Mapping):
            remaps: dict[str, dict[str, str]] = {}
            for source, spec in sources.items():
                if spec is True or spec is None:
                    continue
                if not isinstance(spec, Mapping):
                    raise ConfigError(f"{self.name}: sources[{source!r}] must be True or a dict")
                self._check_remap(source, spec)
                remaps[source] = dict(spec)
            return tuple(sources), remaps
        if isinstance(sources, list | tuple) and all(isinstance(s, str) for s in sources):
            return tuple(dict.fromkeys(sources)), {}
        raise ConfigError(f"{self.name}: sources must be a name, a list or a dict")

    def _check_remap(self, source: str, spec: Mapping[str, Any]) -> None:
        for attr, stored in spec.items():
            if attr not in self.fields:
                raise ConfigError(f"{self.name}: remap for {source!r} names unknown field {attr!r}")
            if not isinstance(stored, str) or not stored or stored == "id":
                raise ConfigError(f"{self.name}: bad stored name {stored!r} for {attr!r}")
        targets = [spec.get(n, n) for n in self.fields]
        if len(set(targets)) != len(targets):
            raise ConfigError(f"{self.name}: remap for {source!r} maps two fields to one name")

    # -- hooks -------------------------------------------------------------------------
    def hooks(self, name: str) -> tuple[Hook, ...]:
        """The hooks registered for one event, in order."""
        return self._hooks.get(name, ())

    def add_hook(self, name: str, hook: Hook) -> None:
        """Append a hook for ``name`` (checked against the event list)."""
        check_event(name)
        if not callable(hook):
            raise ConfigError(f"{self.name}: hook for {name!r} is not callable")
        self._hooks[name] = (*self._hooks.get(name, ()), hook)

    @property
    def has_hooks(self) -> bool:
        """Whether any lifecycle hook is registered (skips event work when not)."""
        return bool(self._hooks)

    # -- sources -----------------------------------------------------------------------
    def sources_for(self, source: Any) -> list[str]:
        """Resolve a ``source`` argument (None, name, list, ``ALL``) to source names."""
        if source is None:
            if not self.source_names:
                raise ConfigError(f"model {self.name} declares no data source")
            return self._single[self.source_names[0]]
        if isinstance(source, str):
            single = self._single.get(source)
            if single is None:
                raise self._unknown(source)
            return single
        if source is ALL:
            return list(self.source_names)
        if isinstance(source, list | tuple) and source:
            names = list(dict.fromkeys(source))
            for name in names:
                if name not in self._single:
                    raise self._unknown(name)
            return names
        raise ConfigError(f"source must be a name, a non-empty list or da.ALL, got {source!r}")

    def _unknown(self, source: Any) -> UnknownDataSource:
        declared = ", ".join(self.source_names) or "none"
        return UnknownDataSource(
            f"model {self.name} does not use data source {source!r} (its sources: {declared})"
        )

    def schema_for(self, source: str) -> CollectionSchema:
        """The collection schema this model has in ``source``."""
        return CollectionSchema(
            self.name, self.collection, self.fields, self.remaps.get(source, {})
        )

    async def target(self, source: str) -> tuple[Adapter, CollectionSchema]:
        """The adapter and schema for ``source``, ensuring the schema on first use."""
        ds = self.registry._sources.get(source)
        if ds is None:
            raise UnknownDataSource(
                f"model {self.name} uses data source {source!r}, which the registry does "
                f"not have (declared: {', '.join(self.registry._sources) or 'none'})"
            )
        schema = ds._schemas.get(self.name)
        if schema is None:
            schema = await ds.ensure(self.schema_for(source))
        return ds.adapter, schema

    # -- rows and entities -------------------------------------------------------------
    def row_to_attrs(self, row: Row) -> dict[str, Any]:
        """Attributes from a stored row; fields the row lacks read as None."""
        return {n: row.get(n) for n in self.fields}

    def from_row(self, row: Row, source: str) -> Entity:
        """Build an entity confirmed in ``source`` from a stored row."""
        e = self.cls.__new__(self.cls)
        attrs = self.row_to_attrs(row)
        object.__setattr__(e, "_id", row["id"])
        object.__setattr__(e, "_attrs", attrs)
        object.__setattr__(e, "_confirmed", {source: snapshot(attrs, self.containers)})
        object.__setattr__(e, "_syncing", {})
        object.__setattr__(e, "_last_source", source)
        return e

    def where(self, query: Any, allow_empty: bool = True, what: str = "") -> Node | None:
        """Parse a query or an id; an empty query needs ``allow_empty``."""
        if query is not None and not isinstance(query, Mapping):
            if not isinstance(query, str) or not query:
                raise QueryError(f"an id must be a non-empty string, got {query!r}")
            return Equal("id", query, "str")
        where = parse_where(query, self.fields, self.name)
        if where is None and not allow_empty:
            raise QueryError(
                f"{self.name}.{what} with an empty query would touch every entity; "
                "pass allow_empty_query=True to mean it"
            )
        return where


def _own_fields(cls: type, parent: Mapping[str, FieldSpec]) -> dict[str, FieldSpec]:
    fields = dict(parent)
    # Own annotations only; a parent model's fields come in through ``parent``.
    raw = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module else {}
    localns = dict(vars(cls))
    # The frame running the class statement: its locals resolve names in string
    # annotations of classes declared inside functions (common in tests).
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "diaspora_async."
    ):
        frame = frame.f_back
    globalns.update(frame.f_locals)
    for name, annotation in raw.items():
        if name.startswith("_"):
            continue
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, globalns, localns)
            except Exception as exc:
                raise ConfigError(
                    f"{cls.__name__}.{name}: cannot resolve {annotation!r}: {exc}"
                ) from None
        if typing.get_origin(annotation) is ClassVar or annotation is ClassVar:
            continue
        if name == "id" or hasattr(Model, name):
            raise ConfigError(f"{cls.__name__}: {name!r} is reserved and cannot be a field")
        value = cls.__dict__.get(name, MISSING)
        fields[name] = build_field(name, annotation, value)
    return fields


class Model(Entity):
    """Base of every model; use ``orm.Model``, which is bound to one registry.

    Class keywords: ``sources`` (a name, a list, or ``{name: True | {attr: stored}}``;
    the first is the default), ``collection`` (default: the class name) and ``on_error``
    (the default fan-out policy).
    """

    __slots__ = ()
    __diaspora__: ClassVar[Diaspora]

    def __init_subclass__(
        cls,
        *,
        sources: Any = None,
        collection: str | None = None,
        on_error: str = "raise",
        abstract: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        registry = getattr(cls, "__diaspora__", None)
        if registry is None:
            raise ConfigError(f"{cls.__name__}: derive models from orm.Model, not da.Model")
        parent = getattr(cls, "__meta__", None)
        fields = _own_fields(cls, parent.fields if parent else {})
        if sources is None and parent is not None:
            sources = {s: parent.remaps.get(s, True) for s in parent.source_names}
        meta = ModelMeta(cls, registry, fields, sources, collection, on_error)
        for name in fields:
            setattr(cls, name, _Attr(name))
        for event in EVENTS:
            fn = getattr(cls, event, None)
            if fn is not None:
                meta.add_hook(event, fn)
        cls.__meta__ = meta
        registry._register_model(cls)

    # -- spawning ----------------------------------------------------------------------
    @classmethod
    def spawn(cls, attrs: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Self:
        """Make a new entity, stored nowhere yet (ORPHAN). Defaults fill missing values.

        ``id`` may be given; otherwise a time-ordered id is generated.
        """
        meta = cls.__meta__
        data = {**attrs, **kwargs} if attrs else kwargs
        entity_id = data.pop("id", None)
        if entity_id is None:
            from .ids import new_id

            entity_id = new_id()
        elif not isinstance(entity_id, str) or not entity_id:
            raise ValidationError(cls.__name__, [("id", "must be a non-empty string")])
        cls._check_attrs(data)
        e = cls.__new__(cls)
        values: dict[str, Any] = {}
        for name, spec in meta._defaults:
            if name in data:
                values[name] = data[name]
            else:
                default = spec.make_default()
                if default is not MISSING:
                    values[name] = default
        object.__setattr__(e, "_id", entity_id)
        object.__setattr__(e, "_attrs", values)
        object.__setattr__(e, "_confirmed", {})
        object.__setattr__(e, "_syncing", {})
        object.__setattr__(e, "_last_source", None)
        return e

    @classmethod
    def spawn_many(cls, items: Iterable[Mapping[str, Any]]) -> EntitySet[Self]:
        """Spawn one entity per dict, as an ``EntitySet``."""
        return EntitySet(cls, [cls.spawn(item) for item in items])

    @classmethod
    def on(cls, event: str, hook: Hook) -> Hook:
        """Add a lifecycle hook ``hook(entity, source)``; returns it (usable as decorator)."""
        cls.__meta__.add_hook(event, hook)
        return hook

    # -- writes ------------------------------------------------------------------------
    @classmethod
    async def insert(
        cls, attrs: Mapping[str, Any], *, source: Any = None, skip_events: bool = False,
        on_error: str | None = None,
    ) -> Self:  # fmt: skip
        """Spawn and persist one entity."""
        return await cls.spawn(attrs).persist(source, skip_events=skip_events, on_error=on_error)

    @classmethod
    async def insert_many(
        cls, items: Iterable[Mapping[str, Any]], *, source: Any = None,
        skip_events: bool = False, on_error: str | None = None,
    ) -> EntitySet[Self]:  # fmt: skip
        """Spawn and persist many entities: one batch per source."""
        return await cls.spawn_many(items).persist(
            source, skip_events=skip_events, on_error=on_error
        )

    @classmethod
    async def _update(
        cls, query: Any, changes: Mapping[str, Any], source: Any, limit: int | None,
        allow_empty: bool, what: str,
    ) -> list[Self]:  # fmt: skip
        meta = cls.__meta__
        sources = meta.sources_for(source)
        where = meta.where(query, allow_empty, what)
        cast = meta.validator.validate_changes(changes)
        if not cast:
            raise QueryError(f"{cls.__name__}.{what}: no changes given")
        adapter, schema = await meta.target(sources[0])
        rows = await adapter.find(schema, Query(where, meta.default_sort, 0, limit))
        if not rows:
            return []
        ids = [r["id"] for r in rows]

        async def part(name: str) -> int:
            a, s = await meta.target(name)
            return await a.update(s, [(i, cast) for i in ids])

        await fan_out(sources, part, f"{what} {cls.__name__}")
        out: list[Self] = []
        for row in rows:
            e = meta.from_row({**row, **snapshot(cast, meta.containers)}, sources[0])
            out.append(e)  # type: ignore[arg-type]
        return out

    @classmethod
    async def update(
        cls, query: Any, changes: Mapping[str, Any], *, source: Any = None,
        allow_empty_query: bool = False,
    ) -> Self | None:  # fmt: skip
        """Change the first matching entity (by id order); returns it, or None.

        With several sources, the entity is chosen in the first and changed by id in all.
        """
        done = await cls._update(query, changes, source, 1, allow_empty_query, "update")
        return done[0] if done else None

    @classmethod
    async def update_many(
        cls, query: Any, changes: Mapping[str, Any], *, source: Any = None,
        allow_empty_query: bool = False,
    ) -> EntitySet[Self]:  # fmt: skip
        """Change every matching entity; returns them (one batched update per source)."""
        done = await cls._update(query, changes, source, None, allow_empty_query, "update_many")
        return EntitySet(cls, done)

    @classmethod
    async def _delete(
        cls, query: Any, source: Any, limit: int | None, allow_empty: bool, what: str
    ) -> int:
        meta = cls.__meta__
        sources = meta.sources_for(source)
        where = meta.where(query, allow_empty, what)
        if len(sources) == 1 and limit is None:
            adapter, schema = await meta.target(sources[0])
            return await adapter.delete_where(schema, where)  # one statement
        adapter, schema = await meta.target(sources[0])
        rows = await adapter.find(schema, Query(where, meta.default_sort, 0, limit))
        ids = [r["id"] for r in rows]
        if not ids:
            return 0

        async def part(name: str) -> int:
            a, s = await meta.target(name)
            return await a.delete(s, ids)

        counts = await fan_out(sources, part, f"{what} {cls.__name__}")
        return counts[sources[0]]

    @classmethod
    async def delete(
        cls, query: Any, *, source: Any = None, allow_empty_query: bool = False
    ) -> int:
        """Delete the first matching entity (by id order); returns 0 or 1."""
        return await cls._delete(query, source, 1, allow_empty_query, "delete")

    @classmethod
    async def delete_many(
        cls, query: Any, *, source: Any = None, allow_empty_query: bool = False
    ) -> int:
        """Delete every matching entity; returns how many the first source deleted."""
        return await cls._delete(query, source, None, allow_empty_query, "delete_many")

    # -- reads -------------------------------------------------------------------------
    @classmethod
    async def find(cls, query_or_id: Any, *, source: Any = None, sort: Any = None) -> Self | None:
        """The first entity matching a query (or with this id), or None.

        With a list of sources, the first source that has it answers (fallback chain).
        """
        meta = cls.__meta__
        sources = meta.sources_for(source)
        if query_or_id is not None and not isinstance(query_or_id, Mapping):
            meta.where(query_or_id)
            ids = [query_or_id]

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
        page: Any = None, sort: Any = None, source: Any = None,
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
        return EntitySet(cls, [meta.from_row(r, name) for r in rows])

    @classmethod
    async def count(cls, query: Mapping[str, Any] | None = None, *, source: Any = None) -> int:
        """How many entities match ``query`` (None: all)."""
        meta = cls.__meta__
        where = meta.where(query) if query is not None else None
        if query is not None and not isinstance(query, Mapping):
            raise QueryError(f"count takes a query dict, got {type(query).__name__}")

        async def read(name: str) -> int:
            adapter, schema = await meta.target(name)
            return await adapter.count(schema, where)

        return (await first_of(meta.sources_for(source), read, lambda _: True))[1]

    @classmethod
    async def iterate(
        cls, query: Mapping[str, Any] | None = None, *, batch_size: int = 100,
        sort: Any = None, source: Any = None,
    ) -> AsyncIterator[Self]:  # fmt: skip
        """Stream matching entities, reading ``batch_size`` at a time from one source."""
        meta = cls.__meta__
        name = meta.sources_for(source)[0]
        where = parse_where(query, meta.fields, cls.__name__)
        order, _, size = parse_options(meta.fields, limit=batch_size, sort=sort)
        if not size:
            raise QueryError("batch_size must be at least 1")
        adapter, schema = await meta.target(name)
        skip = 0
        while True:
            rows = await adapter.find(schema, Query(where, order, skip, size))
            for row in rows:
                yield meta.from_row(row, name)  # type: ignore[misc]
            if len(rows) < size:
                return
            skip += size
