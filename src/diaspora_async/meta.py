"""What a model compiles once, at class creation: ``ModelMeta``.

``models.Model.__init_subclass__`` builds one per model class from its annotations: field
specs, the pydantic validator, hooks, declared sources with their per-source remaps, and
the lookup of each source's adapter and schema. Every class and entity coroutine reads it
through ``type(entity).__meta__``, so nothing here is recomputed per call.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import pydantic

from .adapters.base import Adapter, CollectionSchema, Row
from .errors import ConfigError, QueryError, UnknownDataSource, ValidationError
from .events import Hook, check_event, run_hooks
from .fields import MISSING, FieldSpec, ModelValidator, build_field
from .ids import new_id, new_ids
from .query.ast import Equal, Node
from .query.parse import parse_sort, parse_where
from .rows import compile_copier
from .sources import ALL, Catalog, HasCatalog, check_policy
from .state import EntityCore, adopt_rows, make

__all__ = ["ModelMeta", "attr_descriptor", "own_fields"]


class _Attr:
    """Descriptor giving ``entity.name`` access to one attribute."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: EntityCore | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj._attrs.get(self.name)

    def __set__(self, obj: EntityCore, value: Any) -> None:
        obj._attrs[self.name] = value


class _DecodedAttr(_Attr):
    """``_Attr`` for a field stored in another form than declared (``codecs.py``): reads
    give the declared type (an enum member, a Decimal, a model...)."""

    __slots__ = ("decode",)

    def __init__(self, name: str, decode: Callable[[Any], Any]) -> None:
        super().__init__(name)
        self.decode = decode

    def __get__(self, obj: EntityCore | None, owner: type) -> Any:
        if obj is None:
            return self
        value = obj._attrs.get(self.name)
        return None if value is None else _decoded(self.decode, owner, self.name, value)


def _decoded(decode: Callable[[Any], Any], owner: type, name: str, value: Any) -> Any:
    try:
        return decode(value)
    except (pydantic.ValidationError, ValueError, TypeError) as exc:
        raise ValidationError(owner.__name__, [(name, f"stored value {value!r}: {exc}")]) from None


def attr_descriptor(spec: FieldSpec) -> _Attr:
    """The descriptor a model class gets for one field."""
    if spec.codec is None:
        return _Attr(spec.name)
    return _DecodedAttr(spec.name, spec.codec.decode)


