"""diaspora_async: an asyncio-native ORM in which one entity lives in several stores.

Reading order, top to bottom::

    user code -> registry.Diaspora (sources, models, connect)
              -> models.Model / entities.Entity (declaration, state, class coroutines)
              -> writes + fanout (each source's part, run concurrently)
              -> adapters.* (one per store, on adapters.pool for network connections)
              -> the driver

``query/`` parses the one query language into a canonical AST that every adapter
compiles; ``fields`` turns declarations into one pydantic validator per model.
"""

from . import errors, server
from .adapters.base import Adapter, Capabilities, CollectionSchema
from .entities import Entity, EntitySet, EntityState
from .errors import (
    AccessDenied,
    ConfigError,
    ConnectionLost,
    DataSourceError,
    DiasporaError,
    EntityStateError,
    FanOutError,
    IntegrityError,
    PoolTimeout,
    QueryError,
    UnknownDataSource,
    UnsupportedQuery,
    ValidationError,
)
from .fanout import ALL
from .fields import field
from .models import Model
from .registry import DataSource, Diaspora

__version__ = "0.1.0"

__all__ = [
    "ALL",
    "AccessDenied",
    "Adapter",
    "Capabilities",
    "CollectionSchema",
    "ConfigError",
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
    "PoolTimeout",
    "QueryError",
    "UnknownDataSource",
    "UnsupportedQuery",
    "ValidationError",
    "errors",
    "field",
    "server",
]
