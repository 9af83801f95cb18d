"""Entities: one record's attributes plus, per source, what that source last confirmed.

Every model class derives from ``Entity`` (through ``Model``), so an entity is an
instance of its model. Per-source state and diffs derive from two things only: the
current attributes and each source's confirmed snapshot. ``persist``/``fetch``/``destroy``
run one sequence of lifecycle events per source and hand the writes to ``fanout``;
the snapshots are updated as each source answers, so states tell the truth after a
partial failure.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, overload

from . import writes

if TYPE_CHECKING:
    from .models import ModelMeta

__all__ = ["Entity", "EntitySet", "EntityState"]


class EntityState(enum.Enum):
    """Where an entity stands with respect to a source."""

    ORPHAN = "orphan"
    """Not stored in the source (or, overall, in any source)."""
    SYNCING = "syncing"
    """A write or read with the source is in progress."""
    SYNC = "sync"
    """The source holds exactly the current attributes."""
    DIRTY = "dirty"
    """The source holds the entity, but the current attributes differ."""


class Entity:
    """One record of a model. Create with ``Model.spawn(...)``, not the constructor."""

    # No __slots__: model classes get an instance __dict__ anyway, and filling that dict
    # in one assignment (ModelMeta.new) is the cheapest way to make an entity.
    __meta__: ClassVar[ModelMeta]

    _attrs: dict[str, Any]
    _confirmed: dict[str, dict[str, Any]]
    _id: str
    _last_source: str | None
    # Shared and empty until a first write: most entities never need a dict of their own.
    _syncing: Mapping[str, int] = MappingProxyType({})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).__meta__.fields:
            self._attrs[name] = value  # what the field's descriptor does, one call sooner
        elif name[:1] == "_":
            object.__setattr__(self, name, value)
        else:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- identity and attributes -------------------------------------------------------
    @property
    def id(self) -> str:
        """The entity's id, the same in every source."""
        return self._id

    @property
    def attributes(self) -> dict[str, Any]:
        """A copy of the current attributes (without ``id``)."""
        return type(self).__meta__.copy(self._attrs)

    def to_dict(self) -> dict[str, Any]:
        """The attributes with ``id`` first, as a new dict."""
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

    # -- state -------------------------------------------------------------------------
    @property
    def last_data_source(self) -> str | None:
        """The source this entity was last read from or written to."""
        return self._last_source

    def state_in(self, source: str) -> EntityState:
        """This entity's state with respect to one source."""
        if self._syncing.get(source):
            return EntityState.SYNCING
        confirmed = self._confirmed.get(source)
        if confirmed is None:
            return EntityState.ORPHAN
        return EntityState.SYNC if confirmed == self._attrs else EntityState.DIRTY

    @property
    def state(self) -> EntityState:
        """Overall: SYNCING if any source is busy, ORPHAN if stored nowhere, SYNC if every
        source that stores it holds the current attributes, DIRTY otherwise."""
        if any(self._syncing.values()):
            return EntityState.SYNCING
        if not self._confirmed:
            return EntityState.ORPHAN
        clean = all(c == self._attrs for c in self._confirmed.values())
        return EntityState.SYNC if clean else EntityState.DIRTY

    @property
    def stored_in(self) -> list[str]:
        """Names of the sources known to store this entity."""
        return list(self._confirmed)

    def diff(self, source: str) -> dict[str, Any]:
        """Fields whose current value differs from what ``source`` confirmed.

        For a source that does not store the entity, every attribute.
        """
        confirmed = self._confirmed.get(source)
        if confirmed is None:
            return dict(self._attrs)
        return {k: v for k, v in self._attrs.items() if k not in confirmed or confirmed[k] != v}

    def validate(self) -> None:
        """Cast the attributes through the model's validator, in place.

        Raises:
            ValidationError: listing every bad field; the attributes are left unchanged.
        """
        self.__dict__["_attrs"] = type(self).__meta__.validator.validate(self._attrs)

    # -- coroutines --------------------------------------------------------------------
    async def persist(
        self, source: Any = None, *, skip_events: bool = False, on_error: str | None = None
    ) -> Self:
        """Write the entity to one or several sources, concurrently.

        A source that does not store it gets an insert; one that does gets only the
        changed fields (nothing is sent when nothing changed).

        Args:
            source: a source name, a list of names, or ``da.ALL``; default: the model's
                first source.
            skip_events: do not run lifecycle hooks.
            on_error: ``"raise"`` (default), ``"compensate"`` or ``"queue"``.

        Raises:
            ValidationError: before any write, if the attributes do not fit the model.
            FanOutError: with several sources, if any failed (states tell which).
        """
        meta = type(self).__meta__
        sources = meta.sources_for(source)
        validated = len(sources) > 1
        if validated:
            self.validate()  # bad data fails here, before any source is touched
        await writes.persist(meta, [self], sources, skip_events, on_error, validated)
        return self

    async def fetch(self, source: Any = None, *, skip_events: bool = False) -> Self:
        """Reload the attributes from the first of ``source`` that stores the entity.

        Raises:
            EntityStateError: the entity is stored in none of the sources asked
                (fetch of an orphan), or none of them has it any more.
        """
        await writes.fetch(type(self).__meta__, [self], source, skip_events)
        return self

    async def destroy(
        self, source: Any = None, *, skip_events: bool = False, on_error: str | None = None
    ) -> Self:
        """Delete the entity from one or several sources (``da.ALL``: wherever stored).

        Raises:
            EntityStateError: before any I/O, if it is not stored in a named source.
            FanOutError: with several sources, if any failed.
        """
        meta = type(self).__meta__
        await writes.destroy(meta, [self], source, skip_events, on_error)
        return self


E = TypeVar("E", bound=Entity)


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

    def to_dicts(self) -> list[dict[str, Any]]:
        """Each entity's ``to_dict()``."""
        return [e.to_dict() for e in self._items]

    async def persist(
        self, source: Any = None, *, skip_events: bool = False, on_error: str | None = None
    ) -> Self:
        """Persist every entity: per source, one batched insert and one batched update."""
        meta = self._model.__meta__
        sources = meta.sources_for(source)
        writes.validate_all(meta, self._items)  # nothing is written if any is invalid
        await writes.persist(meta, self._items, sources, skip_events, on_error, validated=True)
        return self

    async def fetch(self, source: Any = None, *, skip_events: bool = False) -> Self:
        """Reload every entity from ``source`` (one batched read per source)."""
        await writes.fetch(self._model.__meta__, self._items, source, skip_events)
        return self

    async def destroy(
        self, source: Any = None, *, skip_events: bool = False, on_error: str | None = None
    ) -> Self:
        """Delete every entity from ``source`` (one batched delete per source)."""
        await writes.destroy(self._model.__meta__, self._items, source, skip_events, on_error)
        return self

    async def update(
        self,
        changes: Mapping[str, Any],
        source: Any = None,
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
