"""Every use of aiosqlite's private attributes, in one place (the ``sqlite`` adapter's shim).

The ``sqlite`` adapter queues whole jobs on a connection's worker thread itself instead
of awaiting aiosqlite's per-call coroutines; that needs the connection's job queue
(``_tx``), its sqlite3 connection (``_conn``) and its open test (``_running``,
``_connection``). These exist as used here in the versions below (also pinned in the
``sqlite`` extra); importing this module with any other aiosqlite raises ``ConfigError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import aiosqlite

from .._driver_version import require

__all__ = ["is_open", "submit"]

SUPPORTED = ("0.22", "0.23")  # >= first, < second
require("aiosqlite", aiosqlite.__version__, *SUPPORTED, extra="sqlite")

T = TypeVar("T")


def is_open(conn: aiosqlite.Connection) -> bool:
    """aiosqlite's own test before it queues anything (its worker thread runs, and the
    sqlite3 connection is there)."""
    return bool(conn._running) and conn._connection is not None


def submit(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Queue ``fn(db, *args)`` on the connection's worker thread; the future gets its
    outcome. This is aiosqlite's ``Connection._execute`` without its coroutine (every
    operation passes here)."""
    if not (conn._running and conn._connection is not None):  # is_open, inlined
        raise ValueError("Connection closed")  # what aiosqlite raises: ConnectionLost for us
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    conn._tx.put_nowait((future, partial(fn, conn._conn, *args)))
    return future
