"""The per-operation deadline of ``pool.Pool`` (``timeout=``) and the lease that carries it.

Every borrow (``Pool.acquire()``, ``Pool.run()``) and every connection ``Pool.open()``
makes is one operation, bounded as a whole (waiting for a connection, connecting, the
block) by ``options.timeout``. Past it the operation's task is cancelled, and the pool
turns that cancellation into ``OperationTimeout``; a caller cancelled as well still gets
its ``CancelledError`` (the task's cancel requests are counted, as ``asyncio.timeout``
counts them: ``uncancel() == 0`` means the only request was ours).

Why not one ``asyncio.timeout()`` per operation: its timer costs ~5 us an operation
(a heap push and a cancelled handle), a tenth of a SQLite single-row read. Every
operation of a pool has the same limit, so deadlines come in start order: ``Deadlines``
keeps them in one insertion-ordered dict and needs one timer, for the oldest, which is
rescheduled only when it fires (in steady traffic, about once per ``timeout``).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .pool_entries import Entry

if TYPE_CHECKING:
    from ..errors import DiasporaError

__all__ = ["Deadlines", "Lease", "expire"]

C = TypeVar("C")


def expire(fut: asyncio.Future[Any]) -> None:
    """A waiter's ``acquire_timeout`` timer: fail the future it waits on (``PoolTimeout``)."""
    if not fut.done():
        fut.set_exception(TimeoutError())


class Deadlines:
    """The running operations of one pool, each with its deadline, under one timer.

    ``start()`` before an operation, then exactly one of ``overdue()`` (it raised) or
    ``finish()`` (it returned).
    """

    __slots__ = ("_expired", "_loop", "_next", "_running", "_timer", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._running: dict[int, tuple[float, asyncio.Task[Any]]] = {}  # oldest first
        self._expired: set[int] = set()  # cancelled by us, not yet ended
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next = 0

    def start(self) -> int:
        """Register the current task's operation; returns its key."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a pool used again under a new event loop
            self._loop, self._timer = loop, None
            self._running.clear()
            self._expired.clear()
        task = asyncio.current_task(loop)
        assert task is not None  # an operation always runs in a task
        self._next = key = self._next + 1
        deadline = loop.time() + self.seconds
        self._running[key] = (deadline, task)
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._fire)
        return key

    def overdue(self, key: int) -> bool:
        """End an operation that raised: True when our deadline is what ended it (the
        cancellation was ours and ours alone, so the caller turns it into
        ``OperationTimeout``); False when it failed by itself or the caller was
        cancelled too (then the ``CancelledError`` goes on)."""
        if self._running.pop(key, None) is not None:
            return False
        self._expired.discard(key)
        task = asyncio.current_task()
        return task is None or task.uncancel() == 0

    def finish(self, key: int) -> None:
        """End an operation that returned (if it swallowed our cancellation, withdraw it:
        the result stands)."""
        if self._running.pop(key, None) is None and key in self._expired:
            self._expired.discard(key)
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()

    def _fire(self) -> None:
        loop = self._loop
        assert loop is not None  # set by start(), which scheduled this
        now, self._timer = loop.time(), None
        late = []
        for key, (deadline, task) in self._running.items():
            if deadline > now:  # the oldest still running: wake up at its deadline
                self._timer = loop.call_at(deadline, self._fire)
                break
            late.append((key, task))
        for key, task in late:
            del self._running[key]
            self._expired.add(key)
            task.cancel()


class Lender(Protocol[C]):
    """What a ``Lease`` needs of its pool (``pool.Pool`` is one): typed here, so this
    module needs nothing of ``pool.py``, which builds on it."""

    _deadlines: Deadlines

    def _take_ready(self) -> Entry[C] | None: ...

    async def _checkout(self) -> Entry[C]: ...

    def _timed_out(self, what: str | None) -> DiasporaError: ...

    def _give_back(self, entry: Entry[C], exc: BaseException | None) -> None: ...


class Lease(AbstractAsyncContextManager[C]):
    """What ``Pool.acquire()`` returns; its exit never awaits, so it cannot be cut short."""

    __slots__ = ("_entry", "_key", "_pool", "_what")

    def __init__(self, pool: Lender[C], what: str | None) -> None:
        self._pool = pool
        self._what = what
        self._entry: Entry[C] | None = None
        self._key = 0

    async def __aenter__(self) -> C:
        pool = self._pool
        key = pool._deadlines.start()
        try:
            entry = pool._take_ready() or await pool._checkout()
        except BaseException as exc:
            if pool._deadlines.overdue(key):
                raise pool._timed_out(self._what) from exc
            raise
        self._entry, self._key = entry, key
        return entry.conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pool, entry, self._entry = self._pool, self._entry, None
        if entry is None:  # not entered, or exited already
            return
        if exc is None:
            pool._deadlines.finish(self._key)
            pool._give_back(entry, None)
            return
        late = pool._timed_out(self._what) if pool._deadlines.overdue(self._key) else None
        pool._give_back(entry, late or exc)  # a timed-out connection's state is unknown
        if late is not None:
            raise late from exc
