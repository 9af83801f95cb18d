"""``Diaspora``: the registry of data sources, adapters by label, and models.

The top of the flow: users create one (or several independent) registries, declare data
sources and models on it, and ``await orm.connect()`` (or ``async with orm``) to open
every source and build every model's tables and indexes. Source names are checked here,
at connect time, so a typo fails loudly before any data moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from .adapters import resolve
from .adapters.base import Adapter, Capabilities, CollectionSchema
from .errors import ConfigError, DiasporaError, FanOutError, UnknownDataSource
from .models import Model as ModelBase

if TYPE_CHECKING:
    from .outbox import Outbox

__all__ = ["DataSource", "Diaspora"]


class DataSource:
    """A named, configured connection to one store through its adapter."""

    def __init__(self, name: str, label: str, adapter: Adapter) -> None:
        self.name = name
        self.label = label
        self.adapter = adapter
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

    def forget_schema(self, model: str) -> None:
        """Forget that ``model``'s schema was ensured, so the next use ensures it again.

        For when its table/collection was dropped behind the registry's back (test
        fixtures, migrations); unknown names are ignored.
        """
        self._schemas.pop(model, None)


class Diaspora:
    """The registry: data sources, adapters and models.

    Example::

        orm = da.Diaspora()
        orm.create_data_source("mem", "memory")

        class Note(orm.Model, sources=["mem"]):
            text: str

        async with orm:
            await Note.insert({"text": "hi"})
    """

    Model: type[ModelBase]
    """The base class of this registry's models: ``class Article(orm.Model, ...)``."""

    def __init__(self) -> None:
        self._sources: dict[str, DataSource] = {}
        self._models: dict[str, type[ModelBase]] = {}
        self._adapters: dict[str, type[Adapter]] = {}
        self._outbox: Outbox | None = None
        # A base class bound to this registry: ``class Article(orm.Model, ...)``.
        self.Model = type("Model", (ModelBase,), {"__diaspora__": self,
                          "__module__": ModelBase.__module__}, abstract=True)  # fmt: skip

    def __repr__(self) -> str:
        return f"<Diaspora sources={list(self._sources)} models={list(self._models)}>"

    # -- declaration -------------------------------------------------------------------
    @property
    def data_sources(self) -> Mapping[str, DataSource]:
        """Data sources by name (read-only view)."""
        return MappingProxyType(self._sources)

    @property
    def models(self) -> Mapping[str, type[ModelBase]]:
        """Model classes by name (read-only view)."""
        return MappingProxyType(self._models)

    def register_adapter(self, label: str, cls: type[Adapter]) -> None:
        """Make a third-party adapter class available under ``label``."""
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise ConfigError(f"adapter {label!r} must subclass diaspora_async.Adapter")
        self._adapters[label] = cls

    def create_data_source(self, name: str, adapter: str, /, **config: Any) -> DataSource:
        """Declare a named data source using the adapter registered as ``adapter``.

        The config is checked now (no I/O); connections open at ``connect()``.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a data source name must be a non-empty string, got {name!r}")
        if name in self._sources:
            raise ConfigError(f"data source {name!r} already exists")
        cls = self._adapters.get(adapter) or resolve(adapter)
        source = DataSource(name, adapter, cls(name, config))
        self._sources[name] = source
        return source

    def _register_model(self, cls: type[ModelBase]) -> None:
        if cls.__name__ in self._models:
            raise ConfigError(f"a model named {cls.__name__!r} is already declared")
        self._models[cls.__name__] = cls

    def declare_model(self, name: str, description: Mapping[str, Any]) -> type[ModelBase]:
        """Declare a model from the seed's dictionary form (see ``declare.py``)."""
        from .declare import declare_model

        return declare_model(self, name, description)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | str | Path,
        *,
        role: str = "server",
        server_url: str | None = None,
    ) -> Diaspora:
        """Build sources and models from one configuration (dict, JSON or TOML file).

        ``role="client"`` points every model at one ``http`` source on ``server_url``.
        """
        from .config import load_config

        orm: Diaspora = load_config(cls(), config, role=role, server_url=server_url)
        return orm

    # -- lifecycle ---------------------------------------------------------------------
    def _check_sources(self) -> None:
        for model in self._models.values():
            for source in model.__meta__.source_names:
                if source not in self._sources:
                    raise UnknownDataSource(
                        f"model {model.__name__} uses data source {source!r}, which is not "
                        f"declared (declared: {', '.join(self._sources) or 'none'})"
                    )

    async def connect(self) -> None:
        """Open every data source, then create every model's tables and indexes.

        Raises:
            UnknownDataSource: a model names a source that was never declared.
            DataSourceError / FanOutError: a source could not be opened (the others
                are closed again).
        """
        self._check_sources()
        sources = list(self._sources.values())
        outcomes = await asyncio.gather(*(s.connect() for s in sources), return_exceptions=True)
        failed = {
            s.name: o
            for s, o in zip(sources, outcomes, strict=True)
            if isinstance(o, BaseException)
        }
        if failed:
            await self.close()
            if len(failed) == 1:
                raise next(iter(failed.values()))
            raise FanOutError(
                "connect failed", failed, [s.name for s in sources if s.name not in failed]
            )
        await asyncio.gather(
            *(model.__meta__.target(s) for model in self._models.values()
              for s in model.__meta__.source_names)
        )  # fmt: skip

    async def close(self) -> None:
        """Close every data source (waiting for borrowed connections, see the pool)."""
        outcomes = await asyncio.gather(
            *(s.close() for s in self._sources.values()), return_exceptions=True
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors and not all(isinstance(e, DiasporaError) for e in errors):
            raise errors[0]

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- outbox ------------------------------------------------------------------------
    @property
    def outbox(self) -> Outbox:
        """The durable outbox used by ``on_error="queue"`` (see ``use_outbox``)."""
        if self._outbox is None:
            raise ConfigError(
                'on_error="queue" needs an outbox: call orm.use_outbox("<source name>")'
            )
        return self._outbox

    def use_outbox(self, source: str, collection: str = "diaspora_outbox") -> None:
        """Record failed writes of ``on_error="queue"`` in ``source`` (e.g. a sqlite file)."""
        from .outbox import Outbox

        self._outbox = Outbox(self, source, collection)

    async def replay_outbox(self) -> dict[str, int]:
        """Replay queued writes; returns ``{"replayed": n, "failed": m}``."""
        return await self.outbox.replay()
