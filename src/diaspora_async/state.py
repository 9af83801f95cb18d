"""Entity state: what an entity holds and, per source, what that source last confirmed.

The lowest layer an entity has. ``EntityCore`` carries the slots every entity owns
(id, attributes, confirmed snapshot per source, in-flight counts, last source, and the
revision with the attributes it stands for) and the
read-only views over them (``state_in``, ``state``, ``diff``...). The functions below are
the only code that changes those slots: model metadata makes entities with ``make`` and
``adopt_rows``, the write path marks and confirms them with ``begin``/``end``/``confirm``.
Keeping the writes here lets every other module read entity state without editing an
object it does not own.

Revisions (DESIGN.md 6.1): ``_rev`` is the revision the entity was last read or written
with and ``_base`` the attributes at that revision (a snapshot, shared with the confirmed
snapshots of the sources written in the same call: snapshots are never mutated, only
replaced). A write mints a new revision only when the attributes differ from ``_base``;
otherwise it re-sends ``_rev`` to the sources that lack it, so copies of one state carry
one revision everywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "EntityCore",
    "EntityState",
    "adopt_rows",
    "begin",
    "confirm",
    "end",
    "forget",
    "make",
    "set_attrs",
    "stamp",
    "supersede",
    "touch",
]

# What a source that refused a write (it holds a newer revision) is marked with: the
# entity is DIRTY there and every attribute counts as changed. Compared by identity.
_SUPERSEDED: dict[str, Any] = {}


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


class EntityCore:
    """The state every entity carries, and the views over it.

    The slots are underscored so they never collide with a model's field names; they
    are read across the package and written only by this module's functions.
    """

    # No __slots__: model classes get an instance __dict__ anyway, and filling that dict
    # in one assignment (``make``) is the cheapest way to make an entity.
    _attrs: dict[str, Any]
    _confirmed: dict[str, dict[str, Any]]
    _id: str
    _last_source: str | None
    # Shared and empty until a first write: most entities never need a dict of their own.
    _syncing: Mapping[str, int] = MappingProxyType({})
    # Class defaults: an entity spawned here has neither until it is first written.
    _rev: str | None = None
    _base: dict[str, Any] | None = None

    @property
    def revision(self) -> str | None:
        """The revision this entity was last read or written with (None: never stored,
        or read from a copy stored before revisions existed). Opaque, totally ordered."""
        return self._rev

    @property
    def superseded(self) -> list[str]:
        """Sources whose last write here was a no-op because they hold a newer revision
        (another writer's): the entity is DIRTY there; ``fetch`` reads the newer one."""
        return [s for s, snap in self._confirmed.items() if snap is _SUPERSEDED]

    @property
    def id(self) -> str:
        """The entity's id, the same in every source."""
        return self._id

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


E = TypeVar("E", bound=EntityCore)


# -- making entities ----------------------------------------------------------------------
def make(
    cls: type[E],
    entity_id: str,
    attrs: dict[str, Any],
    confirmed: dict[str, Any],
    last_source: str | None = None,
) -> E:
    """An instance of ``cls`` holding the given state, without running any user code."""
    e = cls.__new__(cls)
    # Item stores into the fresh instance dict: measured faster than assigning a
    # prepared dict through object.__setattr__(e, "__dict__", ...).
    slots = e.__dict__
    slots["_id"] = entity_id
    slots["_attrs"] = attrs
    slots["_confirmed"] = confirmed
    slots["_last_source"] = last_source
    return e


def adopt_rows(
    cls: type[E],
    rows: Sequence[dict[str, Any]],
    source: str,
    row_keys: Any,
    copy: Callable[[dict[str, Any]], dict[str, Any]],
    to_attrs: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[E]:
    """Entities confirmed in ``source`` from stored rows, in one loop.

    A row whose keys are exactly ``row_keys`` (the usual case) becomes the snapshot
    itself: adapters hand over fresh rows. Any other goes through ``to_attrs``.
    """
    new = cls.__new__
    out: list[E] = []
    for row in rows:
        if row.keys() == row_keys:
            entity_id = row.pop("id")
            rev = row.pop("_rev")
            snapshot = row
        else:
            entity_id = row["id"]
            rev = row.get("_rev")
            snapshot = to_attrs(row)
        e = new(cls)
        slots = e.__dict__
        slots["_id"] = entity_id
        slots["_attrs"] = copy(snapshot)
        slots["_confirmed"] = {source: snapshot}
        slots["_last_source"] = source
        slots["_rev"] = rev
        slots["_base"] = snapshot
        out.append(e)
    return out


# -- transitions, batched: one call per batch, the loop inside -----------------------------
def begin(entities: Sequence[EntityCore], source: str) -> None:
    """Mark ``entities`` SYNCING with ``source`` (counted: writes may overlap)."""
    for e in entities:
        slots = e.__dict__
        syncing = slots.get("_syncing")
        if syncing is None:
            slots["_syncing"] = {source: 1}
        else:
            syncing[source] = syncing.get(source, 0) + 1


def end(entities: Sequence[EntityCore], source: str) -> None:
    """Undo one ``begin`` for each entity."""
    for e in entities:
        syncing = e.__dict__["_syncing"]
        left = syncing[source] - 1
        if left:
            syncing[source] = left
        else:
            del syncing[source]


def confirm(e: EntityCore, source: str, written: dict[str, Any]) -> None:
    """``source`` now holds ``written`` (a snapshot the entity owns) for ``e``."""
    slots = e.__dict__
    slots["_confirmed"][source] = written
    slots["_last_source"] = source


def forget(e: EntityCore, source: str) -> None:
    """``source`` no longer holds ``e`` (deleted there, or found missing)."""
    e.__dict__["_confirmed"].pop(source, None)


def supersede(e: EntityCore, source: str) -> None:
    """``source`` refused a write to ``e``: it holds a newer revision, content unknown."""
    slots = e.__dict__
    slots["_confirmed"][source] = _SUPERSEDED
    slots["_last_source"] = source


def stamp(e: EntityCore, revision: str | None, base: dict[str, Any] | None) -> None:
    """``e`` now stands for ``base`` (a snapshot it owns) at ``revision``."""
    slots = e.__dict__
    slots["_rev"] = revision
    slots["_base"] = base


def touch(e: EntityCore, source: str) -> None:
    """``source`` is the one ``e`` last talked to."""
    e.__dict__["_last_source"] = source


def set_attrs(e: EntityCore, attrs: dict[str, Any]) -> None:
    """Replace ``e``'s attributes (validated or freshly read)."""
    e.__dict__["_attrs"] = attrs
