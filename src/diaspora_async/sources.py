"""Data sources and what models see of their registry.

Below model metadata and above the adapters: a ``DataSource`` is one named, configured
store (an adapter plus the schemas ensured on its current connection); a ``Catalog`` is
the name -> data source map, the models by name and the outbox slot, which the registry
owns and every model's metadata holds instead of the registry itself. ``ALL`` and the
``on_error`` policy names live here too, because model declarations check them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final, Literal, Protocol

from .adapters.base import Adapter, Capabilities, CollectionSchema
from .errors import ConfigError, UnknownDataSource

__all__ = [
    "ALL",
    "DEFAULT_RETENTION",
    "Catalog",
    "DataSource",
    "HasCatalog",
    "OnError",
    "OutboxPort",
    "SourceArg",
    "check_policy",
    "no_outbox",
    "retention_of",
]

OnError = Literal["raise", "compensate", "queue"]

_POLICIES = ("raise", "compensate", "queue")


class _All:
    """Marker for "every source of the model" (``da.ALL``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ALL"


ALL: Final[_All] = _All()

SourceArg = str | Sequence[str] | _All | None
"""What a ``source=`` argument takes: a name, a list of names, ``da.ALL``, or None (the
model's first source)."""


def check_policy(on_error: str) -> OnError:
    """Validate an ``on_error`` policy name."""
    if on_error not in _POLICIES:
        raise ConfigError(f"on_error must be one of {', '.join(_POLICIES)}, got {on_error!r}")
    return on_error  # type: ignore[return-value]


DEFAULT_RETENTION = timedelta(days=7)
"""How long a source keeps tombstones unless its ``tombstone_retention`` says otherwise."""


def retention_of(source: str, value: Any) -> timedelta:
    """A ``tombstone_retention`` option (seconds or a timedelta) as a timedelta."""
    if isinstance(value, timedelta):
        retention = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        retention = timedelta(seconds=value)
    else:
        raise ConfigError(
            f"data source {source!r}: tombstone_retention must be seconds or a timedelta, "
            f"got {value!r}"
        )
    if retention < timedelta(0):
        raise ConfigError(f"data source {source!r}: tombstone_retention must not be negative")
    return retention


class DataSource:
    """A named, configured connection to one store through its adapter."""

    def __init__(
        self,
        name: str,
        label: str,
        adapter: Adapter,
        tombstone_retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self.name = name
        self.label = label
        self.adapter = adapter
        #: How long ``purge_tombstones`` keeps this source's tombstones.
        self.tombstone_retention = tombstone_retention
        self.connected = False
        self._schemas: dict[str, CollectionSchema] = {}
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"<DataSource {self.name!r} ({self.label}, {state})>"

    @property
    def capabilities(self) -> Capabilities:
        """What the adapter supports."""
        return self.adapter.capabilities

    def stats(self) -> dict[str, int]:
        """Connection-pool statistics: ``size``, ``in_use``, ``idle``, ``waiting``, ..."""
        return self.adapter.stats()

    async def ping(self) -> None:
        """Raise ``DataSourceError`` if the store does not answer."""
        await self.adapter.ping()

    async def connect(self) -> None:
        """Open the adapter (idempotent)."""
        async with self._lock:
            if not self.connected:
                await self.adapter.connect()
                self.connected = True

    async def close(self) -> None:
        """Close the adapter; schemas are ensured again after the next connect."""
        async with self._lock:
            self._schemas.clear()
            if self.connected:
                self.connected = False
                await self.adapter.close()

    def ensured(self, model: str) -> CollectionSchema | None:
        """The schema ensured for ``model`` on the current connection, if any."""
        return self._schemas.get(model)

    def forget_schema(self, model: str) -> None:
        """Forget that ``model``'s schema was ensured, so the next use ensures it again.

        For when its table/collection was dropped behind the registry's back (test
        fixtures, migrations); unknown names are ignored.
        """
        self._schemas.pop(model, None)

    async def ensure(self, schema: CollectionSchema) -> CollectionSchema:
        """Create ``schema``'s table/collection/indexes once per connection."""
        if not self.connected:
            raise ConfigError(
                f"data source {self.name!r} is not connected: "
                "use `async with orm:` or `await orm.connect()` first"
            )
        async with self._lock:
            known = self._schemas.get(schema.model)
            if known is None:
                await self.adapter.ensure_schema(schema)
                self._schemas[schema.model] = known = schema
        return known


def no_outbox() -> ConfigError:
    """The error for ``on_error="queue"`` (or ``orm.outbox``) without an outbox."""
    return ConfigError('on_error="queue" needs an outbox: call orm.use_outbox("<source name>")')


class OutboxPort(Protocol):
    """What the write path needs of an outbox: queue plain data, nothing of a model."""

    async def record(
        self,
        model: str,
        what: str,
        items: Sequence[tuple[str, dict[str, Any] | None, str]],
        sources: Sequence[str],
    ) -> dict[str, list[str]]:
        """Write ahead ``what`` of each ``(id, attributes, revision)`` item for each
        source (attributes None: a delete); the intents' ids per source."""

    #: The data source holding the outbox, and the collection of its intents.
    source: str
    schema: CollectionSchema

    def intents(
        self,
        model: str,
        what: str,
        items: Sequence[tuple[str, dict[str, Any] | None, str]],
        sources: Sequence[str],
    ) -> dict[str, list[dict[str, Any]]]:
        """The intent rows ``record`` would insert, per source (no I/O)."""

    async def ready(self) -> None:
        """Ensure the outbox's collection exists."""

    def settle(self, ids: Sequence[str]) -> None:
        """Remove delivered intents soon, in the background."""

    async def ack(self, ids: Sequence[str]) -> None:
        """Remove intents now."""

    async def note_failure(self, ids: Sequence[str], error: BaseException) -> None:
        """Record why the intents' write failed (they stay, for delivery)."""

    async def pending(
        self, model: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        """The intents not delivered yet."""


class Catalog:
    """Data sources by name, models by name, and the outbox: a registry's contents.

    The registry fills it; model metadata reads it. Models are stored as classes of any
    type so this layer needs nothing above it.
    """

    def __init__(self) -> None:
        self.sources: dict[str, DataSource] = {}
        self.models: dict[str, type[Any]] = {}
        self.outbox_port: OutboxPort | None = None

    def add_model(self, cls: type[Any]) -> None:
        """Register a model class under its name (names are unique per registry)."""
        if cls.__name__ in self.models:
            raise ConfigError(f"a model named {cls.__name__!r} is already declared")
        self.models[cls.__name__] = cls

    def source(self, name: str, model: str) -> DataSource:
        """The data source ``name`` used by ``model``; ``UnknownDataSource`` if absent."""
        ds = self.sources.get(name)
        if ds is None:
            raise UnknownDataSource(
                f"model {model} uses data source {name!r}, which the registry does "
                f"not have (declared: {', '.join(self.sources) or 'none'})"
            )
        return ds

    @property
    def outbox(self) -> OutboxPort:
        """The outbox for ``on_error="queue"``; ``ConfigError`` if none is set."""
        if self.outbox_port is None:
            raise no_outbox()
        return self.outbox_port


class HasCatalog(Protocol):
    """A registry as models see it."""

    catalog: Catalog