class ModelMeta:
    """Everything compiled once per model class; shared by all its calls."""

    def __init__(
        self,
        cls: type[EntityCore],
        registry: HasCatalog,
        fields: dict[str, FieldSpec],
        sources: Any,
        collection: str | None,
        on_error: str,
    ) -> None:
        self.cls = cls
        self.name = cls.__name__
        #: The registry that declared the model (models reach sources through ``catalog``).
        self.registry = registry
        self.catalog: Catalog = registry.catalog
        self.fields = fields
        self.validator = ModelValidator(self.name, fields)
        self.collection = collection or self.name
        self.on_error = check_policy(on_error)
        self.source_names, self.remaps = self._parse_sources(sources)
        self._single = {s: [s] for s in self.source_names}
        self._hooks: dict[str, tuple[Hook, ...]] = {}
        #: Whether any lifecycle hook is registered (write paths skip event work when not).
        self.has_hooks = False
        self.default_sort = parse_sort(None, fields)
        self.copy = compile_copier(fields)
        # Compiled once for spawn and row decoding: a template with the static defaults in
        # field order (MISSING marks required ones), the factories, the known names.
        self._template = {n: MISSING if f.default_factory else f.default for n, f in fields.items()}
        self._factories = [(n, f.default_factory) for n, f in fields.items() if f.default_factory]
        self._required = [n for n, f in fields.items() if f.required]
        self._field_set = frozenset(fields)
        self._row_keys = {"id", "_rev", *fields}
        self._decoders = [(n, f.codec.decode) for n, f in fields.items() if f.codec is not None]

    def decode(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of stored (or validated) attributes with every value of its declared
        type: what ``entity.attributes`` and ``to_dict()`` give."""
        out = self.copy(attrs)
        for name, decode in self._decoders:
            value = out.get(name)
            if value is not None:
                out[name] = _decoded(decode, self.cls, name, value)
        return out

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
        self.has_hooks = True

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

    def targets(self, source: Any, defer: Any) -> tuple[list[str], list[str]]:
        """The sources of a write and, among them, the deferred ones (``defer=``: a name
        or a list, added to the targets if not named by ``source``)."""
        sources = self.sources_for(source)
        if defer is None or (isinstance(defer, list | tuple) and not defer):
            return sources, []
        deferred = self.sources_for([defer] if isinstance(defer, str) else defer)
        return list(dict.fromkeys([*sources, *deferred])), deferred

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

    def ready_target(self, source: str) -> tuple[Adapter, CollectionSchema] | None:
        """``target`` without an await when the schema is already ensured (the usual
        case); None otherwise, and ``await target(source)`` does the rest."""
        ds = self.catalog.sources.get(source)
        if ds is None:
            return None
        schema = ds.ensured(self.name)
        return None if schema is None else (ds.adapter, schema)

    async def target(self, source: str) -> tuple[Adapter, CollectionSchema]:
        """The adapter and schema for ``source``, ensuring the schema on first use."""
        ready = self.ready_target(source)
        if ready is not None:
            return ready
        ds = self.catalog.source(source, self.name)
        schema = ds.ensured(self.name)
        if schema is None:
            schema = await ds.ensure(self.schema_for(source))
        return ds.adapter, schema

    # -- rows and entities -------------------------------------------------------------
    def row_to_attrs(self, row: Row) -> dict[str, Any]:
        """Attributes from a stored row; fields the row lacks read as None."""
        if row.keys() == self._row_keys:  # the usual case: one C-level copy
            attrs = dict(row)
            del attrs["id"]
            del attrs["_rev"]
            return attrs
        return {n: row.get(n) for n in self.fields}

    def from_row(self, row: Row, source: str) -> EntityCore:
        """Build an entity confirmed in ``source`` from a stored row (which it takes over)."""
        return self.from_rows([row], source)[0]

    def from_rows(self, rows: Sequence[Row], source: str) -> list[EntityCore]:
        """``from_row`` for every row of a read, in one loop."""
        return adopt_rows(self.cls, rows, source, self._row_keys, self.copy, self.row_to_attrs)

    async def fire(self, event: str, entities: Sequence[EntityCore], source: str) -> None:
        """Run the model's ``event`` hooks on each entity, in order."""
        hooks = self.hooks(event)
        if hooks:
            for e in entities:
                await run_hooks(hooks, e, source)

    def spawn(self, data: Mapping[str, Any], entity_id: Any = None) -> EntityCore:
        """A new ORPHAN entity from ``data`` (not modified), defaults filled in.

        ``entity_id``: an id reserved by the caller (``spawn_many`` takes a batch of them
        from one ``new_ids`` call); otherwise ``data["id"]`` or a new one.
        """
        has_id = "id" in data
        if entity_id is None:
            entity_id = data["id"] if has_id else None
            if entity_id is None:
                entity_id = new_id()
        if not isinstance(entity_id, str) or not entity_id:
            raise ValidationError(self.name, [("id", "must be a non-empty string")])
        if not data.keys() <= self._field_set:
            unknown = [k for k in data if k not in self._field_set and k != "id"]
            if unknown:
                errors = [(k, "not an attribute of the model") for k in unknown]
                raise ValidationError(self.name, errors)
        values = self._template.copy()
        values.update(data)
        if has_id:
            del values["id"]
        for name, factory in self._factories:
            if name not in data:
                values[name] = factory()
        for name in self._required:
            if values[name] is MISSING:
                del values[name]
        return make(self.cls, entity_id, values, {})

    def spawn_many(self, items: Sequence[Mapping[str, Any]]) -> list[EntityCore]:
        """``spawn`` for a batch: ids reserved in one call, the common case inlined.

        An item naming only declared fields (no ``id``) takes the short path; any other
        goes through ``spawn``, which checks it and raises the same errors.
        """
        ids = new_ids(len(items))
        template, names, cls = self._template, self._field_set, self.cls
        factories, required = self._factories, self._required
        out = []
        for data, entity_id in zip(items, ids, strict=True):
            if not data.keys() <= names:
                given = data.get("id")
                out.append(self.spawn(data, entity_id if given is None else given))
                continue
            values = {**template, **data}
            for name, factory in factories:
                if name not in data:
                    values[name] = factory()
            for name in required:
                if values[name] is MISSING:
                    del values[name]
            out.append(make(cls, entity_id, values, {}))
        return out

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


def own_fields(cls: type, parent: Mapping[str, FieldSpec], reserved: type) -> dict[str, FieldSpec]:
    """The fields of a model class: its parent's, then its own annotations in order."""
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
        if name == "id" or hasattr(reserved, name):
            raise ConfigError(f"{cls.__name__}: {name!r} is reserved and cannot be a field")
        value = cls.__dict__.get(name, MISSING)
        fields[name] = build_field(name, annotation, value)
    return fields
