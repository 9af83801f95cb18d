"""The adapter contract: one small abstract base every store plugs in through.

Sits between a data source and its driver: ``Model``/``Entity`` code calls these bulk-first
coroutines with rows keyed by *logical* field names (``id`` included) and already-validated
Python values (aware UTC datetimes, lists, dicts); the adapter maps names through the
source's ``CollectionSchema`` (per-source remaps), encodes values for its store, and
decodes them back. Queries arrive as canonical AST nodes (``diaspora_async.query``).
Driver exceptions are translated to ``DataSourceError`` subclasses at one boundary,
``translate_errors``, with the driver's exception kept as ``__cause__``.

Revisions (DESIGN.md 6.1). Every row an adapter returns carries the key ``REV``
(``"_rev"``): the revision string of that copy, or None for a row stored before
revisions existed (the oldest of all). Entity writes go through ``write``, a conditional
upsert the store itself decides in one round trip: a row applies only where the store
holds no copy of its id or an older revision, so replays, retries and out-of-order
deliveries are harmless. A row carrying ``DELETED`` (``"_del"``, the deletion time) is a
**tombstone**: id, revision and deletion time, no fields. The store keeps it (under the
same guard) so that an older write arriving later cannot bring the entity back; reads,
queries, counts and deletes never see tombstones, and ``purge`` removes old ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar

from ..errors import ConfigError, ConnectionLost, DataSourceError, DiasporaError
from ..fields import ID_FIELD, FieldSpec
from ..query.ast import Node, Query

__all__ = ["DELETED", "REV", "Adapter", "Capabilities", "CollectionSchema", "Revision", "Row"]

Row = dict[str, Any]

REV = "_rev"
"""Row key of a copy's revision (a ``revisions`` string; None for a pre-revision row)."""
DELETED = "_del"
"""Row key, in ``write`` rows only, that makes the row a tombstone (value: aware UTC
datetime of the deletion)."""

