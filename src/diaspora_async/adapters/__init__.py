"""Adapters by label, imported lazily so ``import diaspora_async`` needs no driver.

``resolve(label)`` imports ``module:Class`` on first use; a missing driver surfaces as a
``ConfigError`` that names the ``pip install`` extra which fixes it.

Layout: adapter families are subpackages (``sql/``: SQLite and MySQL; ``redis/``;
``mongo/``), whose ``__init__`` modules import no driver; ``memory.py`` and ``http.py``
are single modules (``http.py`` with its body layout and row decoding in
``_http_body.py``). All networked adapters run on the common pool (``pool.py``, options
in ``pool_options.py``); those whose driver pools its own sockets lend permits instead
(``permits.py``).
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import Adapter, Capabilities, CollectionSchema, Row

__all__ = ["BUILTIN", "Adapter", "Capabilities", "CollectionSchema", "Row", "resolve"]

# label -> (module, class, pip extra)
BUILTIN: dict[str, tuple[str, str, str | None]] = {
    "memory": ("diaspora_async.adapters.memory", "MemoryAdapter", None),
    "sqlite": ("diaspora_async.adapters.sql.sqlite", "SQLiteAdapter", "sqlite"),
    "mysql": ("diaspora_async.adapters.sql.mysql", "MySQLAdapter", "mysql"),
    "mongo": ("diaspora_async.adapters.mongo.adapter", "MongoAdapter", "mongo"),
    "redis": ("diaspora_async.adapters.redis.adapter", "RedisAdapter", "redis"),
    "http": ("diaspora_async.adapters.http", "HTTPAdapter", "http"),
}


def resolve(label: str) -> type[Adapter]:
    """Import and return the built-in adapter class for ``label``."""
    try:
        module_name, cls_name, extra = BUILTIN[label]
    except KeyError:
        known = ", ".join(sorted(BUILTIN))
        raise ConfigError(f"unknown adapter {label!r} (built in: {known})") from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] != "diaspora_async":
            raise ConfigError(
                f"the {label!r} adapter needs {exc.name!r}: pip install 'diaspora_async[{extra}]'"
            ) from exc
        raise ConfigError(f"the {label!r} adapter is not available in this version") from exc
    cls: type[Adapter] = getattr(module, cls_name)
    return cls
