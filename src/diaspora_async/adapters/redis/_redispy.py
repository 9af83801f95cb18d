"""Every use of redis-py's private attributes, in one place (the ``redis`` adapter's shim).

The adapter lets redis-py connect and do the handshake, then reads replies itself from
the connection's ``asyncio.StreamReader`` (``resp.py``), which redis-py keeps in the
private ``Connection._reader``. That attribute exists as used here in the versions below
(also pinned in the ``redis`` extra); importing this module with any other redis-py
raises ``ConfigError``.
"""

from __future__ import annotations

import asyncio

import redis
from redis.asyncio.connection import Connection

from .._driver_version import require

__all__ = ["reader"]

SUPPORTED = ("8.0", "9")  # >= first, < second
require("redis", redis.__version__, *SUPPORTED, extra="redis")


def reader(conn: Connection) -> asyncio.StreamReader | None:
    """The connection's stream reader (``None`` when it is not connected)."""
    return conn._reader
