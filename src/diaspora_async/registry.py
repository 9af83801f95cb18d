"""``Diaspora``: the registry of data sources, adapters by label, and models.

The top of the flow: users create one (or several independent) registries, declare data
sources and models on it, and ``await orm.connect()`` (or ``async with orm``) to open
every source and build every model's tables and indexes. Source names are checked here,
at connect time, so a typo fails loudly before any data moves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Self

from .adapters import resolve
from .adapters.base import Adapter
from .config import load_config
from .declare import declare_model
from .errors import ConfigError, DiasporaError, FanOutError, UnknownDataSource
from .models import Model as ModelBase
from .ops.outbox import Outbox
from .ops.relay import Relay
from .sources import DEFAULT_RETENTION, Catalog, DataSource, no_outbox, retention_of

__all__ = ["DataSource", "Diaspora"]


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
        #: What models see of this registry: sources, models by name, the outbox.
        self.catalog = Catalog()
        self._sources = self.catalog.sources
        self._models: dict[str, type[ModelBase]] = self.catalog.models
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

        The config is checked now (no I/O); connections open at ``connect()``. Besides
        the adapter's own options, every source takes ``tombstone_retention`` (seconds
        or a ``timedelta``, default 7 days): how long ``purge_tombstones`` keeps the
        tombstones of deleted entities there.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a data source name must be a non-empty string, got {name!r}")
        if name in self._sources:
            raise ConfigError(f"data source {name!r} already exists")
        cls = self._adapters.get(adapter) or resolve(adapter)
        config = dict(config)
        retention = retention_of(name, config.pop("tombstone_retention", DEFAULT_RETENTION))
        source = DataSource(name, adapter, cls(name, config), retention)
        self._sources[name] = source
        return source

    def declare_model(self, name: str, description: Mapping[str, Any]) -> type[ModelBase]:
        """Declare a model from the seed's dictionary form (see ``declare.py``)."""
        return declare_model(self.Model, name, description)

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
        orm = cls()
        load_config(orm, config, role=role, server_url=server_url)
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
        """Close every data source (waiting for borrowed connections, see the pool),
        after the outbox's pending acknowledgements are written."""
        if self._outbox is not None:
            with contextlib.suppress(DiasporaError):  # they are re-delivered, harmlessly
                await self._outbox.flush()
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
            raise no_outbox()
        return self._outbox

    def use_outbox(
        self,
        source: str,
        collection: str = "diaspora_outbox",
        *,
        max_attempts: int = 10,
        lease: float = 30.0,
        backoff: tuple[float, float] = (0.5, 60.0),
    ) -> None:
        """Keep the write-ahead intents of ``on_error="queue"`` and ``defer=`` writes in
        ``source`` (e.g. a SQLite file: it survives restarts); see DESIGN.md 6.2.

        Args:
            max_attempts: failed deliveries after which an intent is dead (kept, listed
                by ``pending``, revived with ``orm.outbox.revive()``).
            lease: seconds a relay holds the intents it claimed (one relay at a time
                delivers an intent; a lease outlives a relay that died).
            backoff: (first, longest) seconds before a failed intent is retried,
                doubling per attempt.
        """
        self._outbox = Outbox(
            self.catalog, source, collection, max_attempts=max_attempts, lease=lease,
            backoff=backoff,
        )  # fmt: skip
        self.catalog.outbox_port = self._outbox

    def relay(self, interval: float = 1.0, batch_size: int = 500) -> Relay:
        """A background deliverer of the outbox: ``async with orm.relay(): ...``.

        Passes run every ``interval`` seconds (at once after a full batch); each claims
        up to ``batch_size`` due intents and sends them as one guarded write per
        (model, source). Any number of relays (and processes) may run at once.
        """
        return Relay(self.outbox, interval, batch_size)

    async def outbox_stats(self) -> list[dict[str, Any]]:
        """Per (model, source): ``pending`` and ``dead`` intents and ``oldest_age``
        (seconds since the oldest pending one was recorded)."""
        return await self.outbox.stats()

    async def purge_tombstones(self, older_than: timedelta | None = None) -> dict[str, int]:
        """Remove the tombstones of deleted entities older than each source's
        ``tombstone_retention`` (or ``older_than`` for every source); returns how many
        were removed per source. After that, a write older than a purged delete may
        bring the entity back there: keep the retention longer than any replay delay.
        """
        now = datetime.now(UTC)
        removed: dict[str, int] = {}
        for model in self._models.values():
            meta = model.__meta__
            for name in meta.source_names:
                ds = self._sources.get(name)
                if ds is None or not ds.connected:
                    continue
                adapter, schema = await meta.target(name)
                cutoff = now - (ds.tombstone_retention if older_than is None else older_than)
                removed[name] = removed.get(name, 0) + await adapter.purge(schema, cutoff)
        return removed

    async def replay_outbox(self) -> dict[str, int]:
        """Deliver every pending intent now (ignoring backoff; leased ones are left to
        their relay): ``{"replayed": n, "failed": m, "dead": d}`` in intents."""
        return await self.outbox.replay()
