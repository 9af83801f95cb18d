"""diaspora_async: an asyncio-native ORM in which one entity lives in several stores.

Reading order, top to bottom::

    user code -> registry.Diaspora (declares sources and models, connects them)
              -> models.Model / entities.Entity (class and entity coroutines)
              -> ops.* (persist, destroy, fetch, fan-out and policies, outbox, sync)
              -> meta.ModelMeta (compiled per model) -> sources (DataSource, Catalog)
              -> adapters.* (one per store, on adapters.pool for network connections)
              -> the driver

Every import points down that list; ``state`` (an entity's per-source state and its
transitions), ``fields``, ``rows``, ``events``, ``query/``, ``ids`` and ``errors`` are the
leaves everything above shares.

``query/`` parses the one query language into a canonical AST that every adapter
compiles; ``fields`` turns declarations into one pydantic validator per model.
"""

from . import errors, server
from .adapters.base import Adapter, Capabilities, CollectionSchema
from .entities import Entity, EntitySet, EntityState
from .errors import (
    AccessDenied,
    ConfigError,
    ConflictError,
    ConnectionLost,
    DataSourceError,
    DiasporaError,
    EntityStateError,
    FanOutError,
    IntegrityError,
    OperationTimeout,
    PoolTimeout,
    QueryError,
    UnknownDataSource,
    UnsupportedQuery,
    ValidationError,
)
from .fields import field
from .models import Model
from .registry import Diaspora
from .sources import ALL, DataSource

__version__ = "0.1.0"

__all__ = [
    "ALL",
    "AccessDenied",
    "Adapter",
    "Capabilities",
    "CollectionSchema",
    "ConfigError",
    "ConflictError",
    "ConnectionLost",
    "DataSource",
    "DataSourceError",
    "Diaspora",
    "DiasporaError",
    "Entity",
    "EntitySet",
    "EntityState",
    "EntityStateError",
    "FanOutError",
    "IntegrityError",
    "Model",
    "OperationTimeout",
    "PoolTimeout",
    "QueryError",
    "UnknownDataSource",
    "UnsupportedQuery",
    "ValidationError",
    "errors",
    "field",
    "server",
]