Revision = tuple[str | None, bool]
"""What ``Adapter.revisions`` tells of one stored id: (revision, is a tombstone)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter can do, as data: tests and callers gate on these, never on labels.

    Attributes:
        native_query: queries are translated to the store's own language (not filtered
            in Python after fetching everything).
        transactions: a batch is applied atomically.
        persistent: data outlives the process.
        pooled: connections are managed by the common pool base (``stats()`` is live).
        unique_indexes: declared ``unique`` fields are enforced by the store.
        write_with: ``Adapter.write_with`` commits inserts into other collections in
            the same transaction as a write (the transactional outbox).
        keyset_paging: ``find`` compiles the conditions of ``query/keyset.py``
            (comparisons on string and bool fields too) to an indexed range in the
            store's sort order, so ``Model.iterate`` pages by position instead of by
            offset.
    """

    native_query: bool = False
    transactions: bool = False
    persistent: bool = False
    pooled: bool = False
    unique_indexes: bool = False
    write_with: bool = False
    keyset_paging: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class CollectionSchema:
    """What one source needs to know about one model.

    Attributes:
        model: the model's name (for messages).
        collection: table / collection / key part / REST path segment.
        fields: logical name -> spec, declared fields only (``id`` is implicit).
        stored: logical name -> name in this source (identity unless remapped); has ``id``.
    """

    model: str
    collection: str
    fields: Mapping[str, FieldSpec]
    stored: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stored = {"id": "id", REV: REV, **{n: n for n in self.fields}, **self.stored}
        object.__setattr__(self, "stored", stored)

    def spec(self, name: str) -> FieldSpec:
        """The spec of a logical field, ``id`` included."""
        return ID_FIELD if name == "id" else self.fields[name]

    @property
    def remapped(self) -> bool:
        """True when some stored name differs from its logical name."""
        return any(k != v for k, v in self.stored.items())

    def to_stored(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Rename a row's keys to this source's stored names."""
        if not self.remapped:
            return dict(row)
        return {self.stored[k]: v for k, v in row.items()}

    def from_stored(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Rename a stored row's keys back to logical names (unknown keys dropped)."""
        if not self.remapped:
            return {k: v for k, v in row.items() if k == "id" or k == REV or k in self.fields}
        back = {v: k for k, v in self.stored.items()}
        return {back[k]: v for k, v in row.items() if k in back}


class Adapter(ABC):
    """Base class of every adapter.

    Subclasses set ``label``, ``capabilities`` and ``extra`` (the pip extra that installs
    their driver), accept their config in ``__init__`` (raising ``ConfigError`` for unknown
    or bad keys, with no I/O), and implement the coroutines below. All batch methods
    take every row of a batch at once: an adapter sends a batch in one round trip where its
    store allows it, never one per row.
    """

    label: ClassVar[str] = "abstract"
    capabilities: ClassVar[Capabilities] = Capabilities()
    extra: ClassVar[str | None] = None

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        if config:
            raise ConfigError(
                f"data source {name!r} ({self.label}): unknown option(s) "
                + ", ".join(sorted(config))
            )

    # -- lifecycle ---------------------------------------------------------------------
    @abstractmethod
    async def connect(self) -> None:
        """Open connections (or the pool). Called once by ``Diaspora.connect()``."""

    @abstractmethod
    async def close(self) -> None:
        """Close everything; idempotent."""

    async def ping(self) -> None:  # noqa: B027 - optional: a default that succeeds
        """Raise ``DataSourceError`` if the store does not answer."""

    def stats(self) -> dict[str, int]:
        """Pool statistics: at least ``size``, ``in_use``, ``idle``, ``waiting``."""
        return {"size": 0, "in_use": 0, "idle": 0, "waiting": 0}

    @abstractmethod
    async def ensure_schema(self, schema: CollectionSchema) -> None:
        """Create the table/collection/indexes for a model if missing; idempotent."""

    # -- data --------------------------------------------------------------------------
    @abstractmethod
    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        """Conditionally upsert ``rows``; return the ids of the rows refused.

        Each row has ``id``, ``REV`` (a revision string) and either every declared field
        (a full copy: a missing one is stored as missing) or ``DELETED`` and nothing else
        (a tombstone). Ids within one call are distinct.

        Without ``expect``, a row applies iff the store holds no copy of its id, or holds
        a copy or tombstone whose revision is older (a None revision is the oldest). A
        newer stored revision leaves the store as it is and the row is refused (stale:
        not an error). A store already holding the row's exact revision is left as it is
        and the row is NOT reported: it is the replay of a write that landed.

        With ``expect`` (optimistic concurrency, ``persist(check=True)``), aligned with
        ``rows``: ``expect[i]`` None applies row ``i`` iff the store holds no live copy
        (absent, or a tombstone older than the row); a string applies it iff the store
        holds a live copy whose revision is exactly that string ("" matches a
        pre-revision row, whose revision is None).

        ``fresh`` is a hint, never a change of meaning: the caller believes no row's id is
        stored (entities spawned here and never written). A store where an insert is much
        cheaper than a guarded upsert may try plain inserts first and apply the guard to
        the rows whose id turned out to be stored; the others ignore it.

        One round trip per batch where the store allows it, the guard inside the same
        statement or script; transactional stores apply the batch atomically. A unique
        index violation by a live row raises ``IntegrityError`` (tombstones hold no
        field values, so they never violate one).
        """

    async def patch(
        self, schema: CollectionSchema, changes: Sequence[tuple[str, Row, str, str | None]]
    ) -> list[str]:
        """An optimisation of ``write`` for copies known to hold a base revision: each
        ``(id, {changed field: value}, new revision, base revision)`` is applied only
        where the live copy holds exactly ``base`` (None: a pre-revision copy); returns
        the ids not patched, which the caller writes whole. The default patches nothing
        (every id is returned); stores where a narrow update is much cheaper than a
        full upsert override it."""
        return [c[0] for c in changes]

    async def write_with(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        inserts: Sequence[tuple[CollectionSchema, Sequence[Row]]],
        *,
        fresh: bool = False,
    ) -> list[str]:
        """``write(schema, rows)`` and plain ``insert``s into other collections of this
        store, committed together or not at all: the transactional outbox (DESIGN.md
        6.2), where a write and the intents for the other sources are one transaction.
        Only adapters whose capabilities say ``write_with`` implement it (the write path
        asks the capability first); ``rows`` may be empty (the intents alone).

        Raises:
            ConfigError: here, for an adapter that cannot commit two collections at once
                (a sequence of writes would break the all-or-nothing promise).
        """
        raise ConfigError(
            f"data source {self.name!r} ({self.label}): cannot commit a write together with "
            "other inserts (Capabilities.write_with is False); write them separately"
        )

    @abstractmethod
    async def revisions(self, schema: CollectionSchema, ids: Sequence[str]) -> dict[str, Revision]:
        """``{id: (revision, is_tombstone)}`` for the ids the store holds, tombstones
        included; absent ids are left out. The slow path after ``write`` reported rows
        not applied (to tell an equal revision from a newer one, or report a conflict)."""

    @abstractmethod
    async def purge(self, schema: CollectionSchema, before: datetime) -> int:
        """Remove tombstones whose deletion time is before ``before``; return how many."""

    @abstractmethod
    async def insert(self, schema: CollectionSchema, rows: Sequence[Row]) -> None:
        """Insert new rows (each has ``id``; ``REV`` stored when given), unconditionally.

        For collections without revision semantics (the outbox) and tests; entity
        writes use ``write``. A duplicate id (live row or tombstone) raises
        ``IntegrityError``.
        """

    @abstractmethod
    async def get(self, schema: CollectionSchema, ids: Sequence[str]) -> list[Row]:
        """Return the stored rows among ``ids``, in any order; absent ids and tombstones
        are skipped. Every row has ``id``, ``REV`` and the declared fields.

        Returned rows (here and from ``find``) belong to the caller, which may modify them:
        never hand out a dict the adapter keeps.
        """

    @abstractmethod
    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        """Return the rows matching ``query.where`` in ``query.sort`` order, sliced."""

    @abstractmethod
    async def count(self, schema: CollectionSchema, where: Node | None) -> int:
        """Count the rows matching ``where`` (None: all)."""

    @abstractmethod
    async def update(self, schema: CollectionSchema, changes: Sequence[tuple[str, Row]]) -> int:
        """Apply ``(id, {field: value})`` changes (None stores a missing value),
        unconditionally, to live rows (tombstones are not touched; ``REV`` in a change is
        stored). For collections without revision semantics; entity writes use ``write``.

        Returns the number of ids that exist in the store; absent ids are not created.
        """

    @abstractmethod
    async def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> int:
        """Remove rows by id, unconditionally and without tombstones; returns how many
        live rows existed (an entity delete is a tombstone ``write``)."""

    async def delete_where(self, schema: CollectionSchema, where: Node | None) -> int:
        """Delete every row matching ``where``; returns the number deleted.

        The default finds the ids first; SQL and Mongo adapters do it in one statement.
        """
        rows = await self.find(schema, Query(where, (), 0, None))
        return await self.delete(schema, [r["id"] for r in rows])

    async def drop(self, schema: CollectionSchema) -> None:
        """Remove the collection with its data and indexes (tests use it to start clean).

        ``ensure_schema`` builds it again. The default deletes every row and purges
        every tombstone.
        """
        await self.delete_where(schema, None)
        await self.purge(schema, datetime.max.replace(tzinfo=UTC))

    # -- errors ------------------------------------------------------------------------
    def translate_error(self, exc: Exception) -> DiasporaError:
        """Map a driver exception to a ``DataSourceError`` subclass; override per driver."""
        return DataSourceError(self.name, f"{type(exc).__name__}: {exc}")

    def classify_connect_error(self, exc: Exception) -> DiasporaError:
        """Map what opening a connection raised to our error; the pool asks this.

        Return ``AccessDenied`` when the store refused the credentials or the database
        (the pool then makes no further attempt); the default is ``ConnectionLost``.
        """
        return ConnectionLost(self.name, f"could not connect: {exc!r}")

    def translated(self, exc: BaseException) -> BaseException:
        """``exc`` as it should leave the adapter: a driver error becomes ours
        (``translate_error``); our errors, cancellation and exits stay as they are."""
        if isinstance(exc, Exception) and not isinstance(exc, DiasporaError):
            return self.translate_error(exc)
        return exc

    def translate_errors(self) -> AbstractContextManager[None]:
        """The one boundary where driver exceptions become ours (original as ``__cause__``).

        ``with adapter.translate_errors(): ...`` around driver calls. It is on every
        operation's path, so it is one stateless object per adapter, not a generator.
        """
        guard = self.__dict__.get("_guard")
        if guard is None:
            guard = self.__dict__["_guard"] = _Translate(self)
        return guard


class _Translate(AbstractContextManager[None]):
    """``Adapter.translate_errors``: re-raise driver exceptions as ``translate_error``'s."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and (ours := self._adapter.translated(exc)) is not exc:
            raise ours from exc
