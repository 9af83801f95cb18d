"""Entities: one record's attributes plus, per source, what that source last confirmed.

Every model class derives from ``Entity`` (through ``Model``), so an entity is an
instance of its model. Per-source state and diffs derive from two things only: the
current attributes and each source's confirmed snapshot. ``persist``/``fetch``/``destroy``
run one sequence of lifecycle events per source and hand the writes to ``ops``;
the snapshots are updated as each source answers, so states tell the truth after a
partial failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, overload

from .errors import ValidationError
from .meta import ModelMeta
from .ops.destroy import destroy
from .ops.fetch import fetch
from .ops.persist import persist, validate_all
from .shapes import dump_json
from .sources import SourceArg
from .state import EntityCore, EntityState, set_attrs

__all__ = ["Entity", "EntitySet", "EntityState"]


class Entity(EntityCore):
    """One record of a model. Create with ``Model.spawn(...)``, not the constructor."""

    __meta__: ClassVar[ModelMeta]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).__meta__.fields:
            self._attrs[name] = value  # what the field's descriptor does, one call sooner
        elif name[:1] == "_":
            object.__setattr__(self, name, value)
        else:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- identity and attributes -------------------------------------------------------
    @property
    def attributes(self) -> dict[str, Any]:
        """A copy of the current attributes (without ``id``), each of its declared type."""
        return type(self).__meta__.decode(self._attrs)

    def to_dict(self, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        """The attributes with ``id`` first, as a new dict.

        Args:
            mode: ``"python"``: values of their declared types (an enum member, a
                ``Decimal``, a nested model...); ``"json"``: JSON-safe (datetimes and
                dates in ISO 8601, enums by value, Decimals and UUIDs as strings, nested
                models as dicts), as pydantic's ``model_dump(mode="json")`` gives.
        """
        data = {"id": self._id, **type(self).__meta__.decode(self._attrs)}
        if mode == "python":
            return data
        if mode == "json":
            return dump_json(type(self), data)
        raise ValueError(f"to_dict: mode must be 'python' or 'json', got {mode!r}")

    def diff(self, source: str) -> dict[str, Any]:
        """Fields whose current value differs from what ``source`` confirmed, each of its
        declared type; for a source that does not store the entity, every attribute."""
        return type(self).__meta__.decode(super().diff(source))

    def _stored(self) -> dict[str, Any]:
        # The attributes in their stored, JSON-like form (what adapters and the REST
        # protocol carry), with ``id`` first.
        return {"id": self._id, **type(self).__meta__.copy(self._attrs)}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._id} {self.state.value}>"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Entity)
            and other._id == self._id
            and other._attrs == self._attrs
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def validate(self) -> None:
        """Cast the attributes through the model's validator, in place.

        Raises:
            ValidationError: listing every bad field; the attributes are left unchanged.
        """
        set_attrs(self, type(self).__meta__.validator.validate(self._attrs))

    # -- coroutines --------------------------------------------------------------------
    async def persist(
        self,
        source: SourceArg = None,
        *,
        skip_events: bool = False,
        on_error: str | None = None,
        check: bool = False,
        defer: SourceArg = None,
    ) -> Self:
        """Write the entity to one or several sources, concurrently.

        Every source gets the same revision-guarded upsert, whether or not this object
        knows it holds a copy: changed attributes get a new ``revision``; unchanged ones
        are sent, with their revision, only to the sources not known to hold it (nothing
        is sent when nothing changed). A source holding a newer revision keeps it: the
        entity is then listed in ``superseded`` and DIRTY there (not an error).

        Args:
            source: a source name, a list of names, or ``da.ALL``; default: the model's
                first source.
            skip_events: do not run lifecycle hooks.
            on_error: ``"raise"`` (default), ``"compensate"`` or ``"queue"``.
            check: optimistic concurrency: the model's first source (of those named) is
                written first, and only if it still holds the revision this entity was
                read or last written with; otherwise ``ConflictError`` and nothing else
                is written.
            defer: sources to write later, by the outbox's relay (write-behind): the
                call returns once the other sources are written and the deferred
                writes are recorded as durable intents. Needs an outbox.

        Raises:
            ValidationError: before any write, if the attributes do not fit the model.
            ConfigError: before any write, for ``on_error="queue"`` without an outbox.
            ConflictError: with ``check=True``, another writer changed the entity.
            FanOutError: with several sources, if any failed (states tell which).
        """
        meta = type(self).__meta__
        sources, deferred = meta.targets(source, defer)
        validated = len(sources) > 1
        if validated:
            self.validate()  # bad data fails here, before any source is touched
        await persist(meta, [self], sources, skip_events, on_error, validated, check, deferred)
        return self

    async def fetch(self, source: SourceArg = None, *, skip_events: bool = False) -> Self:
        """Reload the attributes from the first of ``source`` that stores the entity.

        Raises:
            EntityStateError: the entity is stored in none of the sources asked
                (fetch of an orphan), or none of them has it any more.
        """
        await fetch(type(self).__meta__, [self], source, skip_events)
        return self

    async def destroy(
        self, source: SourceArg = None, *, skip_events: bool = False, on_error: str | None = None
    ) -> Self:
        """Delete the entity from one or several sources (``da.ALL``: every source of
        the model, whether or not this object has seen a copy there).

        Each source keeps a tombstone (id and revision) for its retention, so an older
        write arriving later (a replay, a slow fan-out) cannot bring the entity back.

        Raises:
            EntityStateError: before any I/O, if the entity was never stored.
            FanOutError: with several sources, if any failed.
        """
        meta = type(self).__meta__
        await destroy(meta, [self], source, skip_events, on_error)
        return self


E = TypeVar("E", bound=Entity)


def _distinct_ids(meta: ModelMeta, items: Sequence[Entity]) -> None:
    """One id twice in one batch is refused alike on every store, before any write
    (stores would otherwise keep one, the other or fail, each in its own way)."""
    ids = {e._id for e in items}
    if len(ids) == len(items):
        return
    first: dict[str, int] = {}
    errors = []
    for i, e in enumerate(items):
        if e._id in first:
            errors.append((f"[{i}].id", f"duplicate id {e._id!r} (also at [{first[e._id]}])"))
        else:
            first[e._id] = i
    raise ValidationError(meta.name, errors)


class EntitySet(Sequence[E], Generic[E]):
    """An ordered collection of entities of one model, with batched bulk operations.

    Each bulk coroutine sends one batch per source (one multi-row INSERT, one pipeline),
    never one round trip per entity.
    """

    __slots__ = ("_items", "_model")

    def __init__(self, model: type[E], items: Iterable[E] = ()) -> None:
        self._model = model
        self._items = list(items)

    @overload
    def __getitem__(self, index: int) -> E: ...
    @overload
    def __getitem__(self, index: slice) -> EntitySet[E]: ...
    def __getitem__(self, index: int | slice) -> E | EntitySet[E]:
        if isinstance(index, slice):
            return EntitySet(self._model, self._items[index])
        item: E = self._items[index]
        return item

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[E]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<EntitySet of {len(self._items)} {self._model.__name__}>"

    @property
    def model(self) -> type[E]:
        """The model class of the entities."""
        return self._model

    @property
    def ids(self) -> list[str]:
        """The entities' ids, in order."""
        return [e.id for e in self._items]

    def to_dicts(self, mode: Literal["python", "json"] = "python") -> list[dict[str, Any]]:
        """Each entity's ``to_dict(mode)``."""
        return [e.to_dict(mode) for e in self._items]

    async def persist(
        self,
        source: SourceArg = None,
        *,
        skip_events: bool = False,
        on_error: str | None = None,
        check: bool = False,
        defer: SourceArg = None,
    ) -> Self:
        """Persist every entity: per source, one batched revision-guarded write
        (``defer``: sources left to the relay, as for ``Entity.persist``)."""
        meta = self._model.__meta__
        sources, deferred = meta.targets(source, defer)
        _distinct_ids(meta, self._items)
        validate_all(meta, self._items)  # nothing is written if any is invalid
        await persist(meta, self._items, sources, skip_events, on_error, True, check, deferred)
        return self

    async def fetch(self, source: SourceArg = None, *, skip_events: bool = False) -> Self:
        """Reload every entity from ``source`` (one batched read per source)."""
        await fetch(self._model.__meta__, self._items, source, skip_events)
        return self

    async def destroy(
        self, source: SourceArg = None, *, skip_events: bool = False, on_error: str | None = None
    ) -> Self:
        """Delete every entity from ``source`` (one batched tombstone write per source)."""
        await destroy(self._model.__meta__, self._items, source, skip_events, on_error)
        return self

    async def update(
        self,
        changes: Mapping[str, Any],
        source: SourceArg = None,
        *,
        skip_events: bool = False,
        on_error: str | None = None,
    ) -> Self:
        """Set ``changes`` on every entity, then persist them (only the diff is sent)."""
        meta = self._model.__meta__
        cast = meta.validator.validate_changes(changes)
        for e in self._items:
            e._attrs.update(meta.copy(cast))
        return await self.persist(source, skip_events=skip_events, on_error=on_error)
