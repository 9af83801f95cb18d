"""The per-operation deadline of ``pool.Pool`` (``timeout=``) and the lease that carries it.

Every borrow (``Pool.acquire()``, ``Pool.run()``) and every connection ``Pool.open()``
makes runs inside one ``asyncio.timeout(options.timeout)`` scope, so the limit covers
waiting for a connection, connecting and the operation. Only that scope's own expiry
becomes ``OperationTimeout``: when the caller is cancelled as well, the ``CancelledError``
goes on (``asyncio.Timeout`` counts cancel requests: ``uncancel() == 0`` means the only
one was ours). Kept apart from ``pool.py`` so the pool module holds the bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import OperationTimeout

if TYPE_CHECKING:
    from .pool import Pool
    from .pool_entries import Entry

__all__ = ["Lease", "expire", "leave", "within"]

C = TypeVar("C")
T = TypeVar("T")


def expire(fut: asyncio.Future[Any]) -> None:
    """A waiter's ``acquire_timeout`` timer: fail the future it waits on (``PoolTimeout``)."""
    if not fut.done():
        fut.set_exception(TimeoutError())


async def leave(
    scope: asyncio.Timeout,
    exc: BaseException | None,
    timed_out: Callable[[], OperationTimeout],
) -> None:
    """Exit ``scope`` after its block ended with ``exc`` (None: normally).

    Raises ``timed_out()`` if the scope's deadline is what ended the block: the
    ``CancelledError`` it injected became ``TimeoutError``, or the driver turned the
    cancellation into an error of its own. Returns (the caller re-raises ``exc``) otherwise,
    in particular when the caller was cancelled too.
    """
    try:
        if exc is None:
            await scope.__aexit__(None, None, None)
        else:
            await scope.__aexit__(type(exc), exc, exc.__traceback__)
    except TimeoutError as err:
        raise timed_out() from err
    if exc is not None and scope.expired() and not isinstance(exc, asyncio.CancelledError):
        raise timed_out() from exc


async def within(
    seconds: float, call: Callable[[], Awaitable[T]], timed_out: Callable[[], OperationTimeout]
) -> T:
    """``await call()`` bounded by ``seconds``; past them, ``timed_out()`` is raised."""
    scope = asyncio.timeout(seconds)
    await scope.__aenter__()
    try:
        result = await call()
    except BaseException as exc:
        await leave(scope, exc, timed_out)
        raise
    await leave(scope, None, timed_out)
    return result


class Lease(AbstractAsyncContextManager[C]):
    """What ``Pool.acquire()`` returns; its exit never awaits (``asyncio.Timeout``'s exit
    is a coroutine that does not suspend), so it cannot be cut short."""

    def __init__(self, pool: Pool[C], what: str | None) -> None:
        self._pool = pool
        self._what = what
        self._entry: Entry[C] | None = None
        self._scope: asyncio.Timeout | None = None

    def _timed_out(self) -> OperationTimeout:
        return self._pool._timed_out(self._what)

    async def __aenter__(self) -> C:
        pool = self._pool
        scope = asyncio.timeout(pool.options.timeout)
        await scope.__aenter__()
        try:
            entry = pool._take_ready() or await pool._checkout()
        except BaseException as exc:
            await leave(scope, exc, self._timed_out)
            raise
        self._entry, self._scope = entry, scope
        return entry.conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry, self._entry = self._entry, None
        scope, self._scope = self._scope, None
        if scope is None:  # not entered, or exited already
            return
        if entry is not None:
            # Judged before the scope exits: an expired deadline means the connection's
            # state is unknown, whatever the block raised.
            expired = exc is not None and scope.expired()
            self._pool._give_back(entry, self._timed_out() if expired else exc)
        await leave(scope, exc, self._timed_out)
